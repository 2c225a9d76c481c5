package supervisor

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// maxExecOutput caps what a hook or exec probe may return, as the kubelet.
const maxExecOutput = 10 << 10

// execIn runs argv inside c's namespaces and cgroup and returns its
// combined output (capped), exit code, and an error if it could not run or
// timed out (timeout 0 = none).
func (s *Supervisor) execIn(c *container, argv []string, timeout time.Duration) (string, int, error) {
	s.mu.Lock()
	target := c.proc.PID
	s.mu.Unlock()
	if target == 0 {
		return "", -1, fmt.Errorf("container %q is not running", c.spec.Name)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return "", -1, fmt.Errorf("failed to create output pipe: %w", err)
	}
	defer r.Close()
	cmd := s.rt.ExecCommand(target, c.spec, argv, w, w)
	pid, wait, err := s.reap.start(func() (int, error) {
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		return cmd.Process.Pid, nil
	})
	w.Close()
	if err != nil {
		return "", -1, fmt.Errorf("failed to exec %q in container %q: %w", argv, c.spec.Name, err)
	}
	outc := make(chan []byte, 1)
	go func() {
		var buf bytes.Buffer
		io.Copy(&buf, io.LimitReader(r, maxExecOutput))
		io.Copy(io.Discard, r)
		outc <- buf.Bytes()
	}()
	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}
	select {
	case ws := <-wait:
		code, _ := exitCode(ws)
		return string(<-outc), code, nil
	case <-timer:
		// The helper forwards TERM to the process it started in the
		// container; KILL follows if that is not enough.
		syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-wait:
		case <-time.After(time.Second):
			syscall.Kill(pid, syscall.SIGKILL)
			<-wait
		}
		return string(<-outc), -1, fmt.Errorf("command %q timed out", argv)
	}
}
