package probes_e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/peapod/peapod/internal/testutil"
	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/state"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Built once by TestMain.
var (
	// binDir holds peapod, peapod-supervisor, peapod-init, peapod-prober side by side.
	binDir string
	// peapodBin is the CLI.
	peapodBin string
	// busyboxTar is the image built by scripts/mkimage-busybox.sh.
	busyboxTar string
	// hostDir holds healthserver, bound into gRPC test pods by hostPath.
	hostDir string
)

// Deadlines.
const (
	// cliTimeout bounds one peapod invocation.
	cliTimeout = 30 * time.Second
	// pollInterval is how often status is read: the CLI has no event stream.
	pollInterval = 50 * time.Millisecond
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

// buildOnlyEnv names a directory for TestMain to build everything the suite
// needs into, running no test; prebuiltEnv names such a directory for the
// suite to use instead of building (scripts/vagrant-test.sh runs the suite
// in a VM under emulation, with what the host built).
const (
	buildOnlyEnv = "PEAPOD_E2E_BUILD_ONLY"
	prebuiltEnv  = "PEAPOD_E2E_PREBUILT"
)

func runMain(m *testing.M) int {
	if dir := os.Getenv(buildOnlyEnv); dir != "" {
		if err := build(dir); err != nil {
			fmt.Fprintln(os.Stderr, "probes_e2e:", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "probes_e2e: built into %s; no test run (%s)\n", dir, buildOnlyEnv)
		return 0
	}
	if os.Geteuid() != 0 {
		return m.Run()
	}
	if dir := os.Getenv(prebuiltEnv); dir != "" {
		if err := usePrebuilt(dir); err != nil {
			fmt.Fprintln(os.Stderr, "probes_e2e:", err)
			return 1
		}
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "peapod-probes-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "probes_e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := build(dir); err != nil {
		fmt.Fprintln(os.Stderr, "probes_e2e:", err)
		return 1
	}
	return m.Run()
}

// setDirs points the suite at the build in dir.
func setDirs(dir string) {
	binDir = filepath.Join(dir, "bin")
	hostDir = filepath.Join(dir, "host")
	peapodBin = filepath.Join(binDir, "peapod")
	busyboxTar = filepath.Join(binDir, "busybox.tar")
}

// usePrebuilt points the suite at what build made in dir earlier
// (buildOnlyEnv), after checking that it is all there.
func usePrebuilt(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("failed to resolve %s: %w", prebuiltEnv, err)
	}
	setDirs(dir)
	files := []string{peapodBin, busyboxTar, filepath.Join(hostDir, "healthserver")}
	for _, h := range testutil.Helpers {
		files = append(files, filepath.Join(binDir, h))
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%s=%s is not a complete build (make one with %s): %w", prebuiltEnv, dir, buildOnlyEnv, err)
		}
	}
	return nil
}

// build compiles peapod and its helpers (as scripts/provision.sh does), the
// gRPC health server and the image.
func build(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("failed to resolve build directory: %w", err)
	}
	setDirs(dir)
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	health := exec.Command(goBin, "build", "-buildvcs=false", "-o", filepath.Join(hostDir, "healthserver"), "./tests/probes_e2e/testdata/healthserver")
	// Static: it runs inside a busybox container through a hostPath volume.
	health.Env = append(os.Environ(), "CGO_ENABLED=0")
	_, err = testutil.BuildPeapod(binDir, health)
	return err
}

// env is one peapod instance: its own roots, bridge and subnet.
type env struct {
	// t owns the instance.
	t *testing.T
	// root and runRoot are --root and --run-root.
	root, runRoot string
	// bridge is --bridge ("pq" + hex, ≤ 15 bytes).
	bridge string
	// subnet is --subnet, a /24 of 10.226.0.0/16.
	subnet string
	// flags are extra global flags.
	flags []string
}

// newEnv makes an instance with the busybox image imported; cleanup
// force-removes its pods and deletes its bridge.
func newEnv(t *testing.T, flags ...string) *env {
	t.Helper()
	testutil.RequireRoot(t)
	dir, err := os.MkdirTemp("", "ppq")
	if err != nil {
		t.Fatalf("failed to make temp dir: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("failed to remove %q: %v", dir, err)
		}
	})
	e := &env{t: t, root: filepath.Join(dir, "root"), runRoot: filepath.Join(dir, "run"),
		bridge: "pq" + randomHex(t, 4), subnet: pickSubnet(t), flags: flags}
	t.Cleanup(e.teardown)
	e.mustRun("image", "import", busyboxTar, "--name", "busybox:latest")
	return e
}

// subnets hands each instance its own /24 of 10.226.0.0/16.
var subnets = testutil.NewSubnets("10.226.0.0/16")

// randomHex and pickSubnet name the test-only parts of an instance.
func randomHex(t *testing.T, n int) string { return testutil.RandHex(t, n) }
func pickSubnet(t *testing.T) string       { return subnets.Pick(t).String() }

// teardown force-removes every pod and deletes the bridge.
func (e *env) teardown() {
	out, _, code := e.run("ps", "-A")
	if code == 0 {
		for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			if _, stderr, code := e.run("rm", "-f", "-n", f[0], f[1]); code != 0 {
				e.t.Errorf("cleanup: rm -f %s/%s: %s", f[0], f[1], stderr)
			}
		}
	}
	// The bridge and its masquerade table outlive pods; net rm removes both.
	if _, stderr, code := e.run("net", "rm"); code != 0 {
		e.t.Errorf("cleanup: peapod net rm: %s", stderr)
	}
}

// run runs peapod with the instance's flags.
func (e *env) run(args ...string) (stdout, stderr string, code int) {
	return e.runIn("", args...)
}

func (e *env) runIn(stdin string, args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	g := append([]string{"--root", e.root, "--run-root", e.runRoot, "--bridge", e.bridge, "--subnet", e.subnet}, e.flags...)
	cmd := exec.CommandContext(ctx, peapodBin, append(g, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		e.t.Fatalf("peapod %s: timed out\nstderr: %s", strings.Join(args, " "), errb.String())
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	case err != nil:
		e.t.Fatalf("failed to run peapod %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), 0
}

func (e *env) mustRun(args ...string) string {
	e.t.Helper()
	out, stderr, code := e.run(args...)
	if code != 0 {
		e.t.Fatalf("peapod %s: exit code %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, stderr)
	}
	return out
}

// runPod runs a pod from a manifest (JSON is YAML).
func (e *env) runPod(manifest any) {
	e.t.Helper()
	b, err := json.Marshal(manifest)
	if err != nil {
		e.t.Fatalf("failed to encode manifest: %v", err)
	}
	if out, stderr, code := e.runIn(string(b), "run", "-d", "-f", "-"); code != 0 {
		e.t.Fatalf("peapod run: exit code %d\nstdout: %s\nstderr: %s\nmanifest: %s", code, out, stderr, b)
	}
}

func (e *env) mustExec(pod, ctr string, cmd ...string) {
	e.t.Helper()
	e.mustRun(append([]string{"exec", pod, "-c", ctr, "--"}, cmd...)...)
}

// get returns `peapod get POD -o json`.
func (e *env) get(name string) *corev1.Pod {
	e.t.Helper()
	out := e.mustRun("get", name, "-o", "json")
	var p corev1.Pod
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		e.t.Fatalf("get %s -o json: %v\n%s", name, err, out)
	}
	return &p
}

// waitPod polls `get -o json` until cond holds or timeout passes.
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
			st, _ := json.MarshalIndent(p.Status, "", "  ")
			e.t.Fatalf("pod %s: after %v still %s\nstatus: %s\nevents:\n%s", name, timeout, why, st, e.mustRun("events", name))
		}
		time.Sleep(pollInterval)
	}
}

// status reads the supervisor's status.json: its times carry nanoseconds,
// where get -o json (metav1.Time) rounds to the second.
func (e *env) status(name string) *state.Status {
	e.t.Helper()
	uid := e.get(name).UID
	st, err := state.ReadStatus(layout.Run(layout.Root{Root: e.root, RunRoot: e.runRoot}.RunDir(string(uid))).Status())
	if err != nil {
		e.t.Fatalf("failed to read status of %s: %v", name, err)
	}
	return st
}

// waitEvent polls `peapod events` until a line contains every part.
func (e *env) waitEvent(name string, timeout time.Duration, parts ...string) string {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out := e.mustRun("events", name)
		for _, line := range strings.Split(out, "\n") {
			if containsAll(line, parts) {
				return line
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("pod %s: no event with %q after %v:\n%s", name, parts, timeout, out)
		}
		time.Sleep(pollInterval)
	}
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// condition returns the pod condition of type t ("" status when absent).
func condition(p *corev1.Pod, t corev1.PodConditionType) corev1.PodCondition {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c
		}
	}
	return corev1.PodCondition{Type: t}
}

// ctrStatus returns the named container's status.
func ctrStatus(p *corev1.Pod, name string) corev1.ContainerStatus {
	for _, s := range p.Status.ContainerStatuses {
		if s.Name == name {
			return s
		}
	}
	return corev1.ContainerStatus{Name: name}
}

// readyIs waits for the pod's Ready condition.
func readyIs(want corev1.ConditionStatus) func(*corev1.Pod) (bool, string) {
	return func(p *corev1.Pod) (bool, string) {
		c := condition(p, corev1.PodReady)
		return c.Status == want, fmt.Sprintf("Ready=%q, want %q", c.Status, want)
	}
}

// restartsAtLeast waits for a container's restartCount.
func restartsAtLeast(ctr string, n int32) func(*corev1.Pod) (bool, string) {
	return func(p *corev1.Pod) (bool, string) {
		s := ctrStatus(p, ctr)
		return s.RestartCount >= n && s.State.Running != nil, fmt.Sprintf("restartCount %d (running %v), want >= %d running", s.RestartCount, s.State.Running != nil, n)
	}
}

// proberOf returns the pid of the peapod-prober child of pod's supervisor
// (0 when none runs).
func proberOf(t *testing.T, e *env, pod string) int {
	t.Helper()
	sup := e.status(pod).Supervisor.PID
	want := filepath.Join(binDir, "peapod-prober")
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		t.Fatalf("failed to list /proc: %v", err)
	}
	for _, d := range dirs {
		if exe, err := os.Readlink(d + "/exe"); err != nil || exe != want {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if ppid, err := parentOf(pid); err == nil && ppid == sup {
			return pid
		}
	}
	return 0
}

// parentOf reads a process's PPid from /proc.
func parentOf(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("failed to read status of %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PPid:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("no PPid in status of %d", pid)
}

// TestProberRestart kills a pod's peapod-prober: the supervisor reaps it
// and starts a new one, Ready never drops (a dead prober is a probe error,
// which leaves the result alone), and the new prober probes. The probe is
// gRPC: plain HTTP runs in the supervisor itself.
func TestProberRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := corev1.Container{Name: "web", Image: "busybox:latest",
		Command:      []string{"sh", "-c", "touch /tmp/up && exec /hs/healthserver -mode file -file /tmp/up -port 9090"},
		VolumeMounts: []corev1.VolumeMount{{Name: "hs", MountPath: "/hs", ReadOnly: true}}}
	c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9090}},
		PeriodSeconds: 1, FailureThreshold: 1}
	e.runPod(&corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: "pr"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{c}, TerminationGracePeriodSeconds: ptr[int64](2),
			Volumes: []corev1.Volume{{Name: "hs", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir}}}}}})
	e.mustRun("wait", "pr", "--for=condition=Ready", "--timeout=10s")
	old := proberOf(t, e, "pr")
	if old == 0 {
		t.Fatal("no peapod-prober runs for a pod with a gRPC probe")
	}
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatalf("failed to kill prober %d: %v", old, err)
	}
	e.waitPod("pr", 10*time.Second, func(p *corev1.Pod) (bool, string) {
		if c := condition(p, corev1.PodReady); c.Status != corev1.ConditionTrue {
			t.Fatalf("Ready dropped to %q after the prober died: %s", c.Status, c.Message)
		}
		pid := proberOf(t, e, "pr")
		return pid != 0 && pid != old, fmt.Sprintf("prober pid %d (killed %d)", pid, old)
	})
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", old)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("killed prober %d was not reaped: %v", old, err)
	}
	e.mustExec("pr", "web", "rm", "/tmp/up")
	e.waitPod("pr", 10*time.Second, readyIs(corev1.ConditionFalse))
}
