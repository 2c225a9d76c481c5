package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/peapod/peapod/runtime/layout"
)

// ipOf returns a running pod's IP from get -o json.
func (e *env) ipOf(name string) string {
	e.t.Helper()
	p := e.waitPod(name, waitTimeout, phaseIs(corev1.PodRunning))
	if p.Status.PodIP == "" {
		e.t.Fatalf("pod %s has no podIP", name)
	}
	return p.Status.PodIP
}

// leaseFiles lists the IPAM lease files of the instance's network.
func (e *env) leaseFiles() []string {
	e.t.Helper()
	entries, err := os.ReadDir(e.dirs().NetDataDir(e.bridge))
	if err != nil && !os.IsNotExist(err) {
		e.t.Fatal(err)
	}
	var out []string
	for _, en := range entries {
		if _, err := netip.ParseAddr(en.Name()); err == nil {
			out = append(out, en.Name())
		}
	}
	return out
}

// TestPodToPod_3_1: two pods get distinct IPs in the subnet; a server in
// one container of pod B on 0.0.0.0 answers pod A on B's IP and sees A's own
// IP as the peer (no NAT); the host reaches both pods.
func TestPodToPod_3_1(t *testing.T) {
	e := newEnv(t)
	e.runPod(podJSON(newPod("b",
		shell("web", `mkdir -p /w && echo pod-b > /w/index.html && exec httpd -f -p 8080 -h /w`),
		ctr("side", "sleep", "1000"))))
	e.runPod(podJSON(newPod("a", ctr("c", "sleep", "1000"))))
	ipA, ipB := e.ipOf("a"), e.ipOf("b")
	for _, ip := range []string{ipA, ipB} {
		if !e.subnet.Contains(netip.MustParseAddr(ip)) {
			t.Errorf("pod IP %s outside the subnet %s", ip, e.subnet)
		}
	}
	if ipA == ipB {
		t.Fatalf("pods share IP %s", ipA)
	}
	// Pod A fetches from the server on 0.0.0.0:8080 of B's web container
	// (no wget -T: busybox 1.35's static wget crashes with it).
	out := e.mustExec("a", "c", "wget", "-q", "-O", "-", "http://"+ipB+":8080/")
	if strings.TrimSpace(out) != "pod-b" {
		t.Errorf("pod a got %q from pod b's web container, want pod-b", out)
	}
	// A listener in B's other container (same network namespace) records
	// the peer of the connection it accepts, as netstat shows it inside B.
	e.mustExec("b", "side", "sh", "-c", `(nc -l -p 7001 -e sh -c 'netstat -tn | grep ":7001 " > /tmp/peer') >/dev/null 2>&1 &`)
	deadline := time.Now().Add(waitTimeout)
	var peer string
	for time.Now().Before(deadline) {
		e.run("", "exec", "a", "-c", "c", "--", "sh", "-c", "echo x | nc -w 1 "+ipB+" 7001")
		peer, _, _ = e.exec("b", "side", "cat", "/tmp/peer")
		if strings.Contains(peer, ipA) {
			break
		}
		time.Sleep(pollInterval)
	}
	if !strings.Contains(peer, ipA+":") {
		t.Errorf("pod b saw the connection from %q, want pod a's own IP %s (no NAT)", peer, ipA)
	}
	// The host reaches pod B through the bridge.
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + ipB + ":8080/")
	if err != nil {
		t.Fatalf("host → pod b: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(body)) != "pod-b" {
		t.Errorf("host got %q from pod b", body)
	}
}

// TestConcurrentRunsWithGC_3_2: 30 pods created concurrently while `peapod
// gc` runs in a loop: every pod starts with its own IP; after all are
// removed nothing is left.
func TestConcurrentRunsWithGC_3_2(t *testing.T) {
	const n = 30
	e := newEnv(t)
	before := e.snapshot()
	var stop atomic.Bool
	gcDone := make(chan error, 1)
	go func() {
		var err error
		for !stop.Load() && err == nil {
			_, stderr, code, runErr := e.runNoFail("", "gc")
			if runErr != nil {
				err = runErr
			} else if code != 0 {
				err = fmt.Errorf("gc exit %d: %s", code, stderr)
			}
		}
		gcDone <- err
	}()
	name := func(i int) string { return fmt.Sprintf("gc-%02d", i) }
	errs := parallel(n, func(i int) error {
		_, stderr, code, err := e.runNoFail(podJSON(newPod(name(i), ctr("c", "sleep", "1000"))), "run", "-d", "-f", "-")
		if err == nil && code != 0 {
			err = fmt.Errorf("run %s: exit %d: %s", name(i), code, stderr)
		}
		return err
	})
	stop.Store(true)
	if err := <-gcDone; err != nil {
		t.Errorf("gc loop: %v", err)
	}
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	ips := map[string]string{}
	for i := range n {
		ip := e.ipOf(name(i))
		if other, dup := ips[ip]; dup {
			t.Errorf("pods %s and %s share IP %s", other, name(i), ip)
		}
		ips[ip] = name(i)
	}
	for _, err := range parallel(n, func(i int) error {
		_, stderr, code, err := e.runNoFail("", "rm", "-f", name(i))
		if err == nil && code != 0 {
			err = fmt.Errorf("rm %s: exit %d: %s", name(i), code, stderr)
		}
		return err
	}) {
		if err != nil {
			t.Error(err)
		}
	}
	e.assertNoLeak(before)
}

// TestExhaustion_3_2: on a /29 (five pod addresses) the sixth pod fails with
// a clear error and leaves nothing behind.
func TestExhaustion_3_2(t *testing.T) {
	sub := netip.PrefixFrom(pickSubnet(t).Addr(), 29)
	e := newEnv(t, func(e *env) { e.subnet = sub })
	before := e.snapshot()
	for i := range 5 {
		e.runPod(podJSON(newPod(fmt.Sprintf("x%d", i), ctr("c", "sleep", "1000"))))
	}
	full := e.snapshot0()
	_, stderr, code := e.run(podJSON(newPod("x5", ctr("c", "sleep", "1000"))), "run", "-d", "-f", "-")
	if code == 0 || !strings.Contains(stderr, "no free IP in "+sub.String()) {
		t.Errorf("sixth pod on a /29: exit %d, stderr %q; want failure naming %q", code, stderr, "no free IP in "+sub.String())
	}
	e.assertNoLeak(full)
	for i := range 5 {
		e.mustRun("rm", "-f", fmt.Sprintf("x%d", i))
	}
	e.assertNoLeak(before)
}

// TestGCAfterCrash_3_4: kill -9 a pod's supervisor and its processes and
// lose its status (a pod whose supervisor is merely lost is adopted, see
// TestSupervisorLoss; without a status there is nothing to adopt from),
// then gc: lease, veth and netns pin are gone, the pod shows Unknown until
// rm, which succeeds; a second gc finds nothing.
func TestGCAfterCrash_3_4(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	e.runPod(podJSON(newPod("crash", ctr("c", "sleep", "1000"))))
	v := e.inspect("crash")
	netnsPin := v.Namespaces["network"].Path
	hostVeth := strings.Trim(string(v.Raw["hostVeth"]), `"`)
	for _, pid := range append([]int{v.SupervisorPID}, v.Containers[0].PID) {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	waitGone(t, v.Containers[0].PID)
	if err := os.Remove(layout.Run(e.dirs().RunDir(v.UID)).Status()); err != nil {
		t.Fatal(err)
	}
	out := e.mustRun("gc")
	if !strings.Contains(out, "default/crash") {
		t.Errorf("gc did not name the crashed pod:\n%s", out)
	}
	if leases := e.leaseFiles(); len(leases) != 0 {
		t.Errorf("leases left after gc: %v", leases)
	}
	if _, err := net.InterfaceByName(hostVeth); err == nil {
		t.Errorf("host veth %s left after gc", hostVeth)
	}
	if _, err := os.Stat(netnsPin); !os.IsNotExist(err) {
		t.Errorf("netns pin %s left after gc (%v)", netnsPin, err)
	}
	if p := e.get("crash"); p.Status.Phase != corev1.PodUnknown || p.Status.Reason != "SupervisorLost" {
		t.Errorf("after gc the pod is %s/%s, want Unknown/SupervisorLost", p.Status.Phase, p.Status.Reason)
	}
	if out := e.mustRun("gc"); strings.TrimSpace(out) != "nothing to collect" {
		t.Errorf("second gc: %q, want nothing to collect", out)
	}
	e.mustRun("rm", "crash")
	e.assertNoLeak(before)
}

// TestHostPort_3_6: a hostPort reaches the pod from another pod through the
// host's bridge address, from the host's own address and from 127.0.0.1;
// a second pod asking for the same port is refused; the rules go with the
// pod.
func TestHostPort_3_6(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	// A port of the test's own, derived from its random subnet.
	port := 20000 + int(e.subnet.Addr().As4()[2])*10
	web := shell("web", `mkdir -p /w && echo via-hostport > /w/index.html && exec httpd -f -p 8080 -h /w`)
	web.Ports = []corev1.ContainerPort{{ContainerPort: 8080, HostPort: int32(port), Protocol: corev1.ProtocolTCP}}
	e.runPod(podJSON(newPod("hp", web)))
	e.ipOf("hp")
	gateway := e.subnet.Addr().Next().String()
	get := func(host string) string {
		client := &http.Client{Timeout: 3 * time.Second}
		deadline := time.Now().Add(waitTimeout)
		for {
			resp, err := client.Get(fmt.Sprintf("http://%s:%d/", host, port))
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return strings.TrimSpace(string(b))
			}
			if time.Now().After(deadline) {
				t.Errorf("GET via %s:%d: %v", host, port, err)
				return ""
			}
			time.Sleep(pollInterval)
		}
	}
	for _, host := range []string{"127.0.0.1", gateway} {
		if got := get(host); got != "via-hostport" {
			t.Errorf("via %s: got %q", host, got)
		}
	}
	e.runPod(podJSON(newPod("client", ctr("c", "sleep", "1000"))))
	out := e.mustExec("client", "c", "wget", "-q", "-O", "-", fmt.Sprintf("http://%s:%d/", gateway, port))
	if strings.TrimSpace(out) != "via-hostport" {
		t.Errorf("from another pod via %s:%d: got %q", gateway, port, out)
	}
	dup := shell("web", "sleep 1000")
	dup.Ports = web.Ports
	_, stderr, code := e.run(podJSON(newPod("hp2", dup)), "run", "-d", "-f", "-")
	if code == 0 || !strings.Contains(stderr, "already allocated") || !strings.Contains(stderr, "pod default/hp holds") {
		t.Errorf("second pod on host port %d: exit %d, stderr %q; want a refusal", port, code, stderr)
	}
	e.mustRun("rm", "-f", "hp", "client")
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	ruleset, err := exec.CommandContext(ctx, "nft", "list", "ruleset").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(ruleset), "peapod-hostport-"+e.bridge) {
		t.Errorf("host-port table of %s left after the pod:\n%s", e.bridge, ruleset)
	}
	e.assertNoLeak(before)
}

// TestSweepAfterReboot: after a reboot the run root is empty and the
// pods' processes and kernel objects died with the old kernel, while
// --root still holds their records and leases; the first command sweeps
// them. Only the record written when a pod is reserved is synced, so a
// power cut can leave a later rewrite of it empty: that pod is swept by
// its dir and its name too.
func TestSweepAfterReboot(t *testing.T) {
	for _, tt := range []struct {
		name        string
		emptyRecord bool
	}{{"record", false}, {"empty-record", true}} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			before := e.snapshot()
			e.runPod(podJSON(newPod("swept", ctr("c", "sleep", "1000"))))
			v := e.inspect("swept")
			if len(e.leaseFiles()) != 1 {
				t.Fatalf("leases %v, want the pod's one", e.leaseFiles())
			}
			e.simulateReboot(v)
			if tt.emptyRecord {
				if err := os.Truncate(layout.Pod(e.dirs().PodDir(v.UID)).Record(), 0); err != nil {
					t.Fatal(err)
				}
			}
			_, stderr, code := e.run("", "ps", "-A")
			if code != 0 || !strings.Contains(stderr, "sweeping pod default/swept left from before a reboot") {
				t.Errorf("ps after the reboot: exit %d, stderr %q; want the sweep named", code, stderr)
			}
			if leases := e.leaseFiles(); len(leases) != 0 {
				t.Errorf("leases left after the sweep: %v", leases)
			}
			if _, stderr, code := e.run("", "ps", "-A"); strings.Contains(stderr, "sweeping") || code != 0 {
				t.Errorf("second ps: exit %d, stderr %q; want no second sweep", code, stderr)
			}
			e.mustRun("rm", "-f", "swept")
			// The instance works after the reboot: the name and the
			// address are free again (and what run makes in the run
			// root is made again).
			e.runPod(podJSON(newPod("swept", ctr("c", "sleep", "1000"))))
			e.ipOf("swept")
			e.mustRun("rm", "-f", "swept")
			e.assertNoLeak(before)
		})
	}
}

// simulateReboot does to a running pod what a reboot does: its processes
// die and the run root (a tmpfs) is empty again, pins and all. What else
// the kernel held (cgroups, the veth, the netns pin in /run/netns) is left
// for the sweep, which must remove it all the same (idempotent).
func (e *env) simulateReboot(v *inspectView) {
	e.t.Helper()
	pids := []int{v.SupervisorPID}
	for _, c := range v.Containers {
		pids = append(pids, c.PID)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			e.t.Fatalf("failed to kill pid %d: %v", pid, err)
		}
	}
	for _, pid := range pids {
		waitGone(e.t, pid)
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		e.t.Fatal(err)
	}
	var under []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], e.runRoot+"/") {
			under = append(under, f[4])
		}
	}
	// Deepest first.
	sort.Sort(sort.Reverse(sort.StringSlice(under)))
	for _, m := range under {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			e.t.Fatalf("failed to unmount %s: %v", m, err)
		}
	}
	if err := os.RemoveAll(e.runRoot); err != nil {
		e.t.Fatal(err)
	}
}
