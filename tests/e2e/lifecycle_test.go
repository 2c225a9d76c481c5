package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/peapod/peapod/cgroups"
	"github.com/peapod/peapod/internal/procfs"
)

// fastBackoff makes crash-loop restarts quick enough for a test.
var fastBackoff = withFlags("--backoff-initial", "0.2", "--backoff-max", "0.5")

// cgroupDrivers are the drivers stop and rm are tested under: both on a
// hybrid host (CI's), where v2 uses the controller-less
// /sys/fs/cgroup/unified tree; only v2 on a pure cgroup v2 host (Debian 12
// under systemd, scripts/vagrant-test.sh's VM), which has no v1 hierarchy.
var cgroupDrivers = hostCgroupDrivers()

func hostCgroupDrivers() []string {
	if mode, err := cgroups.Detect(cgroups.DefaultMountRoot); err == nil && mode == cgroups.ModeUnified {
		return []string{"v2"}
	}
	return []string{"v1", "v2"}
}

// TestRestartPolicy_6: exit 1 restarts under Always and OnFailure, not
// Never; exit 0 restarts only under Always; restartCount, lastState and the
// phase follow.
func TestRestartPolicy_6(t *testing.T) {
	tests := []struct {
		policy   corev1.RestartPolicy
		exit     int
		restarts bool
		phase    corev1.PodPhase // final phase when it does not restart
	}{
		{corev1.RestartPolicyAlways, 0, true, ""},
		{corev1.RestartPolicyAlways, 1, true, ""},
		{corev1.RestartPolicyOnFailure, 0, false, corev1.PodSucceeded},
		{corev1.RestartPolicyOnFailure, 1, true, ""},
		{corev1.RestartPolicyNever, 0, false, corev1.PodSucceeded},
		{corev1.RestartPolicyNever, 1, false, corev1.PodFailed},
	}
	e := newEnv(t, fastBackoff)
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/exit%d", tt.policy, tt.exit), func(t *testing.T) {
			e := e.on(t)
			name := strings.ToLower(fmt.Sprintf("rp-%s-%d", tt.policy, tt.exit))
			p := newPod(name, shell("c", fmt.Sprintf("echo ran; exit %d", tt.exit)))
			p.Spec.RestartPolicy = tt.policy
			e.runPod(podJSON(p))
			wantReason := "Completed"
			if tt.exit != 0 {
				wantReason = "Error"
			}
			if tt.restarts {
				got := e.waitPod(name, waitTimeout, func(p *corev1.Pod) (bool, string) {
					n := containerStatus(t, p, "c").RestartCount
					return n >= 2, fmt.Sprintf("restartCount %d, want >= 2", n)
				})
				s := containerStatus(t, got, "c")
				last := s.LastTerminationState.Terminated
				if last == nil || last.ExitCode != int32(tt.exit) || last.Reason != wantReason {
					t.Errorf("lastState = %+v, want terminated with exit code %d, reason %s", s.LastTerminationState, tt.exit, wantReason)
				}
				if got.Status.Phase != corev1.PodRunning {
					t.Errorf("phase %q while restarting, want Running", got.Status.Phase)
				}
				return
			}
			e.waitPod(name, waitTimeout, phaseIs(tt.phase))
			sup := e.inspect(name).SupervisorPID
			waitGone(t, sup)
			// The supervisor is gone: nothing can restart the container any more.
			got := e.get(name)
			s := containerStatus(t, got, "c")
			if s.RestartCount != 0 || s.LastTerminationState.Terminated != nil {
				t.Errorf("restartCount %d, lastState %+v, want no restart", s.RestartCount, s.LastTerminationState)
			}
			term := s.State.Terminated
			if term == nil || term.ExitCode != int32(tt.exit) || term.Reason != wantReason {
				t.Errorf("state = %+v, want terminated with exit code %d, reason %s", s.State, tt.exit, wantReason)
			}
			if got.Status.Phase != tt.phase {
				t.Errorf("phase %q, want %q", got.Status.Phase, tt.phase)
			}
		})
	}
}

// waitGone waits until process pid has exited; pid 0 is gone already.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for pid != 0 && syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still exists after %v", pid, waitTimeout)
		}
		time.Sleep(pollInterval)
	}
}

// TestInitContainers_6: init containers run in order, to completion,
// before the app container.
func TestInitContainers_6(t *testing.T) {
	e := newEnv(t)
	p := newPod("init", mount(shell("app", "cat /work/log"), "work", "/work"))
	p.Spec.InitContainers = []corev1.Container{
		mount(shell("first", "echo one >> /work/log"), "work", "/work"),
		mount(shell("second", "echo two >> /work/log"), "work", "/work"),
	}
	p.Spec.Volumes = []corev1.Volume{emptyDir("work")}
	p.Spec.RestartPolicy = corev1.RestartPolicyNever
	e.runPod(podJSON(p))
	got := e.waitPod("init", waitTimeout, phaseIs(corev1.PodSucceeded))
	if logs := e.mustRun("logs", "init", "-c", "app"); logs != "one\ntwo\n" {
		t.Errorf("app container read %q from the emptyDir, want the init containers' lines in order", logs)
	}
	var prevFinish time.Time
	for _, name := range []string{"first", "second", "app"} {
		s := containerStatus(t, got, name)
		term := s.State.Terminated
		if term == nil || term.ExitCode != 0 || term.Reason != "Completed" {
			t.Errorf("container %s: state %+v, want terminated Completed", name, s.State)
			continue
		}
		if term.StartedAt.Time.Before(prevFinish) {
			t.Errorf("container %s started at %v, before the previous one finished at %v", name, term.StartedAt, prevFinish)
		}
		prevFinish = term.FinishedAt.Time
	}
	if len(got.Status.InitContainerStatuses) != 2 {
		t.Errorf("initContainerStatuses has %d entries, want 2", len(got.Status.InitContainerStatuses))
	}
	if c := condition(got, corev1.PodInitialized); c != corev1.ConditionTrue {
		t.Errorf("condition Initialized = %q, want True", c)
	}
}

// condition returns the status of a pod condition ("" when absent).
func condition(p *corev1.Pod, typ corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == typ {
			return c.Status
		}
	}
	return ""
}

// escapeeScript starts a TERM-ignoring process in a new session that
// double-forks away from the container's main process, then loops,
// ignoring TERM itself.
const escapeeScript = `setsid sh -c 'trap "" TERM; exec sleep 1000' & trap "" TERM; while :; do sleep 0.1; done`

// podProcesses lists the live host processes whose cgroup path names the
// pod's uid, with their command lines.
func podProcesses(t *testing.T, uid string) map[int]string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("failed to list /proc: %v", err)
	}
	out := make(map[int]string)
	for _, ent := range entries {
		var pid int
		if _, err := fmt.Sscanf(ent.Name(), "%d", &pid); err != nil {
			continue
		}
		cg, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cgroup"))
		if err != nil || !strings.Contains(string(cg), uid) || isZombie(ent.Name()) {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		out[pid] = strings.ReplaceAll(string(cmd), "\x00", " ")
	}
	return out
}

// isZombie tells whether /proc/<pid> is a zombie: dead, holding nothing
// but its PID until its parent reaps it (an orphan's parent is PID 1, which
// on some machines reaps only every second or so).
func isZombie(pid string) bool {
	n, err := strconv.Atoi(pid)
	if err != nil {
		return false
	}
	st, err := procfs.ReadStat(n)
	return err == nil && st.State == 'Z'
}

// hasCommand tells whether one of procs runs a command line starting with cmd.
func hasCommand(procs map[int]string, cmd string) bool {
	for _, c := range procs {
		if strings.HasPrefix(c, cmd) {
			return true
		}
	}
	return false
}

// TestStop_7: stop sends TERM, waits the grace period, then KILLs every
// process of the pod, also one that left its container's process tree; the
// exit codes show in the status; restarts cease.
func TestStop_7(t *testing.T) {
	for _, driver := range cgroupDrivers {
		t.Run("cgroup-"+driver, func(t *testing.T) {
			e := newEnv(t, withDriver(driver))
			before := e.snapshot()
			polite := shell("polite", `trap "echo got-term; exit 3" TERM; echo ready; while :; do sleep 0.1; done`)
			p := newPod("stopper", polite, shell("stubborn", escapeeScript))
			p.Spec.TerminationGracePeriodSeconds = ptr(int64(30))
			e.runPod(podJSON(p))
			v := e.inspect("stopper")
			e.checkCgroupPrefix(v)
			// The escapee is started by the main process after exec; await it.
			deadline := time.Now().Add(waitTimeout)
			for !hasCommand(podProcesses(t, v.UID), "sleep 1000") {
				if time.Now().After(deadline) {
					t.Fatalf("the escapee never showed in the pod's cgroups: %v", podProcesses(t, v.UID))
				}
				time.Sleep(pollInterval)
			}
			const grace = 1 * time.Second
			start := time.Now()
			e.mustRun("stop", "stopper", "--grace-period", "1")
			took := time.Since(start)
			if took < grace || took > grace+3*time.Second {
				t.Errorf("stop took %v with a TERM-ignoring container and a %v grace period", took, grace)
			}
			if left := podProcesses(t, v.UID); len(left) > 0 {
				t.Errorf("processes of the pod left after stop: %v", left)
			}
			got := e.get("stopper")
			for _, c := range []struct {
				name string
				code int32
			}{{"polite", 3}, {"stubborn", 137}} {
				s := containerStatus(t, got, c.name)
				if term := s.State.Terminated; term == nil || term.ExitCode != c.code {
					t.Errorf("container %s after stop: state %+v, want terminated with exit code %d", c.name, s.State, c.code)
				}
				if s.RestartCount != 0 {
					t.Errorf("container %s restarted %d times during stop", c.name, s.RestartCount)
				}
			}
			if logs := e.mustRun("logs", "stopper", "-c", "polite"); !strings.Contains(logs, "got-term") {
				t.Errorf("container polite never saw SIGTERM; logs: %q", logs)
			}
			e.mustRun("rm", "stopper")
			e.assertNoLeak(before)
		})
	}
}

// TestRemove_8: rm after stop, and rm -f after the supervisor was killed
// with SIGKILL, leave nothing behind.
func TestRemove_8(t *testing.T) {
	for _, driver := range cgroupDrivers {
		t.Run("cgroup-"+driver, func(t *testing.T) {
			t.Run("stop-rm", func(t *testing.T) {
				e := newEnv(t, withDriver(driver))
				before := e.snapshot()
				e.runPod(podJSON(newPod("gone", shell("a", escapeeScript), ctr("b", "sleep", "1000"))))
				_, stderr, code := e.run("", "rm", "gone")
				if code == 0 || !strings.Contains(stderr, "running") {
					t.Errorf("rm of a running pod: exit %d, stderr %q; want a refusal saying it runs", code, stderr)
				}
				e.waitPod("gone", waitTimeout, phaseIs(corev1.PodRunning))
				e.mustRun("stop", "gone", "--grace-period", "0")
				e.mustRun("rm", "gone")
				checkGone(t, e, "gone")
				e.assertNoLeak(before)
			})
			t.Run("kill-supervisor-rm-f", func(t *testing.T) {
				e := newEnv(t, withDriver(driver))
				before := e.snapshot()
				e.runPod(podJSON(newPod("lost", shell("a", escapeeScript), ctr("b", "sleep", "1000"))))
				v := e.inspect("lost")
				if v.SupervisorPID <= 0 {
					t.Fatalf("inspect: supervisorPid %d", v.SupervisorPID)
				}
				// No command looks at the pod in between: that would
				// replace its supervisor (TestSupervisorLoss).
				killSupervisor(t, v.SupervisorPID)
				if len(podProcesses(t, v.UID)) == 0 {
					t.Fatalf("the containers died with their supervisor; the test needs them alive")
				}
				e.mustRun("rm", "-f", "lost")
				if left := podProcesses(t, v.UID); len(left) > 0 {
					t.Errorf("processes of the pod left after rm -f: %v", left)
				}
				checkGone(t, e, "lost")
				e.assertNoLeak(before)
			})
			t.Run("rm-f-exec-in-flight", func(t *testing.T) {
				// An exec probe holds a process in the pod's PID namespace
				// while rm -f runs. Killed from outside with its parent, it
				// would be left to the host's PID 1 to reap, and the
				// container's init would wait for that in
				// zap_pid_ns_processes (out of its cgroups already, so only
				// its PID shows it); the supervisor must reap it.
				e := newEnv(t, withDriver(driver))
				before := e.snapshot()
				c := ctr("main", "sleep", "1000")
				c.LivenessProbe = &corev1.Probe{
					ProbeHandler:   corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "touch /tmp/inflight; exec sleep 30"}}},
					PeriodSeconds:  1,
					TimeoutSeconds: 60,
				}
				e.runPod(podJSON(newPod("busy", c)))
				v := e.inspect("busy")
				main := v.container(t, "main").PID
				// The probe's first run starts with the container; nothing
				// announces that it got as far as its sleep.
				deadline := time.Now().Add(waitTimeout)
				for {
					if _, _, code := e.exec("busy", "main", "test", "-e", "/tmp/inflight"); code == 0 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatal("the exec probe never started")
					}
					time.Sleep(pollInterval)
				}
				e.mustRun("rm", "-f", "busy")
				if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", main)); err == nil && !isZombie(strconv.Itoa(main)) {
					t.Errorf("the container's init %d outlived rm -f: %s", main, st)
				}
				if left := podProcesses(t, v.UID); len(left) > 0 {
					t.Errorf("processes of the pod left after rm -f: %v", left)
				}
				checkGone(t, e, "busy")
				e.assertNoLeak(before)
			})
		})
	}
}

// checkGone asserts that naming a removed pod is a clear not-found error.
func checkGone(t *testing.T, e *env, name string) {
	t.Helper()
	_, stderr, code := e.run("", "get", name)
	if code == 0 || !strings.Contains(stderr, "not found") || !strings.Contains(stderr, name) {
		t.Errorf("get of removed pod %s: exit %d, stderr %q; want a not-found error naming it", name, code, stderr)
	}
}

// TestStopKeepsGraceAfterFirstExit: a container that exits at once on
// SIGTERM does not end the stop of the others. Before, the first exit made
// the stopping pod's phase terminal: the supervisor finished, killing the
// reaper of the shared PID namespace and with it the slow container, long
// before its grace period was over.
func TestStopKeepsGraceAfterFirstExit(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	quick := shell("quick", `trap "exit 0" TERM; echo ready; while :; do sleep 0.1; done`)
	slow := shell("slow", `trap "echo term; sleep 2; echo done; exit 7" TERM; echo ready; while :; do sleep 0.1; done`)
	p := newPod("graceful", quick, slow)
	p.Spec.ShareProcessNamespace = ptr(true)
	p.Spec.TerminationGracePeriodSeconds = ptr(int64(30))
	e.runPod(podJSON(p))
	for _, c := range []string{"quick", "slow"} {
		e.waitLog("graceful", c, "ready")
	}
	e.mustRun("stop", "graceful")
	got := e.get("graceful")
	for _, c := range []struct {
		name string
		code int32
	}{{"quick", 0}, {"slow", 7}} {
		s := containerStatus(t, got, c.name)
		if term := s.State.Terminated; term == nil || term.ExitCode != c.code {
			t.Errorf("container %s after stop: state %+v, want terminated with exit code %d", c.name, s.State, c.code)
		}
	}
	if logs := e.mustRun("logs", "graceful", "-c", "slow"); !strings.Contains(logs, "done") {
		t.Errorf("the slow container was cut short in its grace period; logs: %q", logs)
	}
	e.mustRun("rm", "graceful")
	e.assertNoLeak(before)
}
