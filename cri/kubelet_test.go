package cri_test

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"github.com/peapod/peapod/internal/testutil"
)

// kubeletNode is the node name the kubelet runs as; a static pod's name
// gets it as a suffix.
const kubeletNode = "peapod-kubelet"

// kubeletBin returns the kubelet of the Kubernetes release go.mod's k8s.io
// libraries are from, built by scripts/build-kubelet.sh into the tools
// cache (about 4 minutes on 2 cores the first time; scripts/test.sh builds
// it before go test).
func kubeletBin(t *testing.T) string {
	t.Helper()
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "build-kubelet.sh"))
	cmd.Env = append(os.Environ(), "PEAPOD_TOOLS="+toolsDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/build-kubelet.sh: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// kernelTunables are the sysctls the kubelet's container manager sets to
// its liking on start (setupKernelTunables); in the kubelet's mount
// namespace each is a plain file holding the host's value, so its writes
// change nothing on the host.
var kernelTunables = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
}

// kubeletWrapper runs in the kubelet's private mount namespace (unshare
// --mount --propagation private, so nothing below propagates to the host)
// and execs the kubelet, which keeps its PID. $1 is the directory of the
// sysctl stand-ins; the rest is the kubelet's command line.
//
// tmpfs over /var/lib and /var/log: the kubelet writes on fixed paths
// there (/var/lib/kubelet/device-plugins for the device manager's socket,
// /var/log/containers for its log symlinks), which do not exist on this
// host; making them would change the host. Nothing of the host's /var/lib
// or /var/log is needed by the kubelet, whose own directories are all
// under the test's temp dir.
const kubeletWrapper = `set -eu
tun=$1; shift
for f in ` + "$(cd \"$tun\" && find . -type f | cut -c3-)" + `; do
	mount --bind "$tun/$f" "/proc/sys/$f"
done
mount -t tmpfs -o mode=0755 peapod-kubelet /var/lib
mount -t tmpfs -o mode=0755 peapod-kubelet /var/log
exec "$@"
`

// kubelet is a kubelet run standalone (no API server) against a daemon.
type kubelet struct {
	t *testing.T
	// dir holds its config, root dir, logs and static pods in manifests.
	dir, manifests string
	// cgroupRoot is the cgroup its QoS hierarchy lives under, made by the
	// test in every hierarchy and removed after it.
	cgroupRoot string
	// args are unshare's: the wrapper and the kubelet's command line.
	args   []string
	cmd    *exec.Cmd
	exited chan error
	log    *testutil.SyncBuffer
	// healthz is its health URL; api its server's (HTTPS, a self-signed
	// certificate, anonymous requests allowed).
	healthz, api string
}

// startKubelet runs the kubelet against d and waits until its healthz
// answers ok.
func startKubelet(t *testing.T, d *daemon, bin string) *kubelet {
	t.Helper()
	dir := shortTempDir(t)
	k := &kubelet{
		t: t, dir: dir, manifests: filepath.Join(dir, "manifests"),
		cgroupRoot: "peapod-kubelet-" + testutil.RandHex(t, 4),
	}
	for _, sub := range []string{"manifests", "root", "pod-logs", "volume-plugins", "certs", "sysctl"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range kernelTunables {
		v, err := os.ReadFile(filepath.Join("/proc/sys", f))
		if err != nil {
			t.Fatalf("failed to read sysctl %s: %v", f, err)
		}
		p := filepath.Join(dir, "sysctl", f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, v, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The kubelet refuses a cgroup root that does not exist; its QoS
	// cgroups (kubepods, burstable, besteffort, pod<uid>) go below it.
	k.makeCgroupRoot()

	port := testutil.FreeLoopbackAddr(t).Port
	k.healthz = fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
	apiPort := testutil.FreeLoopbackAddr(t).Port
	k.api = fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	cfg := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
staticPodPath: %[1]s/manifests
fileCheckFrequency: 1s
syncFrequency: 5s
containerRuntimeEndpoint: unix://%[2]s
cgroupDriver: cgroupfs
cgroupsPerQOS: true
cgroupRoot: /%[3]s
failSwapOn: false
failCgroupV1: false
podLogsDir: %[1]s/pod-logs
volumePluginDir: %[1]s/volume-plugins
enableServer: true
address: 127.0.0.1
port: %[5]d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %[4]d
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
makeIPTablesUtilChains: false
protectKernelDefaults: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 1Mi
  nodefs.available: 1%%
  nodefs.inodesFree: 1%%
  imagefs.available: 1%%
`, dir, d.sock, k.cgroupRoot, port, apiPort)
	cfgPath := filepath.Join(dir, "kubelet.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	k.args = []string{"--mount", "--propagation", "private", "sh", "-c", kubeletWrapper, "sh",
		filepath.Join(dir, "sysctl"),
		bin, "--config", cfgPath, "--root-dir", filepath.Join(dir, "root"), "--cert-dir", filepath.Join(dir, "certs"),
		"--hostname-override", kubeletNode, "--v", "2"}
	k.log = &testutil.SyncBuffer{}
	t.Cleanup(k.stop)
	// The kubelet's whole log goes to $PEAPOD_KUBELET_LOG when set (to see
	// what it asked of peapod in a passing run), its tail into the test's
	// log on failure.
	t.Cleanup(func() {
		if p := os.Getenv("PEAPOD_KUBELET_LOG"); p != "" {
			_ = os.WriteFile(p, []byte(k.log.String()), 0o644)
		}
		if t.Failed() {
			t.Logf("kubelet log (last 8 KiB):\n%s", tail(k.log.String(), 8<<10))
		}
	})
	k.launch()
	return k
}

// launch starts the kubelet (again) and waits until its healthz answers
// ok.
func (k *kubelet) launch() {
	t := k.t
	t.Helper()
	cmd := exec.Command("unshare", k.args...)
	// No iptables on its PATH either: makeIPTablesUtilChains is off, and
	// nothing else of the kubelet's should reach for it.
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + k.dir}
	cmd.Stdout, cmd.Stderr = k.log, k.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("failed to start the kubelet: %v", err)
	}
	exited := make(chan error, 1)
	k.cmd, k.exited = cmd, exited
	go func() { exited <- cmd.Wait() }()
	k.await("the kubelet's healthz to answer ok", 60*time.Second, func() (bool, string) {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("the kubelet exited before it was healthy: %v\n%s", err, tail(k.log.String(), 8<<10))
		default:
		}
		resp, err := http.Get(k.healthz)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
}

// call makes a request of the kubelet's server (as `kubectl logs` and
// `kubectl exec` reach it through the API server) and returns the status
// and body.
func (k *kubelet) call(method, path string) (int, string, error) {
	c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		// The kubelet's own self-signed certificate, on loopback.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
	defer c.CloseIdleConnections()
	req, err := http.NewRequest(method, k.api+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// tail is the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// cgroupMounts lists the mount points of the host's cgroup hierarchies:
// the legacy ones (v1 true) and the unified one.
func cgroupMounts(t *testing.T) (mounts []string, v1 []bool) {
	t.Helper()
	infos, err := mountinfo.GetMounts(func(i *mountinfo.Info) (skip, stop bool) {
		return i.FSType != "cgroup" && i.FSType != "cgroup2", false
	})
	if err != nil {
		t.Fatalf("failed to read the cgroup mounts: %v", err)
	}
	for _, i := range infos {
		mounts, v1 = append(mounts, i.Mountpoint), append(v1, i.FSType == "cgroup")
	}
	if len(mounts) == 0 {
		t.Fatal("no cgroup hierarchy mounted")
	}
	return mounts, v1
}

// makeCgroupRoot creates the kubelet's cgroup root in every legacy
// hierarchy (the kubelet's cgroupfs driver checks each of them, cpuset
// too, which peapod's own v1 driver does not use); removeCgroupRoot
// (registered here) removes it, and what the kubelet made below it, from
// every hierarchy.
func (k *kubelet) makeCgroupRoot() {
	k.t.Helper()
	k.t.Cleanup(k.removeCgroupRoot)
	mounts, v1 := cgroupMounts(k.t)
	for i, m := range mounts {
		if !v1[i] {
			continue
		}
		if err := os.Mkdir(filepath.Join(m, k.cgroupRoot), 0o755); err != nil {
			k.t.Fatalf("failed to create cgroup %s: %v", k.cgroupRoot, err)
		}
	}
}

func (k *kubelet) removeCgroupRoot() {
	mounts, _ := cgroupMounts(k.t)
	for _, m := range mounts {
		root := filepath.Join(m, k.cgroupRoot)
		var dirs []string
		err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			k.t.Errorf("failed to list cgroup %s: %v", root, err)
			continue
		}
		// Leaf first: a cgroup with children cannot be removed. They are
		// empty (the kubelet's QoS and pod cgroups hold no process: peapod
		// puts its containers under its own root), so rmdir succeeds.
		for _, d := range slices.Backward(dirs) {
			if err := syscall.Rmdir(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
				k.t.Errorf("failed to remove cgroup %s: %v", d, err)
			}
		}
	}
}

// stop SIGTERMs the kubelet (by its PID: the process this test started)
// and waits for it; SIGKILL after 20 s. Idempotent.
func (k *kubelet) stop() {
	if k.cmd == nil {
		return
	}
	_ = k.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-k.exited:
	case <-time.After(20 * time.Second):
		_ = k.cmd.Process.Kill()
		<-k.exited
		k.t.Errorf("the kubelet did not exit 20 s after SIGTERM")
	}
	k.cmd = nil
}

// await polls cond every 250 ms until it holds, failing the test with
// cond's last word after timeout.
func (k *kubelet) await(what string, timeout time.Duration, cond func() (bool, string)) {
	k.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			k.t.Fatalf("timed out after %v waiting for %s; last: %s", timeout, what, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// writeStaticPod puts a manifest into the static pod directory at once
// (written beside it, then renamed in: the kubelet ignores dot files and
// must never read half a file).
func (k *kubelet) writeStaticPod(name, manifest string) string {
	k.t.Helper()
	tmp := filepath.Join(k.manifests, "."+name)
	if err := os.WriteFile(tmp, []byte(manifest), 0o600); err != nil {
		k.t.Fatal(err)
	}
	p := filepath.Join(k.manifests, name)
	if err := os.Rename(tmp, p); err != nil {
		k.t.Fatal(err)
	}
	return p
}

// criPods is what `crictl pods -o json` prints, in the parts read here.
type criPods struct {
	Items []criPod `json:"items"`
}

type criPod struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	Metadata struct {
		Name, Namespace, UID string
	} `json:"metadata"`
}

// criContainers is what `crictl ps -o json` prints, in the parts read here.
type criContainers struct {
	Containers []struct {
		ID           string `json:"id"`
		PodSandboxID string `json:"podSandboxId"`
		State        string `json:"state"`
		Metadata     struct {
			Name    string `json:"name"`
			Attempt int    `json:"attempt"`
		} `json:"metadata"`
	} `json:"containers"`
}

// memoryLimit is the memory cgroup of pid and its limit: from the
// legacy memory hierarchy where one is mounted (this hybrid host), else
// from the unified one.
func memoryLimit(t *testing.T, pid int) (cgroup, limit string) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatalf("failed to read the container's cgroups: %v", err)
	}
	var unified string
	for _, l := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[1] == "memory":
			cgroup, limit = parts[2], filepath.Join("/sys/fs/cgroup/memory", parts[2], "memory.limit_in_bytes")
		case parts[0] == "0" && parts[1] == "":
			unified = parts[2]
		}
	}
	if cgroup == "" {
		cgroup, limit = unified, filepath.Join("/sys/fs/cgroup", unified, "memory.max")
	}
	v, err := os.ReadFile(limit)
	if err != nil {
		t.Fatalf("failed to read the memory limit of pid %d: %v", pid, err)
	}
	return cgroup, strings.TrimSpace(string(v))
}

// readLink reads a symlink, failing the test on error.
func readLink(t *testing.T, p string) string {
	t.Helper()
	l, err := os.Readlink(p)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// hostState is what a kubelet would change on the host if the test let
// it: the kernel tunables it sets, and whether the fixed paths it writes
// exist.
func hostState(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, f := range kernelTunables {
		b, err := os.ReadFile(filepath.Join("/proc/sys", f))
		if err != nil {
			t.Fatalf("failed to read sysctl %s: %v", f, err)
		}
		out = append(out, f+"="+strings.TrimSpace(string(b)))
	}
	for _, p := range []string{"/var/lib/kubelet", "/var/log/containers", "/var/log/pods", "/etc/kubernetes"} {
		_, err := os.Lstat(p)
		out = append(out, fmt.Sprintf("%s exists=%v", p, err == nil))
	}
	return out
}

// kubeChains lists the KUBE-* lines of iptables-save and ip6tables-save:
// the chains and rules a kubelet adds to the host's tables.
func kubeChains(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, tool := range []string{"iptables-save", "ip6tables-save"} {
		b, err := exec.Command(tool).Output()
		if err != nil {
			if _, look := exec.LookPath(tool); look != nil {
				continue // no such tool here: nothing of it can change
			}
			t.Fatalf("%s: %v", tool, err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "KUBE-") {
				out = append(out, tool+": "+l)
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestKubeletStaticPod runs a real kubelet (the release of go.mod's k8s.io
// libraries, standalone: no API server) against `peapod cri` with a static
// pod whose liveness probe starts failing after a few seconds: the pod runs,
// the kubelet restarts its container through peapod, removing the manifest
// removes the pod, and nothing is left behind, on the host either.
func TestKubeletStaticPod(t *testing.T) {
	testutil.RequireRoot(t)
	bin := kubeletBin(t)
	d := startDaemon(t)
	d.run("peapod", "image", "import", busyboxTar, "--name", "busybox:latest")
	// A warm-up sandbox: the bridge, the network's state and the QoS
	// classes' lock (a burstable pod takes it), which outlive pods, exist
	// before the snapshot.
	warm := strings.TrimSpace(d.run("crictl", "runp", writeJSON(t, t.TempDir(), "warm.json",
		`{"metadata": {"name": "warm", "namespace": "default", "uid": "warm-uid"},
		  "linux": {"cgroup_parent": "/kubepods/burstable/podwarm-uid"}}`)))
	d.run("crictl", "rmp", "-f", warm)

	iptBefore, hostBefore := kubeChains(t), hostState(t)
	// Runs after the kubelet's stop (registered later, run earlier): a
	// test that failed half-way leaves no pod running.
	t.Cleanup(func() {
		if out, err := d.try("rmp", "--all", "--force"); err != nil {
			t.Errorf("crictl rmp --all: %v\n%s", err, out)
		}
	})
	roots := d.roots()
	roots.CgroupPrefixes = append(roots.CgroupPrefixes, "peapod-kubelet-")
	before := testutil.TakeSnapshot(t, roots)
	start := time.Now()

	k := startKubelet(t, d, bin)
	t.Logf("kubelet healthy after %v", time.Since(start).Round(time.Millisecond))
	pod := k.writeStaticPod("liveness.yaml", `apiVersion: v1
kind: Pod
metadata:
  name: liveness
  namespace: default
spec:
  restartPolicy: Always
  terminationGracePeriodSeconds: 2
  volumes:
  - name: work
    emptyDir: {}
  # Run to completion before the app starts; what it writes in the shared
  # emptyDir the app prints, into its log.
  initContainers:
  - name: init
    image: busybox:latest
    imagePullPolicy: Never
    command: ["sh", "-c", "echo made by init > /work/init"]
    volumeMounts:
    - {name: work, mountPath: /work}
  containers:
  - name: app
    image: busybox:latest
    imagePullPolicy: Never
    # Healthy for 3 s, then the probe's file goes. The trap ends the shell
    # on SIGTERM at once (sleep runs in the background so wait is
    # interruptible), rather than after the grace period.
    command: ["sh", "-c", "trap 'exit 0' TERM; cat /work/init; touch /tmp/healthy; sleep 3; rm -f /tmp/healthy; sleep 600 & wait"]
    volumeMounts:
    - {name: work, mountPath: /work}
    # Burstable: the kubelet puts the pod under its burstable QoS cgroup
    # and sends the limit with the container's config.
    resources:
      requests: {cpu: 50m, memory: 16Mi}
      limits: {memory: 64Mi}
    livenessProbe:
      exec:
        command: ["cat", "/tmp/healthy"]
      initialDelaySeconds: 1
      periodSeconds: 1
      timeoutSeconds: 2
      failureThreshold: 1
`)
	// A second pod beside it, as a standalone kubelet's control-plane pods
	// are: on the host's network, Guaranteed (its cgroup directly under the
	// class root, with a CPU quota).
	hostPod := k.writeStaticPod("hostnet.yaml", `apiVersion: v1
kind: Pod
metadata:
  name: hostnet
  namespace: kube-system
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: busybox:latest
    imagePullPolicy: Never
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait"]
    resources:
      limits: {cpu: 100m, memory: 32Mi}
`)
	podName := "liveness-" + kubeletNode
	var sandboxID, podUID, firstID string
	k.await("the static pod's sandbox to be ready", 60*time.Second, func() (bool, string) {
		var ps criPods
		out := d.run("crictl", "pods", "--name", podName, "-o", "json")
		if err := json.Unmarshal([]byte(out), &ps); err != nil {
			t.Fatalf("crictl pods: %v\n%s", err, out)
		}
		for _, p := range ps.Items {
			if p.State == "SANDBOX_READY" && p.Metadata.Namespace == "default" {
				sandboxID, podUID = p.ID, p.Metadata.UID
				return true, ""
			}
		}
		return false, out
	})
	containers := func() criContainers {
		var cs criContainers
		out := d.run("crictl", "ps", "-a", "--pod", sandboxID, "-o", "json")
		if err := json.Unmarshal([]byte(out), &cs); err != nil {
			t.Fatalf("crictl ps: %v\n%s", err, out)
		}
		return cs
	}
	k.await("the container to run", 60*time.Second, func() (bool, string) {
		cs := containers()
		for _, c := range cs.Containers {
			if c.Metadata.Name == "app" && c.State == "CONTAINER_RUNNING" {
				firstID = c.ID
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", cs)
	})
	t.Logf("pod running after %v", time.Since(start).Round(time.Millisecond))
	// The init container ran first, to completion; the app's output is in
	// the log file the kubelet named, in the CRI format.
	for _, c := range containers().Containers {
		if c.Metadata.Name == "init" && c.State != "CONTAINER_EXITED" {
			t.Errorf("init container %s is %s, want CONTAINER_EXITED", c.ID, c.State)
		}
	}
	logFile := filepath.Join(k.dir, "pod-logs", fmt.Sprintf("default_%s_%s", podName, podUID), "app", "0.log")
	k.await("the app's output in "+logFile, 30*time.Second, func() (bool, string) {
		b, err := os.ReadFile(logFile)
		return err == nil && regexp.MustCompile(`(?m)^\S+ stdout F made by init$`).Match(b), fmt.Sprintf("%q %v", b, err)
	})
	// The kubelet's server reads that log (kubectl logs) and runs a
	// command in the container through peapod's ExecSync.
	k.await("the kubelet's containerLogs to show the app's output", 30*time.Second, func() (bool, string) {
		code, body, err := k.call(http.MethodGet, "/containerLogs/default/"+podName+"/app")
		return err == nil && code == http.StatusOK && body == "made by init\n", fmt.Sprintf("%d %q %v", code, body, err)
	})
	k.await("the kubelet's run to cat the init container's file", 30*time.Second, func() (bool, string) {
		code, body, err := k.call(http.MethodPost, "/run/default/"+podName+"/app?cmd=cat+/work/init")
		return err == nil && code == http.StatusOK && body == "made by init\n", fmt.Sprintf("%d %q %v", code, body, err)
	})
	// peapod took the class from the kubelet's cgroup parent, and the limit
	// from the container's resources.
	cg, limit := memoryLimit(t, d.inspect(firstID).Info.PID)
	if !strings.Contains(cg, "/burstable/") {
		t.Errorf("the container's memory cgroup is %s, want one under a burstable parent", cg)
	}
	if limit != "67108864" {
		t.Errorf("the memory limit of %s is %s, want 67108864 (64Mi)", cg, limit)
	}
	// The probe fails 3 s in; the kubelet kills the container and starts
	// attempt 1, a new container, in the same sandbox.
	k.await("the kubelet to restart the container after its liveness probe failed", 60*time.Second, func() (bool, string) {
		cs := containers()
		for _, c := range cs.Containers {
			if c.Metadata.Name == "app" && c.State == "CONTAINER_RUNNING" && c.Metadata.Attempt >= 1 && c.ID != firstID {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", cs)
	})
	t.Logf("container restarted after %v", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(k.log.String(), "failed liveness probe") {
		t.Errorf("the kubelet's log does not say the liveness probe failed")
	}

	hostID := ""
	k.await("the host-network pod's container to run", 60*time.Second, func() (bool, string) {
		var cs criContainers
		out := d.run("crictl", "ps", "--name", "main", "--state", "running", "-o", "json")
		if err := json.Unmarshal([]byte(out), &cs); err != nil {
			t.Fatalf("crictl ps: %v\n%s", err, out)
		}
		if len(cs.Containers) == 1 {
			hostID = cs.Containers[0].ID
		}
		return hostID != "", out
	})
	pid := d.inspect(hostID).Info.PID
	if ns, host := readLink(t, fmt.Sprintf("/proc/%d/ns/net", pid)), readLink(t, "/proc/self/ns/net"); ns != host {
		t.Errorf("the host-network container's network namespace is %s, the host's %s", ns, host)
	}
	if cg, limit := memoryLimit(t, pid); strings.Contains(cg, "/burstable/") || strings.Contains(cg, "/besteffort/") || limit != "33554432" {
		t.Errorf("the Guaranteed container's memory cgroup is %s with limit %s, want one under no class parent, 33554432 (32Mi)", cg, limit)
	}

	// A kubelet restarted adopts the pods from what peapod lists (their
	// labels and annotations carry the kubelet's own bookkeeping): it
	// keeps the sandboxes and the healthy container, and counts on from
	// the restart count peapod gives back when the probe fails again.
	k.stop()
	k.launch()
	t.Logf("kubelet restarted after %v", time.Since(start).Round(time.Millisecond))
	k.await("the restarted kubelet to restart the unhealthy container as attempt 2", 60*time.Second, func() (bool, string) {
		cs := containers()
		for _, c := range cs.Containers {
			if c.Metadata.Name == "app" && c.State == "CONTAINER_RUNNING" && c.Metadata.Attempt >= 2 {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", cs)
	})
	t.Logf("container restarted by the new kubelet after %v", time.Since(start).Round(time.Millisecond))
	var ps criPods
	if err := json.Unmarshal([]byte(d.run("crictl", "pods", "-o", "json")), &ps); err != nil {
		t.Fatalf("crictl pods: %v", err)
	}
	if len(ps.Items) != 2 || !slices.ContainsFunc(ps.Items, func(p criPod) bool { return p.ID == sandboxID }) {
		t.Errorf("after the kubelet's restart: sandboxes %+v, want 2 with %s", ps.Items, sandboxID)
	}
	if out := strings.TrimSpace(d.run("crictl", "ps", "-q", "--name", "main", "--state", "running")); out != hostID {
		t.Errorf("after the kubelet's restart the host-network pod's container is %q, want %s kept", out, hostID)
	}

	// Gone from the manifests, the pods are killed at once and their
	// sandboxes removed by the kubelet's container GC (every minute).
	for _, p := range []string{pod, hostPod} {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	k.await("the kubelet to remove the sandbox", 90*time.Second, func() (bool, string) {
		out := d.run("crictl", "pods", "-q")
		return strings.TrimSpace(out) == "", out
	})
	if out := strings.TrimSpace(d.run("crictl", "ps", "-a", "-q")); out != "" {
		t.Errorf("containers left after the sandbox went: %s", out)
	}
	t.Logf("pod removed after %v", time.Since(start).Round(time.Millisecond))
	k.stop()
	k.removeCgroupRoot()
	testutil.AssertNoLeak(t, before, roots)
	if after := kubeChains(t); !slices.Equal(iptBefore, after) {
		t.Errorf("iptables KUBE-* lines changed:\nbefore: %q\nafter:  %q", iptBefore, after)
	}
	if after := hostState(t); !slices.Equal(hostBefore, after) {
		t.Errorf("the host changed:\nbefore: %q\nafter:  %q", hostBefore, after)
	}
}
