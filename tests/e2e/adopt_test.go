package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/peapod/peapod/runtime/layout"
)

// adoptPod is a 2-container pod: web writes numbered lines (its count also
// to /dev/shm/n) and is ready while /tmp/ready exists; side sleeps, ready
// by its own probe (so both are probed when the pod is adopted).
func adoptPod(name string, sharePID bool) *corev1.Pod {
	web := shell("web", `touch /tmp/ready; i=0; while true; do echo "web $i"; echo $i > /dev/shm/n; i=$((i+1)); sleep 0.05; done`)
	web.ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-e", "/tmp/ready"}}},
		PeriodSeconds: 1, FailureThreshold: 1,
	}
	side := ctr("side", "sleep", "100000")
	side.ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}},
		PeriodSeconds: 1,
	}
	p := newPod(name, web, side)
	p.Spec.ShareProcessNamespace = ptr(sharePID)
	return p
}

// killSupervisor SIGKILLs a pod's supervisor and waits until it is gone.
func killSupervisor(t *testing.T, pid int) {
	t.Helper()
	if pid <= 0 {
		t.Fatalf("no supervisor pid (%d)", pid)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("failed to kill supervisor %d: %v", pid, err)
	}
	waitGone(t, pid)
}

// killContainer SIGKILLs a container's main process and waits until it is
// gone.
func killContainer(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("failed to kill container process %d: %v", pid, err)
	}
	waitGone(t, pid)
}

// adopters counts the processes running `peapod-supervisor adopt RUNDIR`.
func adopters(t *testing.T, runDir string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ent := range entries {
		cmd, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err == nil && strings.HasSuffix(string(cmd), "\x00adopt\x00"+runDir+"\x00") && !isZombie(ent.Name()) {
			n++
		}
	}
	return n
}

// readyCondition returns the pod's Ready condition.
func readyCondition(p *corev1.Pod) corev1.PodCondition {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c
		}
	}
	return corev1.PodCondition{}
}

// lostLast waits until the container was restarted after an exit nobody
// observed, and checks how that exit is reported.
func (e *env) lostLast(name, ctr string, restarts int32) {
	e.t.Helper()
	p := e.waitPod(name, waitTimeout, func(p *corev1.Pod) (bool, string) {
		s := containerStatus(e.t, p, ctr)
		return s.RestartCount == restarts && s.State.Running != nil,
			fmt.Sprintf("container %s: restartCount %d, state %+v; want %d restarts, running", ctr, s.RestartCount, s.State, restarts)
	})
	last := containerStatus(e.t, p, ctr).LastTerminationState.Terminated
	if last == nil || last.Reason != "ContainerStatusUnknown" || last.ExitCode != 137 ||
		last.Message != "The container could not be located when the pod was terminated" {
		e.t.Errorf("container %s: lastState %+v, want terminated ContainerStatusUnknown, exit code 137, the kubelet's message", ctr, last)
	}
}

// TestSupervisorLoss: a supervisor killed with SIGKILL is replaced by the
// next command that looks at the pod (here ps, run three times at once:
// one replacement only) or by gc, with one that adopts the running
// containers: the pod stays Running and Ready (the readiness result is
// resumed, not reset), the containers keep their pids and restart counts,
// output written while no supervisor ran reaches the log (the stdio FIFOs
// keep a reader: no SIGPIPE), and probes go on. A container killed after
// the adoption, and one that exited while no supervisor existed, are
// reported as ContainerStatusUnknown/137 and restarted per restartPolicy.
// rm -f then leaves nothing.
func TestSupervisorLoss(t *testing.T) {
	e := newEnv(t, fastBackoff)
	before := e.snapshot()
	e.runPod(podJSON(adoptPod("adopt", false)))
	e.mustRun("wait", "adopt", "--for=condition=Ready", "--timeout=10s")
	v := e.inspect("adopt")
	runDir := e.dirs().RunDir(v.UID)
	counter := filepath.Join(layout.Run(runDir).Shm(), "n")
	web, side := v.container(t, "web").PID, v.container(t, "side").PID
	readySince := readyCondition(e.get("adopt")).LastTransitionTime

	killSupervisor(t, v.SupervisorPID)
	// What web writes now goes into its FIFO, with no supervisor reading.
	orphaned := readCounter(t, counter)
	waitCounter(t, counter, orphaned+10)
	var wg sync.WaitGroup
	outs := make([]string, 3)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, stderr, code, err := e.runNoFail("", "ps")
			if err != nil || code != 0 {
				t.Errorf("ps: exit %d, %v: %s", code, err, stderr)
			}
			outs[i] = out
		}()
	}
	wg.Wait()
	for _, out := range outs {
		if !strings.Contains(out, "2/2") || !strings.Contains(out, "Running") {
			t.Errorf("ps after the supervisor was killed:\n%s\nwant the pod Running, 2/2 ready", out)
		}
	}
	if n := adopters(t, runDir); n != 1 {
		t.Errorf("%d adopting supervisors run after three concurrent ps, want 1", n)
	}
	v2 := e.inspect("adopt")
	if v2.SupervisorPID <= 0 || v2.SupervisorPID == v.SupervisorPID {
		t.Errorf("inspect: supervisorPid %d after supervisor %d was killed, want a new one", v2.SupervisorPID, v.SupervisorPID)
	}
	if got := v2.container(t, "web").PID; got != web {
		t.Errorf("web's pid is %d after adoption, was %d", got, web)
	}
	p := e.get("adopt")
	if r := readyCondition(p); r.Status != corev1.ConditionTrue || !r.LastTransitionTime.Equal(&readySince) {
		t.Errorf("Ready after adoption: %s since %v, want True since %v (never flipped)", r.Status, r.LastTransitionTime, readySince)
	}
	for _, s := range p.Status.ContainerStatuses {
		if s.State.Running == nil || s.RestartCount != 0 || !s.Ready {
			t.Errorf("container %s after adoption: state %+v, restarts %d, ready %v; want running, 0, ready", s.Name, s.State, s.RestartCount, s.Ready)
		}
	}
	if ev := e.mustRun("events", "adopt"); !strings.Contains(ev, "SupervisorLost") {
		t.Errorf("no SupervisorLost event:\n%s", ev)
	}
	// Every line written while no supervisor existed reached the log.
	now := readCounter(t, counter)
	waitCounter(t, counter, now+5)
	logs := e.mustRun("logs", "adopt", "-c", "web")
	for i := orphaned + 1; i <= now; i++ {
		if !strings.Contains(logs, "web "+strconv.Itoa(i)+"\n") {
			t.Errorf("line %d, written while no supervisor ran, is missing from the log", i)
			break
		}
	}

	// A container killed under the adopting supervisor: its exit cannot
	// be observed (it is not the supervisor's child); it is restarted.
	killContainer(t, side)
	e.lostLast("adopt", "side", 1)

	// A container that exits while no supervisor exists; gc adopts.
	side = e.inspect("adopt").container(t, "side").PID
	killSupervisor(t, v2.SupervisorPID)
	killContainer(t, side)
	if out := e.mustRun("gc"); !strings.Contains(out, "default/adopt") {
		t.Errorf("gc did not name the pod it adopted:\n%s", out)
	}
	e.lostLast("adopt", "side", 2)

	// Probes run under the new supervisor: readiness follows the file.
	e.mustExec("adopt", "web", "rm", "/tmp/ready")
	e.waitPod("adopt", waitTimeout, func(p *corev1.Pod) (bool, string) {
		r := readyCondition(p)
		return r.Status == corev1.ConditionFalse, fmt.Sprintf("Ready %s, want False", r.Status)
	})
	if s := containerStatus(t, e.get("adopt"), "web"); s.RestartCount != 0 || s.State.Running == nil {
		t.Errorf("web: restarts %d, state %+v; want still its first instance", s.RestartCount, s.State)
	}
	last := e.inspect("adopt")
	e.mustRun("rm", "-f", "adopt")
	waitGone(t, last.SupervisorPID)
	if left := podProcesses(t, v.UID); len(left) > 0 {
		t.Errorf("processes of the pod left after rm -f: %v", left)
	}
	e.assertNoLeak(before)
}

// TestSupervisorLossSharedPID: in a pod sharing one PID namespace the
// adopting supervisor keeps the pod's reaper, and a container it restarts
// joins the same PID namespace as the one that kept running; a process
// the status does not know of (its start was never recorded) is killed
// before the container starts again.
func TestSupervisorLossSharedPID(t *testing.T) {
	e := newEnv(t, fastBackoff)
	before := e.snapshot()
	e.runPod(podJSON(adoptPod("shared", true)))
	e.mustRun("wait", "shared", "--for=condition=Ready", "--timeout=10s")
	v := e.inspect("shared")
	reaper := string(v.Raw["reaperPid"])
	killSupervisor(t, v.SupervisorPID)
	killContainer(t, v.container(t, "side").PID)
	e.lostLast("shared", "side", 1)
	v2 := e.inspect("shared")
	if got := string(v2.Raw["reaperPid"]); got != reaper || reaper == "" {
		t.Errorf("reaperPid %s after adoption, was %s", got, reaper)
	}
	web, side := v2.container(t, "web").PID, v2.container(t, "side").PID
	if a, b := nsLink(t, web, "pid"), nsLink(t, side, "pid"); a != b {
		t.Errorf("restarted side is in PID namespace %s, web in %s", b, a)
	}
	// The restarted side's readiness starts over, probed by the new supervisor.
	e.waitPod("shared", waitTimeout, func(p *corev1.Pod) (bool, string) {
		r := readyCondition(p)
		return r.Status == corev1.ConditionTrue, fmt.Sprintf("Ready %s, want True", r.Status)
	})

	// A supervisor that died between starting an instance and recording
	// it: the status says side waits while its process runs. The adopting
	// supervisor empties the cgroup before it starts side again, so one
	// instance runs, not two.
	killSupervisor(t, v2.SupervisorPID)
	statusPath := layout.Run(e.dirs().RunDir(v.UID)).Status()
	var st map[string]any
	if err := json.Unmarshal([]byte(readHost(t, statusPath)), &st); err != nil {
		t.Fatal(err)
	}
	for _, c := range st["containers"].([]any) {
		if c := c.(map[string]any); c["name"] == "side" {
			c["state"], c["reason"], c["proc"] = "waiting", "ContainerCreating", map[string]any{"pid": 0, "start": 0}
		}
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(statusPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	e.mustRun("ps")
	waitGone(t, side)
	// The adopting supervisor starts side again after the old instance is
	// gone, not before ps returns: await the new instance (on a slow
	// machine — an emulated VM — inspect comes first).
	var v3 *inspectView
	for deadline := time.Now().Add(waitTimeout); ; time.Sleep(pollInterval) {
		v3 = e.inspect("shared")
		got := v3.container(t, "side").PID
		n := strings.Count(cgroupProcs(t, v3.container(t, "side").Cgroup), "sleep 100000")
		if got != side && got != 0 && n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v after adoption: side's pid %d (the unrecorded one was %d), %d instances in its cgroup; want a new pid and one instance", waitTimeout, got, side, n)
		}
	}
	e.mustRun("rm", "-f", "shared")
	waitGone(t, v3.SupervisorPID)
	e.assertNoLeak(before)
}

// cgroupProcs returns the command lines of the live processes whose
// cgroup path ends with path, one per line.
func cgroupProcs(t *testing.T, path string) string {
	t.Helper()
	var out []string
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range entries {
		cg, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cgroup"))
		if err != nil || !strings.Contains(string(cg), strings.TrimPrefix(path, "/")+"\n") || isZombie(ent.Name()) {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		out = append(out, strings.ReplaceAll(string(cmd), "\x00", " "))
	}
	return strings.Join(out, "\n")
}
