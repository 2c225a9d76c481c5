package e2e

import (
	"bufio"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestForegroundRun: `run` without -d stays in the foreground, prints the
// pod's events and its containers' output, and on Ctrl-C (SIGINT) stops and
// removes the pod, leaving nothing behind.
func TestForegroundRun(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	p := newPod("fg", shell("talker", `i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 0.2; done`))
	// The shell is its PID namespace's init and ignores SIGTERM, so the
	// graceful stop waits out the whole grace period: keep it short.
	p.Spec.TerminationGracePeriodSeconds = ptr(int64(1))
	manifest := podJSON(p)
	cmd := exec.Command(e.bin, e.args("run", "-f", "-")...)
	cmd.Stdin = strings.NewReader(manifest)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// Read until both an event and a line of container output arrived: the
	// output itself is the event we wait for.
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var sawStarted, sawOutput bool
	deadline := time.After(waitTimeout)
	for !sawStarted || !sawOutput {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("peapod run exited early (started %v, output %v)", sawStarted, sawOutput)
			}
			sawStarted = sawStarted || strings.Contains(l, "Started") && strings.Contains(l, "talker")
			sawOutput = sawOutput || strings.Contains(l, "[fg/talker] tick")
		case <-deadline:
			t.Fatalf("no event and container output from foreground run within %v (started %v, output %v)", waitTimeout, sawStarted, sawOutput)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, out)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("peapod run after Ctrl-C: %v", err)
		}
	case <-time.After(cliTimeout):
		t.Fatalf("peapod run did not finish within %v of Ctrl-C", cliTimeout)
	}
	if ps := e.mustRun("ps"); strings.Contains(ps, "fg") {
		t.Errorf("pod still listed after Ctrl-C:\n%s", ps)
	}
	e.assertNoLeak(before)
}
