package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/peapod/peapod/internal/testutil"
	"github.com/peapod/peapod/runtime/layout"
	corev1 "k8s.io/api/core/v1"
	kjson "sigs.k8s.io/json"
)

// Deadlines of the CLI and of the conditions tests wait for.
const (
	// cliTimeout bounds one peapod invocation, so a hang fails the test
	// instead of the whole package.
	cliTimeout = 30 * time.Second
	// waitTimeout bounds a wait for a pod to reach a state.
	waitTimeout = 10 * time.Second
	// pollInterval is how often a pod's status is read while waiting;
	// the CLI offers no event stream a test can block on for every case.
	pollInterval = 50 * time.Millisecond
)

// env is one peapod instance under test: its own roots, bridge and subnet.
type env struct {
	// t is the test that owns the instance.
	t *testing.T
	// root and runRoot are --root and --run-root.
	root, runRoot string
	// bridge is --bridge: "pe" + random hex, at most 15 bytes.
	bridge string
	// subnet is --subnet: a random /24 inside 10.224.0.0/16.
	subnet netip.Prefix
	// driver is --cgroup-driver; empty leaves the default (auto).
	driver string
	// flags are extra global flags passed on every invocation.
	flags []string
	// imageID is the busybox image's ID as `image import` printed it.
	imageID string
	// bin is the peapod binary this instance runs (default peapodBin).
	bin string
	// mine holds names this instance's pods used (host veths, supervisor
	// and container pids as "pid=N "), for the shared-host leak filter.
	mine map[string]bool
	// foreignNet is set when bridge and subnet were taken from another
	// instance: teardown then leaves the bridge to its owner.
	foreignNet bool
	// rootSize, when set, puts --root on a tmpfs of that many bytes.
	rootSize int64
	// extraEnv is added to the environment of every invocation.
	extraEnv []string
}

// envOption configures newEnv.
type envOption func(*env)

// withDriver selects --cgroup-driver.
func withDriver(d string) envOption { return func(e *env) { e.driver = d } }

// withFlags adds global flags to every invocation.
func withFlags(f ...string) envOption { return func(e *env) { e.flags = append(e.flags, f...) } }

// withBridgeOf configures another instance's bridge, which teardown then
// leaves to its owner.
func withBridgeOf(o *env) envOption {
	return func(e *env) { e.bridge, e.foreignNet = o.bridge, true }
}

// withSubnetOf configures another instance's subnet.
func withSubnetOf(o *env) envOption { return func(e *env) { e.subnet = o.subnet } }

// withBinary runs the peapod binary at path (its helpers beside it).
func withBinary(path string) envOption { return func(e *env) { e.bin = path } }

// withTmpfsRoot puts --root on a tmpfs of size bytes, mounted for the
// test and unmounted after its pods are removed, so a test can fill it.
func withTmpfsRoot(size int64) envOption { return func(e *env) { e.rootSize = size } }

// newEnv makes a fresh instance, imports the busybox image as
// busybox:latest, and registers the cleanup that force-removes its pods and
// deletes its bridge.
func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	testutil.RequireRoot(t)
	dir := shortTempDir(t)
	e := &env{
		t:       t,
		root:    filepath.Join(dir, "root"),
		runRoot: filepath.Join(dir, "run"),
		bridge:  "pe" + randomHex(t, 4),
		subnet:  pickSubnet(t),
		mine:    make(map[string]bool),
		bin:     peapodBin,
	}
	for _, o := range opts {
		o(e)
	}
	if e.rootSize > 0 {
		mountTmpfs(t, e.root, e.rootSize)
	}
	t.Cleanup(e.teardown)
	out := e.mustRun("image", "import", busyboxTar, "--name", "busybox:latest")
	fields := strings.Fields(out)
	if len(fields) < 2 || fields[0] != "imported" || !strings.HasPrefix(fields[1], "sha256:") {
		t.Fatalf("image import printed %q, want \"imported sha256:<id> busybox:latest\"", out)
	}
	e.imageID = fields[1]
	return e
}

// shortTempDir makes a temp dir with a short path, removed after the
// test: the supervisor's unix socket lies under --run-root, and a socket
// path is limited to 107 bytes (t.TempDir's names carry the test's name).
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ppe2e")
	if err != nil {
		t.Fatalf("failed to make temp dir: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("failed to remove temp dir %q (a leaked mount?): %v", dir, err)
		}
	})
	return dir
}

// mountTmpfs mounts a tmpfs of size bytes on dir (created) and registers
// its unmount; registered before the instance's teardown, it runs after it.
func mountTmpfs(t *testing.T, dir string, size int64) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		t.Fatalf("failed to mount a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("failed to unmount the tmpfs on %s (still in use?): %v", dir, err)
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
}

// withEnv returns a copy of e whose invocations get vars added to their
// environment (e.g. PEAPOD_FAULT, PEAPOD_TRACE).
func (e *env) withEnv(vars ...string) *env {
	c := *e
	c.extraEnv = append(append([]string{}, e.extraEnv...), vars...)
	return &c
}

// on returns a copy of e that reports to t, for use in a subtest.
func (e *env) on(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// subnets hands each instance its own /24 of 10.224.0.0/16.
var subnets = testutil.NewSubnets("10.224.0.0/16")

// randomHex and pickSubnet name the test-only parts of an instance.
func randomHex(t *testing.T, n int) string { return testutil.RandHex(t, n) }
func pickSubnet(t *testing.T) netip.Prefix { return subnets.Pick(t) }

// teardown force-removes every pod of the instance and deletes its bridge;
// it runs even when the test failed half-way.
func (e *env) teardown() {
	out, _, code := e.run("", "ps", "-A")
	if code == 0 {
		for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			if _, stderr, code := e.run("", "rm", "-f", "-n", f[0], f[1]); code != 0 {
				e.t.Errorf("cleanup: rm -f %s/%s failed: %s", f[0], f[1], stderr)
			}
		}
	}
	if e.foreignNet {
		return
	}
	// The bridge and its masquerade table outlive the root's pods by
	// design; `net rm` removes them once no pod holds an address.
	if _, stderr, code := e.run("", "net", "rm"); code != 0 {
		e.t.Errorf("cleanup: peapod net rm: %s", stderr)
	}
	if _, err := net.InterfaceByName(e.bridge); err == nil {
		e.t.Errorf("cleanup: bridge %s still exists after net rm", e.bridge)
	}
}

// args prepends the instance's global flags.
func (e *env) args(args ...string) []string {
	g := []string{"--root", e.root, "--run-root", e.runRoot, "--bridge", e.bridge, "--subnet", e.subnet.String()}
	if e.driver != "" {
		g = append(g, "--cgroup-driver", e.driver)
	}
	g = append(g, e.flags...)
	return append(g, args...)
}

// run runs peapod with stdin and args and returns its stdout, stderr and
// exit code; a peapod that cannot be started or times out fails the test.
func (e *env) run(stdin string, args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	stdout, stderr, code, err := e.runNoFail(stdin, args...)
	if err != nil {
		e.t.Fatal(err)
	}
	return stdout, stderr, code
}

// runNoFail is run for goroutines other than the test's: it returns what
// run would fail the test with.
func (e *env) runNoFail(stdin string, args ...string) (stdout, stderr string, code int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, e.args(args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	if len(e.extraEnv) > 0 {
		cmd.Env = append(os.Environ(), e.extraEnv...)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return "", "", -1, fmt.Errorf("peapod %s: timed out after %v\nstderr: %s", strings.Join(args, " "), cliTimeout, errb.String())
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode(), nil
	case err != nil:
		return "", "", -1, fmt.Errorf("failed to run peapod %s: %w", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), 0, nil
}

// mustRun runs peapod and fails the test unless it exits 0.
func (e *env) mustRun(args ...string) string {
	e.t.Helper()
	out, stderr, code := e.run("", args...)
	if code != 0 {
		e.t.Fatalf("peapod %s: exit code %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, stderr)
	}
	return out
}

// runPod runs `peapod run -d -f -` with the manifest and fails the test
// unless it exits 0.
func (e *env) runPod(manifest string) {
	e.t.Helper()
	out, stderr, code := e.run(manifest, "run", "-d", "-f", "-")
	if code != 0 {
		e.t.Fatalf("peapod run -d: exit code %d\nstdout: %s\nstderr: %s\nmanifest:\n%s", code, out, stderr, manifest)
	}
	if sharedHost() {
		for _, line := range strings.Split(out, "\n") {
			if name, ok := strings.CutSuffix(strings.TrimPrefix(line, "pod/"), " created"); ok {
				e.inspect(name)
			}
		}
	}
}

// exec runs a command in a container and returns its stdout, stderr and
// exit code.
func (e *env) exec(pod, ctr string, cmd ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	return e.run("", append([]string{"exec", pod, "-c", ctr, "--"}, cmd...)...)
}

// mustExec runs a command in a container and fails the test unless it
// exits 0.
func (e *env) mustExec(pod, ctr string, cmd ...string) string {
	e.t.Helper()
	out, stderr, code := e.exec(pod, ctr, cmd...)
	if code != 0 {
		e.t.Fatalf("exec %v in %s/%s: exit code %d\nstdout: %s\nstderr: %s", cmd, pod, ctr, code, out, stderr)
	}
	return out
}

// get returns `peapod get POD -o json`, decoded strictly into a v1.Pod: an
// unknown or duplicate field fails the test.
func (e *env) get(name string) *corev1.Pod {
	e.t.Helper()
	out := e.mustRun("get", name, "-o", "json")
	var p corev1.Pod
	strict, err := kjson.UnmarshalStrict([]byte(out), &p)
	if err != nil {
		e.t.Fatalf("get %s -o json: not a v1.Pod: %v\n%s", name, err, out)
	}
	if len(strict) > 0 {
		e.t.Fatalf("get %s -o json: strict decoding into v1.Pod failed: %v\n%s", name, errors.Join(strict...), out)
	}
	return &p
}

// inspectView is the part of `peapod inspect` the tests read; the issue
// names every field.
type inspectView struct {
	Name          string                     `json:"name"`
	Namespace     string                     `json:"namespace"`
	UID           string                     `json:"uid"`
	SupervisorPID int                        `json:"supervisorPid"`
	IP            string                     `json:"ip"`
	Namespaces    map[string]inspectNS       `json:"namespaces"`
	Containers    []inspectContainer         `json:"containers"`
	Raw           map[string]json.RawMessage `json:"-"`
}

// inspectNS is one pinned namespace.
type inspectNS struct {
	Path string `json:"path"`
}

// inspectContainer is one container of inspect.
type inspectContainer struct {
	Name    string `json:"name"`
	ID      string `json:"id"`
	PID     int    `json:"pid"`
	State   string `json:"state"`
	Rootfs  string `json:"rootfs"`
	LogPath string `json:"logPath"`
	Cgroup  string `json:"cgroup"`
}

// inspect returns `peapod inspect POD`.
func (e *env) inspect(name string) *inspectView {
	e.t.Helper()
	out := e.mustRun("inspect", name)
	var v inspectView
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		e.t.Fatalf("inspect %s: bad JSON: %v\n%s", name, err, out)
	}
	if err := json.Unmarshal([]byte(out), &v.Raw); err != nil {
		e.t.Fatalf("inspect %s: bad JSON: %v\n%s", name, err, out)
	}
	e.remember(&v)
	return &v
}

// remember records the host names and pids of an inspected pod.
func (e *env) remember(v *inspectView) {
	var veth string
	if raw, ok := v.Raw["hostVeth"]; ok && json.Unmarshal(raw, &veth) == nil && veth != "" {
		e.mine["links: "+veth+" "] = true
	}
	if v.SupervisorPID > 0 {
		e.mine[fmt.Sprintf("pid=%d ", v.SupervisorPID)] = true
	}
	for _, c := range v.Containers {
		if c.PID > 0 {
			e.mine[fmt.Sprintf("pid=%d ", c.PID)] = true
		}
	}
}

// container returns the named container of an inspect view.
func (v *inspectView) container(t *testing.T, name string) inspectContainer {
	t.Helper()
	for _, c := range v.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("inspect %s: no container %q in %+v", v.Name, name, v.Containers)
	return inspectContainer{}
}

// waitPod polls `get -o json` until cond holds, and fails the test with the
// last status and what cond said when the deadline passes.
func (e *env) waitPod(name string, timeout time.Duration, cond func(*corev1.Pod) (bool, string)) *corev1.Pod {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		p := e.get(name)
		ok, why := cond(p)
		if ok {
			return p
		}
		if time.Now().After(deadline) {
			status, _ := json.MarshalIndent(p.Status, "", "  ")
			e.t.Fatalf("pod %s: after %v still %s\nstatus: %s", name, timeout, why, status)
		}
		time.Sleep(pollInterval)
	}
}

// phaseIs is a waitPod condition on the pod's phase.
func phaseIs(phase corev1.PodPhase) func(*corev1.Pod) (bool, string) {
	return func(p *corev1.Pod) (bool, string) {
		return p.Status.Phase == phase, fmt.Sprintf("phase %q, want %q", p.Status.Phase, phase)
	}
}

// containerStatus returns the status of the named app or init container.
func containerStatus(t *testing.T, p *corev1.Pod, name string) corev1.ContainerStatus {
	t.Helper()
	for _, s := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("pod %s: no status for container %q", p.Name, name)
	return corev1.ContainerStatus{}
}

// dirs is the on-disk layout of the instance's roots.
func (e *env) dirs() layout.Root { return layout.Root{Root: e.root, RunRoot: e.runRoot} }

// rootID is the short id peapod derives from --root for host-global names
// (runtime/pod.Manager.RootID); checkCgroupPrefix verifies the tests agree
// with peapod on it.
func (e *env) rootID() string {
	sum := sha256.Sum256([]byte(filepath.Clean(e.root)))
	return hex.EncodeToString(sum[:])[:6]
}

// roots names what the instance owns, for the leak snapshot. The root's
// network config, lock and image store rightly outlive pods; they exist
// before the first snapshot anyway.
func (e *env) roots() testutil.Roots {
	return testutil.Roots{
		Root:           e.root,
		RunRoot:        e.runRoot,
		CgroupPrefixes: []string{"peapod-" + e.rootID()},
		NftTablePrefix: "peapod-" + e.bridge,
	}
}

// snapshot warms the instance up — one pod run and force-removed, so the
// bridge and the network's state directory, which outlive pods, exist —
// and then takes the leak snapshot.
func (e *env) snapshot() *testutil.Snapshot {
	e.t.Helper()
	e.runPod(podJSON(newPod("warmup", ctr("c", "sleep", "1000"))))
	v := e.inspect("warmup")
	e.checkCgroupPrefix(v)
	e.mustRun("rm", "-f", "warmup")
	// The supervisor is an orphan once run returned; let PID 1 reap it, so
	// the snapshot does not hold a zombie that later "disappears".
	waitGone(e.t, v.SupervisorPID)
	for _, c := range v.Containers {
		waitGone(e.t, c.PID)
	}
	return testutil.TakeSnapshot(e.t, e.roots())
}

// snapshot0 takes the leak snapshot as things are, without a warm-up.
func (e *env) snapshot0() *testutil.Snapshot {
	e.t.Helper()
	return testutil.TakeSnapshot(e.t, e.roots())
}

// checkCgroupPrefix fails the test when a container's cgroup does not carry
// the prefix the leak snapshot looks for: the snapshot would miss leaks.
func (e *env) checkCgroupPrefix(v *inspectView) {
	e.t.Helper()
	prefix := "peapod-" + e.rootID() + "/"
	for _, c := range v.Containers {
		if !strings.HasPrefix(strings.TrimPrefix(c.Cgroup, "/"), prefix) {
			e.t.Fatalf("container %s/%s: cgroup %q does not start with %q", v.Name, c.Name, c.Cgroup, prefix)
		}
	}
}

// sharedHostEnv, when set, narrows leak diffs to this instance's own
// state (testutil.SharedHostEnv).
const sharedHostEnv = testutil.SharedHostEnv

// sharedHost tells whether sharedHostEnv is set.
func sharedHost() bool { return os.Getenv(sharedHostEnv) != "" }

// assertNoLeak compares the machine against before; with sharedHostEnv
// set, only what names this instance's state: its roots, cgroups, bridge
// and nftables tables, and the veths and processes its pods had.
func (e *env) assertNoLeak(before *testutil.Snapshot) {
	e.t.Helper()
	r := e.roots()
	r.Mine = []string{" " + e.bridge + " "}
	for s := range e.mine {
		r.Mine = append(r.Mine, s)
	}
	testutil.AssertNoLeak(e.t, before, r)
}

// readHost reads a host file and fails the test on error.
func readHost(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("failed to read %s: %v", path, err)
	}
	return string(b)
}

// statusField returns the value of a "Key:\tvalue" line of /proc/PID/status
// text.
func statusField(t *testing.T, status, key string) string {
	t.Helper()
	for _, line := range strings.Split(status, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %q in /proc status:\n%s", key, status)
	return ""
}
