package e2e

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// waitLog waits until a container's log holds want.
func (e *env) waitLog(pod, ctr, want string) {
	e.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		logs := e.mustRun("logs", pod, "-c", ctr)
		if strings.Contains(logs, want) {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("container %s/%s never logged %q; logs: %q", pod, ctr, want, logs)
		}
		time.Sleep(pollInterval)
	}
}

// TestHugeGracePeriod_6: a grace period the API server accepts but a
// time.Duration cannot hold (9223372037 s wrapped to a negative Duration)
// still means "wait": stop runs the preStop hook, then the stop signal, and
// the container exits by itself on it instead of being killed at once.
func TestHugeGracePeriod_6(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	app := shell("app", `trap 'cat /data/prestop; exit 3' TERM; echo ready; while :; do sleep 0.1; done`)
	app = mount(app, "data", "/data")
	app.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{
		Command: []string{"sh", "-c", "echo prestop-ran > /data/prestop"}}}}
	p := newPod("patient", app)
	p.Spec.Volumes = []corev1.Volume{emptyDir("data")}
	p.Spec.TerminationGracePeriodSeconds = ptr(int64(9223372037))
	e.runPod(podJSON(p))
	e.waitLog("patient", "app", "ready") // the TERM trap is set
	e.mustRun("stop", "patient")
	s := containerStatus(t, e.get("patient"), "app")
	if term := s.State.Terminated; term == nil || term.ExitCode != 3 {
		t.Errorf("container after stop: state %+v, want terminated by its TERM trap with exit code 3 (137: killed at once)", s.State)
	}
	if logs := e.mustRun("logs", "patient", "-c", "app"); !strings.Contains(logs, "prestop-ran") {
		t.Errorf("the preStop hook did not run before the stop signal; logs: %q", logs)
	}
	e.mustRun("rm", "patient")
	e.assertNoLeak(before)
}

// TestLongDottedName_9: a pod name the API server accepts — a DNS
// subdomain of 253 characters with dots — runs and is listed, reached and
// removed by that name; its hostname is the kubelet's: cut to 63
// characters, the trailing '.' trimmed.
func TestLongDottedName_9(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	label := func(c string) string { return strings.Repeat(c, 62) }
	name := label("a") + "." + label("b") + "." + label("c") + "." + label("d") + ".e"
	e.runPod(podJSON(newPod(name, ctr("app", "sleep", "1000"))))
	if ps := e.mustRun("ps"); !strings.Contains(ps, name+" ") {
		t.Errorf("ps does not list the pod by its whole name:\n%s", ps)
	}
	if got := e.get(name).Name; got != name {
		t.Errorf("get: name %q, want %q", got, name)
	}
	want := label("a")
	if got := strings.TrimSpace(e.mustExec(name, "app", "hostname")); got != want {
		t.Errorf("hostname in the pod %q, want %q", got, want)
	}
	if hosts := e.mustExec(name, "app", "cat", "/etc/hosts"); !strings.Contains(hosts, "\t"+want+"\n") {
		t.Errorf("/etc/hosts does not name the pod's hostname %q:\n%s", want, hosts)
	}
	e.mustRun("stop", name, "--grace-period", "0")
	e.mustRun("rm", name)
	if _, stderr, code := e.run("", "get", name); code == 0 || !strings.Contains(stderr, "not found") {
		t.Errorf("get after rm: exit code %d, stderr %q; want not found", code, stderr)
	}
	e.assertNoLeak(before)
}
