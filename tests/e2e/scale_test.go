package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// psRow is one line of `peapod ps`.
type psRow struct {
	namespace, name, ready, status, restarts, age, ip string
}

// ps returns `peapod ps -A`, parsed.
func (e *env) ps() map[string]psRow {
	e.t.Helper()
	out := e.mustRun("ps", "-A")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if h := strings.Fields(lines[0]); strings.Join(h, " ") != "NAMESPACE NAME READY STATUS RESTARTS AGE IP" {
		e.t.Fatalf("ps header %q", lines[0])
	}
	rows := make(map[string]psRow)
	for _, l := range lines[1:] {
		f := psFields(l)
		if len(f) != 7 {
			e.t.Fatalf("ps line %q: want 7 columns", l)
		}
		rows[f[1]] = psRow{f[0], f[1], f[2], f[3], f[4], f[5], f[6]}
	}
	return rows
}

// psFields splits a ps line into its columns: RESTARTS may read
// "2 (5s ago)", as kubectl prints it.
func psFields(line string) []string {
	f := strings.Fields(line)
	if len(f) == 9 && strings.HasPrefix(f[5], "(") && f[6] == "ago)" {
		f = append(append(f[:4:4], strings.Join(f[4:7], " ")), f[7:]...)
	}
	return f
}

// parallel runs fn(i) for i in [0, n) concurrently and returns the errors.
func parallel(n int, fn func(i int) error) []error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(i)
		}()
	}
	wg.Wait()
	return errs
}

// TestParallelPods_10: 20 pods created by 20 concurrent `run -d`, then
// removed by 20 concurrent `rm -f`: every command succeeds, every pod gets
// its own IP, and nothing is left behind.
func TestParallelPods_10(t *testing.T) {
	const n = 20
	e := newEnv(t)
	before := e.snapshot()
	name := func(i int) string { return fmt.Sprintf("par-%02d", i) }
	errs := parallel(n, func(i int) error {
		m := podJSON(newPod(name(i), ctr("c", "sleep", "1000")))
		out, stderr, code, err := e.runNoFail(m, "run", "-d", "-f", "-")
		if err == nil && code != 0 {
			err = fmt.Errorf("exit code %d\nstdout: %s\nstderr: %s", code, out, stderr)
		}
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("run -d of pod %s: %v", name(i), err)
		}
	}
	rows := e.ps()
	if sharedHost() {
		for i := range n {
			e.inspect(name(i))
		}
	}
	seen := make(map[string]string)
	for i := range n {
		r, ok := rows[name(i)]
		if !ok {
			t.Errorf("ps does not list pod %s", name(i))
			continue
		}
		if r.status != "Running" || r.ready != "1/1" {
			t.Errorf("pod %s: ps says %s %s, want 1/1 Running", r.name, r.ready, r.status)
		}
		ip, err := netip.ParseAddr(r.ip)
		if err != nil || !e.subnet.Contains(ip) {
			t.Errorf("pod %s: IP %q is not in the root's subnet %s", r.name, r.ip, e.subnet)
		}
		if other, dup := seen[r.ip]; dup {
			t.Errorf("pods %s and %s share IP %s", other, r.name, r.ip)
		}
		seen[r.ip] = r.name
	}
	errs = parallel(n, func(i int) error {
		out, stderr, code, err := e.runNoFail("", "rm", "-f", name(i))
		if err == nil && code != 0 {
			err = fmt.Errorf("exit code %d\nstdout: %s\nstderr: %s", code, out, stderr)
		}
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("rm -f of pod %s: %v", name(i), err)
		}
	}
	if rows := e.ps(); len(rows) != 0 {
		t.Errorf("ps after removing every pod: %v", rows)
	}
	e.assertNoLeak(before)
}

// TestTwoRoots_10: two roots with their own bridges and subnets run pods
// side by side — also pods of the same name — each sees only its own, and
// removing one root's pods leaves the other's running. A root refuses a
// bridge or subnet another root owns.
func TestTwoRoots_10(t *testing.T) {
	a, b := newEnv(t), newEnv(t)
	a.runPod(podJSON(newPod("same", ctr("c", "sleep", "1000"))))
	a.runPod(podJSON(newPod("a-only", ctr("c", "sleep", "1000"))))
	b.runPod(podJSON(newPod("same", ctr("c", "sleep", "1000"))))

	for _, tt := range []struct {
		e    *env
		want []string
	}{{a, []string{"a-only", "same"}}, {b, []string{"same"}}} {
		rows := tt.e.ps()
		if len(rows) != len(tt.want) {
			t.Errorf("root %s: ps lists %v, want only %v", tt.e.root, rows, tt.want)
		}
		for _, name := range tt.want {
			r, ok := rows[name]
			if !ok {
				t.Errorf("root %s: ps does not list %s", tt.e.root, name)
				continue
			}
			if ip, err := netip.ParseAddr(r.ip); err != nil || !tt.e.subnet.Contains(ip) {
				t.Errorf("root %s: pod %s has IP %q outside the root's subnet %s", tt.e.root, name, r.ip, tt.e.subnet)
			}
		}
	}
	vb := b.inspect("same")
	if va := a.inspect("same"); va.Namespaces["network"].Path == vb.Namespaces["network"].Path {
		t.Errorf("both roots' pod %q pin their netns at %s", "same", vb.Namespaces["network"].Path)
	}

	a.mustRun("rm", "-f", "same", "a-only")
	got := b.get("same")
	if got.Status.Phase != corev1.PodRunning {
		t.Errorf("root b's pod after removing root a's pods: phase %q, want Running", got.Status.Phase)
	}
	if pid := b.inspect("same").container(t, "c").PID; pid != vb.container(t, "c").PID || syscall.Kill(pid, 0) != nil {
		t.Errorf("root b's container (pid %d) did not survive removing root a's pods", vb.container(t, "c").PID)
	}
	if out := b.mustExec("same", "c", "cat", "/proc/net/route"); !strings.Contains(out, "eth0") {
		t.Errorf("root b's pod lost its network when root a's pods were removed:\n%s", out)
	}

	t.Run("refuses another root's bridge", func(t *testing.T) {
		c := newEnv(t, withBridgeOf(b))
		_, stderr, code := c.run(podJSON(newPod("x", ctr("c", "sleep", "1000"))), "run", "-d", "-f", "-")
		if code == 0 || !strings.Contains(stderr, b.bridge) {
			t.Errorf("a third root on root b's bridge %s: exit %d, stderr %q; want a refusal naming the bridge", b.bridge, code, stderr)
		}
		t.Logf("refused: %s", stderr)
	})
	t.Run("refuses another root's subnet", func(t *testing.T) {
		c := newEnv(t, withSubnetOf(b))
		_, stderr, code := c.run(podJSON(newPod("x", ctr("c", "sleep", "1000"))), "run", "-d", "-f", "-")
		if code == 0 || !strings.Contains(stderr, b.subnet.String()) {
			t.Errorf("a third root on root b's subnet %s: exit %d, stderr %q; want a refusal naming the subnet", b.subnet, code, stderr)
		}
		t.Logf("refused: %s", stderr)
	})
	if got := b.get("same"); got.Status.Phase != corev1.PodRunning {
		t.Errorf("root b's pod after the refused roots: phase %q, want Running", got.Status.Phase)
	}
}
