package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// supFaultPod is a 2-container pod: a sleeps; c exits 1 on its first run
// (a marker in an emptyDir remembers it) and sleeps from its second, so
// the supervisor restarts it once. The sleeps' arguments are unusual, so
// their processes can be counted anywhere on the host.
func supFaultPod(name string) string {
	c := mount(shell("c", `if [ -e /w/once ]; then exec sleep 100272; fi; touch /w/once; exit 1`), "w", "/w")
	p := newPod(name, ctr("a", "sleep", "100171"), c)
	p.Spec.Volumes = []corev1.Volume{emptyDir("w")}
	return podJSON(p)
}

// supFaultProcs are the pod's expected processes, by command line.
var supFaultProcs = []string{"sleep 100171 ", "sleep 100272 "}

// supFaultStep is a step of a container start, as the faultinject
// supervisor traces it ("fault-step: start CONTAINER K STEP").
var supFaultStep = regexp.MustCompile(`(?m)^fault-step: start (\S+) (\d+) (.+)$`)

// supFaultKilled is the line the faultinject supervisor logs right before
// it SIGKILLs itself.
var supFaultKilled = regexp.MustCompile(`(?m)^fault: killing the supervisor \(pid (\d+)\)`)

// TestSupervisorFaultAtEveryStep SIGKILLs the supervisor (a faultinject
// build, PEAPOD_SUPERVISOR_FAULT) right after each step of a container
// start in turn, the steps being those the fault build traces, so a step
// added later is covered at once; twice per step: in the first start of a
// (before the supervisor reported the pod started: run must fail and leave
// nothing, or have made the whole pod) and in the restart of c after its
// first exit (after the report: adoption's job). Then the next ps adopts
// the pod: it is Running with every container running exactly once (no
// container started twice, none lost), and rm -f leaves nothing on the
// host (the leak snapshot, and no process of the pod anywhere).
func TestSupervisorFaultAtEveryStep(t *testing.T) {
	e := newEnv(t, withBinary(faultBin), fastBackoff)
	before := e.snapshot()

	e.withEnv("PEAPOD_SUPERVISOR_FAULT=trace").runPod(supFaultPod("steps"))
	e.waitAllRunning("steps", 1)
	v := e.inspect("steps")
	log, err := os.ReadFile(filepath.Join(e.runRoot, "pods", v.UID, "supervisor.log"))
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, m := range supFaultStep.FindAllStringSubmatch(string(log), -1) {
		if k, _ := strconv.Atoi(m[2]); m[1] == "a" && k == len(steps)+1 {
			steps = append(steps, m[3])
		}
	}
	if len(steps) < 3 || !strings.Contains(string(log), "fault-step: start c "+strconv.Itoa(len(steps))) {
		t.Fatalf("steps of a container start traced: %q; supervisor log:\n%s", steps, log)
	}
	e.mustRun("rm", "-f", "steps")

	for k, step := range steps {
		for _, fc := range []struct {
			when, ctr string
			n         int
		}{{"first", "a", 1}, {"restart", "c", 2}} {
			t.Run(fmt.Sprintf("%s/%d-%s", fc.when, k+1, strings.ReplaceAll(step, " ", "-")), func(t *testing.T) {
				e := e.on(t)
				name := fmt.Sprintf("sf-%s-%d", fc.when, k+1)
				fault := e.withEnv(fmt.Sprintf("PEAPOD_SUPERVISOR_FAULT=start:%s:%d:%d:kill", fc.ctr, fc.n, k+1))
				t0 := time.Now()
				_, stderr, code := fault.run(supFaultPod(name), "run", "-d", "-f", "-")
				t.Logf("run: exit %d in %v", code, time.Since(t0))
				if code != 0 {
					// Killed before its report: run rolls back.
					if fc.when == "restart" {
						t.Fatalf("run failed though the fault came after the report: exit %d: %s", code, stderr)
					}
					if pods := e.psNamed(name); len(pods) != 0 {
						t.Errorf("run failed, yet ps shows %+v", pods)
					}
					if out := e.mustRun("gc"); strings.TrimSpace(out) != "nothing to collect" {
						t.Errorf("run failed and rolled back, yet gc collected:\n%s", out)
					}
					e.checkNoPodProcs()
					e.assertNoLeak(before)
					return
				}
				if fc.when == "first" {
					t.Fatalf("run succeeded though the supervisor was killed in a's first start: %s", stderr)
				}
				t0 = time.Now()
				e.awaitSupervisorFault()
				t.Logf("supervisor killed itself after %v", time.Since(t0))
				// Killed before c's new instance was recorded, c shows its
				// last exit (Error, as kubectl shows it) until the adopting
				// supervisor restarts it.
				t0 = time.Now()
				pods := e.psNamed(name)
				if len(pods) != 1 || (pods[0].status != "Running" && pods[0].status != "Error") {
					t.Errorf("ps after the supervisor was killed (adopting): %+v, want one pod, Running or Error", pods)
				}
				t.Logf("after the fault ps says %q", pods[0].status)
				e.waitAllRunning(name, 1)
				if pods := e.psNamed(name); len(pods) != 1 || pods[0].status != "Running" || pods[0].ready != "2/2" {
					t.Errorf("ps once every container runs again: %+v, want one pod Running, 2/2", pods)
				}
				t.Logf("adopted and running after %v", time.Since(t0))
				v := e.inspect(name)
				e.waitPodProcs(v.UID)
				t0 = time.Now()
				e.mustRun("rm", "-f", name)
				waitDead(t, v.SupervisorPID)
				t.Logf("removed in %v", time.Since(t0))
				e.checkNoPodProcs()
				e.assertNoLeak(before)
			})
		}
	}
}

// waitAllRunning waits until every container of the pod runs and c has
// been restarted restarts times.
func (e *env) waitAllRunning(name string, restarts int32) {
	e.t.Helper()
	e.waitPod(name, waitTimeout, func(p *corev1.Pod) (bool, string) {
		for _, s := range p.Status.ContainerStatuses {
			if s.State.Running == nil || (s.Name == "c" && s.RestartCount != restarts) {
				return false, fmt.Sprintf("phase %s, containers %+v; want all running, c restarted %d times", p.Status.Phase, p.Status.ContainerStatuses, restarts)
			}
		}
		return p.Status.Phase == corev1.PodRunning && len(p.Status.ContainerStatuses) == 2, fmt.Sprintf("phase %s, %d containers", p.Status.Phase, len(p.Status.ContainerStatuses))
	})
}

// awaitSupervisorFault waits until the only pod's supervisor has killed
// itself (its log says so, then its pid is gone).
func (e *env) awaitSupervisorFault() {
	t := e.t
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		logs, _ := filepath.Glob(filepath.Join(e.runRoot, "pods", "*", "supervisor.log"))
		if len(logs) == 1 {
			b, _ := os.ReadFile(logs[0])
			if m := supFaultKilled.FindStringSubmatch(string(b)); m != nil {
				pid, _ := strconv.Atoi(m[1])
				waitDead(t, pid)
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no supervisor killed itself within %v (logs %v)", waitTimeout, logs)
		}
		// A file offers no event for a line written to it but inotify,
		// which would need a watch per run dir for a 10 ms wait.
		time.Sleep(10 * time.Millisecond)
	}
}

// waitPodProcs waits until the pod's cgroups hold exactly one process per
// container (its sleep): a container started twice, or a process of a
// lost start, would stay and fail the test.
func (e *env) waitPodProcs(uid string) {
	t := e.t
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		procs := podProcesses(t, uid)
		count := map[string]int{}
		for _, cmd := range procs {
			count[cmd]++
		}
		ok := len(procs) == len(supFaultProcs)
		for _, want := range supFaultProcs {
			ok = ok && count[want] == 1
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes in the pod's cgroups: %v, want one each of %q", procs, supFaultProcs)
		}
		// A restarted container's shell execs its sleep a moment after
		// it is recorded running; no event marks the exec.
		time.Sleep(10 * time.Millisecond)
	}
}

// checkNoPodProcs fails the test if a process of a supFaultPod runs
// anywhere on the host (in the pod's cgroups or out of them).
func (e *env) checkNoPodProcs() {
	t := e.t
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range entries {
		cmd, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err != nil || isZombie(ent.Name()) {
			continue
		}
		c := strings.ReplaceAll(string(cmd), "\x00", " ")
		for _, want := range supFaultProcs {
			if c == want {
				t.Errorf("process %s (%q) left after the pod was removed", ent.Name(), c)
			}
		}
	}
}

// waitDead waits until process pid has exited: gone, or a zombie (the
// supervisors are detached; the host's PID 1, their parent now, may reap
// them only a second or two later).
func waitDead(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for syscall.Kill(pid, 0) == nil && !isZombie(strconv.Itoa(pid)) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs after %v", pid, waitTimeout)
		}
		time.Sleep(pollInterval)
	}
}
