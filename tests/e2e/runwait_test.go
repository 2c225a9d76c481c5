package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// slowInit is a pod whose init container waits until the test lets it go
// (it never does here): run -d would wait for it without end.
func slowInit(name string) *corev1.Pod {
	p := newPod(name, ctr("app", "sleep", "1000"))
	p.Spec.InitContainers = []corev1.Container{ctr("setup", "sleep", "1000")}
	return p
}

// checkStillStarting: the pod is fully created (Created, its supervisor
// alive, its init container running) and gc does not take it for an
// abandoned creation.
func (e *env) checkStillStarting(name string) {
	e.t.Helper()
	p := e.get(name)
	if len(p.Status.InitContainerStatuses) != 1 || p.Status.InitContainerStatuses[0].State.Running == nil {
		e.t.Errorf("pod %s: init container status %+v, want running", name, p.Status.InitContainerStatuses)
	}
	if out := e.mustRun("gc", "--dry-run"); strings.Contains(out, name) {
		e.t.Errorf("gc would collect the starting pod %s:\n%s", name, out)
	}
	if out := e.mustRun("ps"); !strings.Contains(out, "Init:0/1") {
		e.t.Errorf("ps does not show the pod waiting for its init container:\n%s", out)
	}
}

// TestRunDetachTimeout: run -d --timeout bounds the wait for a slow init
// container, names it, exits non-zero and leaves the pod starting.
func TestRunDetachTimeout(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	start := time.Now()
	out, stderr, code := e.run(podJSON(slowInit("slow")), "run", "-d", "--timeout", "1s", "-f", "-")
	if code == 0 || !strings.Contains(stderr, "timed out after 1s: pod default/slow is still waiting for init container setup") {
		t.Fatalf("run -d --timeout 1s: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if !strings.Contains(out, "pod/slow created") {
		t.Errorf("run did not say the pod was created: %q", out)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("run -d --timeout 1s returned after %v", d)
	}
	e.checkStillStarting("slow")
	for _, bad := range [][]string{{"run", "--timeout", "1s", "-f", "-"}, {"run", "-d", "--timeout", "-1s", "-f", "-"}} {
		if _, stderr, code := e.run(podJSON(slowInit("other")), bad...); code == 0 || !strings.Contains(stderr, "--timeout") {
			t.Errorf("%v: exit %d, stderr %q; want a refusal naming --timeout", bad, code, stderr)
		}
	}
	e.mustRun("rm", "-f", "slow")
	e.assertNoLeak(before)
}

// TestRunDetachInterrupted: Ctrl-C while run -d waits for an init
// container leaves a fully created pod, never CreatorLost debris that gc
// removes (the kubectl user's expectation: the pod was created).
func TestRunDetachInterrupted(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	cmd := exec.Command(e.bin, e.args("run", "-d", "-f", "-")...)
	cmd.Stdin = strings.NewReader(podJSON(slowInit("waiting")))
	if len(e.extraEnv) > 0 {
		cmd.Env = append(os.Environ(), e.extraEnv...)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-done
		}
	}()
	// The init container running is the state to reach; the status is
	// only readable by asking.
	deadline := time.Now().Add(waitTimeout)
	for {
		if out, _, code := e.run("", "get", "waiting", "-o", "json"); code == 0 && strings.Contains(out, `"running"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the init container never ran; run's stderr: %s", stderr.String())
		}
		time.Sleep(pollInterval)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(waitTimeout):
		t.Fatalf("run -d did not end on SIGINT; stderr: %s", stderr.String())
	}
	if err == nil || !strings.Contains(stderr.String(), "interrupted: pod default/waiting is created and still waiting for init container setup") {
		t.Errorf("run -d after SIGINT: %v, stderr %q", err, stderr.String())
	}
	e.checkStillStarting("waiting")
	e.mustRun("gc")
	if _, _, code := e.run("", "get", "waiting"); code != 0 {
		t.Error("gc removed the pod run -d left starting after Ctrl-C")
	}
	e.mustRun("rm", "-f", "waiting")
	e.assertNoLeak(before)
}
