package probes_e2e

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func newPod(name string, ctrs ...corev1.Container) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.PodSpec{Containers: ctrs, TerminationGracePeriodSeconds: ptr[int64](2)},
	}
}

func shell(name, script string) corev1.Container {
	return corev1.Container{Name: name, Image: "busybox:latest", Command: []string{"sh", "-c", script}}
}

func execProbe(period, failures int32, cmd ...string) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: cmd}},
		PeriodSeconds: period, FailureThreshold: failures}
}

func ptr[T any](v T) *T { return &v }

// (1) The Kubernetes documentation's liveness example, shortened: the
// probe fails once /tmp/healthy is gone, the container is killed with the
// kubelet's events and restarted at once, restartCount 1.
func TestLivenessExecRestarts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := shell("liveness", "touch /tmp/healthy; sleep 2; rm -f /tmp/healthy; sleep 600")
	c.LivenessProbe = execProbe(1, 2, "cat", "/tmp/healthy")
	e.runPod(newPod("live", c))
	e.waitEvent("live", 10*time.Second, "Warning", "Unhealthy", "Liveness probe failed: cat: can't open '/tmp/healthy': No such file or directory")
	e.waitEvent("live", 10*time.Second, "Normal", "Killing", "Container liveness failed liveness probe, will be restarted")
	p := e.waitPod("live", 15*time.Second, restartsAtLeast("liveness", 1))
	s := ctrStatus(p, "liveness")
	if last := s.LastTerminationState.Terminated; last == nil || last.ExitCode != 137 {
		// sh as PID 1 ignores SIGTERM: the grace period ends with SIGKILL.
		t.Errorf("lastState.terminated = %+v, want exit code 137", last)
	}
	st := e.status("live")
	last := st.Containers[0].Last
	if kill := last.FinishedAt.Sub(last.StartedAt); kill < 4*time.Second {
		t.Errorf("instance lived %v, want >= 2 s healthy + 1 s of failures + 2 s grace", kill)
	}
	// The first backoff would be 10 s; 3 s tells "at once" from it also on
	// a slow machine (an emulated VM took 0.7 s with parallel tests).
	if gap := st.Containers[0].StartedAt.Sub(last.FinishedAt); gap > 3*time.Second {
		t.Errorf("restart came %v after the kill, want at once (no backoff on the first kill)", gap)
	}
}

// (2) An HTTP readiness probe against busybox httpd flips Ready off and on
// with the served file, without a restart; ps and wait follow.
func TestReadinessHTTPFlips(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := shell("web", "mkdir -p /tmp/www && echo ok > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www")
	c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/index.html", Port: intstr.FromInt32(8080)}},
		PeriodSeconds: 1, FailureThreshold: 1}
	e.runPod(newPod("web", c))
	e.mustRun("wait", "web", "--for=condition=Ready", "--timeout=10s")
	if out := e.mustRun("ps"); !strings.Contains(out, "1/1") {
		t.Errorf("ps while ready:\n%s\nwant READY 1/1", out)
	}
	// Plain HTTP is probed by the supervisor itself.
	if pid := proberOf(t, e, "web"); pid != 0 {
		t.Errorf("peapod-prober %d runs for a pod whose only probe is plain HTTP", pid)
	}
	e.mustExec("web", "web", "rm", "/tmp/www/index.html")
	p := e.waitPod("web", 10*time.Second, readyIs(corev1.ConditionFalse))
	cr := condition(p, corev1.ContainersReady)
	if cr.Reason != "ContainersNotReady" || cr.Message != "containers with unready status: [web]" {
		t.Errorf("ContainersReady = %+v, want ContainersNotReady / containers with unready status: [web]", cr)
	}
	if out := e.mustRun("ps"); !strings.Contains(out, "0/1") {
		t.Errorf("ps while not ready:\n%s\nwant READY 0/1", out)
	}
	e.waitEvent("web", 5*time.Second, "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 404")
	e.mustExec("web", "web", "sh", "-c", "echo ok > /tmp/www/index.html")
	p = e.waitPod("web", 10*time.Second, readyIs(corev1.ConditionTrue))
	if n := ctrStatus(p, "web").RestartCount; n != 0 {
		t.Errorf("restartCount = %d, want 0: readiness never kills", n)
	}
	metrics := e.mustRun("metrics", "web")
	labels := fmt.Sprintf(`container="web",namespace="default",pod="web",pod_uid="%s",probe_type="Readiness"`, p.UID)
	for _, result := range []string{"failed", "successful"} {
		if v := metricValue(metrics, "prober_probe_total{"+labels+`,result="`+result+`"}`); v < 1 {
			t.Errorf("prober_probe_total result=%s = %v, want >= 1\n%s", result, v, metrics)
		}
	}
	if v := metricValue(metrics, `prober_probe_duration_seconds_count{container="web",namespace="default",pod="web",probe_type="Readiness"}`); v < 1 {
		t.Errorf("prober_probe_duration_seconds_count = %v, want >= 1\n%s", v, metrics)
	}
}

// metricValue returns the value of a series in the text format (-1 if absent).
func metricValue(text, series string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// (3a) A startup probe holds off liveness (no liveness request while it
// fails) and, once it passes, started=true and liveness runs.
func TestStartupGatesLiveness(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := shell("app", "sleep 600")
	c.StartupProbe = execProbe(1, 30, "cat", "/tmp/started")
	c.LivenessProbe = execProbe(1, 3, "touch", "/tmp/liveness-ran")
	e.runPod(newPod("gate", c))
	// Two failed startup probes (one aggregated event, x2): a liveness
	// probe due every second has had its chances.
	e.waitEvent("gate", 10*time.Second, "Unhealthy", "(x2 over", "Startup probe failed")
	p := e.get("gate")
	if s := ctrStatus(p, "app"); s.Started == nil || *s.Started || s.Ready {
		t.Errorf("before startup passed: started=%v ready=%v, want false/false", s.Started, s.Ready)
	}
	if _, _, code := e.run("exec", "gate", "-c", "app", "--", "test", "-e", "/tmp/liveness-ran"); code == 0 {
		t.Fatalf("liveness probe ran before the startup probe passed")
	}
	e.mustExec("gate", "app", "touch", "/tmp/started")
	e.waitPod("gate", 10*time.Second, func(p *corev1.Pod) (bool, string) {
		s := ctrStatus(p, "app")
		return s.Started != nil && *s.Started && s.Ready, fmt.Sprintf("started=%v ready=%v", s.Started, s.Ready)
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, _, code := e.run("exec", "gate", "-c", "app", "--", "test", "-e", "/tmp/liveness-ran"); code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("liveness probe did not run within 5 s of startup passing")
		}
		time.Sleep(pollInterval)
	}
}

// (3b) A startup probe that never passes kills at its threshold.
func TestStartupNeverPassesKills(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := shell("app", "sleep 600")
	c.StartupProbe = execProbe(1, 2, "false")
	e.runPod(newPod("never", c))
	e.waitEvent("never", 10*time.Second, "Killing", "Container app failed startup probe, will be restarted")
	e.waitPod("never", 15*time.Second, restartsAtLeast("app", 1))
}

// (4) A TCP readiness probe follows a listener that appears and goes away.
func TestReadinessTCPFollowsListener(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := shell("tcp", "until [ -e /tmp/listen ]; do sleep 0.1; done; httpd -p 9000 -h /tmp; "+
		"while [ -e /tmp/listen ]; do sleep 0.1; done; killall httpd; sleep 600")
	c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(9000)}},
		PeriodSeconds: 1, FailureThreshold: 1}
	e.runPod(newPod("tcp", c))
	e.waitEvent("tcp", 10*time.Second, "Unhealthy", "Readiness probe failed: dial tcp", ":9000: connect: connection refused")
	if p := e.get("tcp"); ctrStatus(p, "tcp").Ready {
		t.Fatalf("ready before anything listens")
	}
	e.mustExec("tcp", "tcp", "touch", "/tmp/listen")
	e.waitPod("tcp", 10*time.Second, readyIs(corev1.ConditionTrue))
	e.mustExec("tcp", "tcp", "rm", "/tmp/listen")
	e.waitPod("tcp", 10*time.Second, readyIs(corev1.ConditionFalse))
}

// (5) An exec probe that times out fails with the kubelet's message and
// leaves neither its process nor a child nor a zombie behind, with a
// private and with a shared PID namespace.
func TestExecTimeoutNoZombie(t *testing.T) {
	t.Parallel()
	for _, shared := range []bool{false, true} {
		t.Run("shared="+strconv.FormatBool(shared), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			c := shell("app", "exec sleep 600")
			// A shell with a child in the background and one in the
			// foreground; "wait" keeps the shell (busybox would exec the
			// last command in its place, and a sleep never reaps the
			// background child: a zombie nobody but PID 1 could reap).
			c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{
				Command: []string{"sh", "-c", "sleep 30 & sleep 31; wait"}}}, TimeoutSeconds: 1, PeriodSeconds: 5}
			p := newPod("slow", c)
			p.Spec.ShareProcessNamespace = ptr(shared)
			e.runPod(p)
			e.waitEvent("slow", 10*time.Second, "Unhealthy", `Readiness probe failed: command "sh -c sleep 30 & sleep 31; wait" timed out`)
			pid := mainPID(t, e, "slow")
			deadline := time.Now().Add(3 * time.Second)
			for {
				left := nsProcs(t, pid)
				if len(left) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("left in the container's PID namespace after the timed-out probe: %v", left)
				}
				time.Sleep(pollInterval)
			}
		})
	}
}

// mainPID is the host pid of the pod's first container.
func mainPID(t *testing.T, e *env, pod string) int {
	st := e.status(pod)
	if st.Containers[0].Proc.PID == 0 {
		t.Fatalf("pod %s: no running container", pod)
	}
	return st.Containers[0].Proc.PID
}

// nsProcs lists the processes sharing pid's PID namespace, other than pid
// itself and the pod's reaper ("peapod-supervisor reaper"), as "pid state
// cmdline"; a zombie shows state Z.
func nsProcs(t *testing.T, pid int) []string {
	want, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		t.Fatalf("failed to read pid namespace of %d: %v", pid, err)
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("failed to read /proc: %v", err)
	}
	var out []string
	for _, ent := range ents {
		n, err := strconv.Atoi(ent.Name())
		if err != nil || n == pid {
			continue
		}
		ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", n))
		if err != nil || ns != want {
			continue
		}
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", n))
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n))
		s := string(stat)
		state := "?"
		if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
			state = s[i+2 : i+3]
		}
		argv := strings.ReplaceAll(strings.TrimRight(string(cmd), "\x00"), "\x00", " ")
		if state != "Z" && strings.HasSuffix(argv, " reaper") {
			continue
		}
		out = append(out, fmt.Sprintf("%d %s %q", n, state, argv))
	}
	return out
}

// (6) gRPC readiness against a health server the tests built, bound into
// the pod by hostPath: SERVING is ready; NOT_SERVING and a server without
// the health service fail with the kubelet's messages.
func TestReadinessGRPC(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	server := func(name, mode string, port int32) corev1.Container {
		c := corev1.Container{Name: name, Image: "busybox:latest",
			Command:      []string{"/hs/healthserver", "-mode", mode, "-port", strconv.Itoa(int(port))},
			VolumeMounts: []corev1.VolumeMount{{Name: "hs", MountPath: "/hs", ReadOnly: true}}}
		c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: port}},
			PeriodSeconds: 1, FailureThreshold: 1}
		return c
	}
	p := newPod("grpc", server("serving", "serving", 9090), server("notserving", "notserving", 9091), server("none", "none", 9092))
	p.Spec.Volumes = []corev1.Volume{{Name: "hs", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir}}}}
	e.runPod(p)
	e.waitPod("grpc", 10*time.Second, func(p *corev1.Pod) (bool, string) {
		s := ctrStatus(p, "serving")
		return s.Ready, "serving not ready"
	})
	e.waitEvent("grpc", 10*time.Second, "Unhealthy", "spec.containers{notserving}", `Readiness probe failed: service unhealthy (responded with "NOT_SERVING")`)
	e.waitEvent("grpc", 10*time.Second, "Unhealthy", "spec.containers{none}",
		"Readiness probe failed: error: this server does not implement the grpc health protocol (grpc.health.v1.Health)")
	got := e.get("grpc")
	if ctrStatus(got, "notserving").Ready || ctrStatus(got, "none").Ready {
		t.Errorf("notserving ready=%v, none ready=%v: want both false", ctrStatus(got, "notserving").Ready, ctrStatus(got, "none").Ready)
	}
	cr := condition(got, corev1.ContainersReady)
	if cr.Status != corev1.ConditionFalse || cr.Message != "containers with unready status: [notserving none]" {
		t.Errorf("ContainersReady = %+v, want False with containers with unready status: [notserving none]", cr)
	}
}

// (7) A crash-looping container restarts at FinishedAt + 0, 1, 2, 4, 8 s
// with a 1 s initial backoff, showing CrashLoopBackOff in between. Times
// come from status.json: get -o json rounds them to the second.
func TestCrashLoopBackoffTiming(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "--backoff-initial", "1", "--backoff-max", "60")
	// Each instance lives 0.3 s, so polling sees it run and end.
	e.runPod(newPod("crash", shell("c", "sleep 0.3; exit 3")))
	want := []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	inst := e.recordInstances("crash", len(want)+1, 40*time.Second)
	// The delay the supervisor chose is checked exactly by the back-off
	// messages below; the times only show it was kept: never early, and
	// late by no more than a start on a loaded machine takes.
	for i, w := range want {
		gap := inst.starts[i+1].Sub(inst.finishes[i])
		if gap < w-restartEarly || gap > w+restartLate {
			t.Errorf("restart %d came %v after the exit, want %v (at most %v late)", i+1, gap, w, restartLate)
		}
	}
	uid := e.get("crash").UID
	for _, d := range []string{"1s", "2s", "4s", "8s"} {
		msg := fmt.Sprintf("back-off %s restarting failed container=c pod=crash_default(%s)", d, uid)
		if !inst.backoffs[msg] {
			t.Errorf("never saw waiting CrashLoopBackOff %q; saw %v", msg, inst.backoffs)
		}
	}
	e.waitEvent("crash", time.Second, "Warning", "BackOff", fmt.Sprintf("Back-off restarting failed container c in pod crash_default(%s)", uid))
}

// (7) With the kubelet's defaults: the first restart at once, the second
// not before 10 s after the exit.
func TestCrashLoopBackoffDefaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.runPod(newPod("crash", shell("c", "sleep 0.3; exit 3")))
	inst := e.recordInstances("crash", 3, 30*time.Second)
	if gap := inst.starts[1].Sub(inst.finishes[0]); gap > restartLate {
		t.Errorf("first restart came %v after the exit, want at once (at most %v late)", gap, restartLate)
	}
	if gap := inst.starts[2].Sub(inst.finishes[1]); gap < 10*time.Second-restartEarly || gap > 10*time.Second+restartLate {
		t.Errorf("second restart came %v after the exit, want 10 s (at most %v late)", gap, restartLate)
	}
}

// Bounds on a restart's observed time around FinishedAt + back-off. The
// supervisor arms its timer from FinishedAt, so a restart is never early
// (restartEarly only absorbs the two timestamps' rounding); StartedAt is
// taken once the new instance's entrypoint was exec'd, which on a loaded
// 2-core machine running the whole suite took up to a second. The next
// back-off step is at least 1 s further (10 s with the defaults), and the
// back-off messages pin the chosen delay exactly.
const (
	restartEarly = 50 * time.Millisecond
	restartLate  = 3 * time.Second
)

// instances are a container's instances as polled from status.json.
type instances struct {
	// starts and finishes are the instances' times, in order.
	starts, finishes []time.Time
	// backoffs are the CrashLoopBackOff messages seen.
	backoffs map[string]bool
}

// recordInstances polls the first container's status until n instances
// have finished, recording each instance's start and finish.
func (e *env) recordInstances(pod string, n int, timeout time.Duration) instances {
	e.t.Helper()
	finished := map[time.Time]time.Time{}
	inst := instances{backoffs: map[string]bool{}}
	deadline := time.Now().Add(timeout)
	for len(finished) < n {
		if time.Now().After(deadline) {
			e.t.Fatalf("pod %s: %d instances finished after %v, want %d", pod, len(finished), timeout, n)
		}
		c := e.status(pod).Containers[0]
		if c.State == "terminated" {
			finished[c.StartedAt] = c.FinishedAt
		}
		if c.Last != nil {
			finished[c.Last.StartedAt] = c.Last.FinishedAt
		}
		if c.Reason == "CrashLoopBackOff" {
			inst.backoffs[c.Message] = true
		}
		time.Sleep(20 * time.Millisecond)
	}
	for start := range finished {
		inst.starts = append(inst.starts, start)
	}
	sort.Slice(inst.starts, func(i, j int) bool { return inst.starts[i].Before(inst.starts[j]) })
	for _, s := range inst.starts {
		inst.finishes = append(inst.finishes, finished[s])
	}
	return inst
}

// A liveness kill under OnFailure restarts the container even though it
// exits 0 on SIGTERM; under Never it is killed without a restart and the
// Killing message has no ", will be restarted".
func TestLivenessKillRestartPolicy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// sh as PID 1 gets SIGTERM only through a trap; it then exits 0.
	app := shell("app", `trap "exit 0" TERM; while true; do sleep 0.1; done`)
	app.LivenessProbe = execProbe(1, 1, "false")
	onFailure := newPod("onfailure", app)
	onFailure.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	never := newPod("never", app)
	never.Spec.RestartPolicy = corev1.RestartPolicyNever
	e.runPod(onFailure)
	e.runPod(never)

	e.waitEvent("onfailure", 10*time.Second, "Killing", "Container app failed liveness probe, will be restarted")
	// Restarted, not necessarily running: the probe fails the new instance
	// within a second too, and it then waits out the 10 s backoff; a
	// slow machine (an emulated VM) sees only that wait.
	p := e.waitPod("onfailure", 10*time.Second, func(p *corev1.Pod) (bool, string) {
		s := ctrStatus(p, "app")
		return s.RestartCount >= 1 && s.LastTerminationState.Terminated != nil,
			fmt.Sprintf("restartCount %d, lastState.terminated %v, want a restart and its exit", s.RestartCount, s.LastTerminationState.Terminated != nil)
	})
	if last := ctrStatus(p, "app").LastTerminationState.Terminated; last == nil || last.ExitCode != 0 {
		t.Errorf("onfailure: lastState.terminated = %+v, want exit code 0", last)
	}

	e.waitEvent("never", 10*time.Second, "Killing", "Container app failed liveness probe")
	p = e.waitPod("never", 10*time.Second, func(p *corev1.Pod) (bool, string) {
		return p.Status.Phase == corev1.PodSucceeded, fmt.Sprintf("phase %s, want Succeeded", p.Status.Phase)
	})
	if n := ctrStatus(p, "app").RestartCount; n != 0 {
		t.Errorf("never: restartCount %d, want 0", n)
	}
	if strings.Contains(e.mustRun("events", "never"), "will be restarted") {
		t.Errorf("never: a Killing event says the container will be restarted")
	}
}
