package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/peapod/peapod/namespaces"
	"github.com/peapod/peapod/probes"
	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/spec"
	"golang.org/x/sys/unix"
)

// ExecOptions is the one rule for a process started beside container c's
// workload (peapod exec, exec probes, hooks): c's own process — env,
// working dir, user and groups, capabilities, no_new_privs, seccomp filter — running argv without a
// terminal, in the namespaces of target (c's main process) and the cgroup
// whose cgroup.procs files are cgroupProcs. helper is the read-only mount
// of peapod-init. The caller sets the stdio.
func ExecOptions(helper string, target int, cgroupProcs []string, c *spec.Container, argv []string) namespaces.ExecOptions {
	proc := *c.OCI.Process // a copy: argv must not replace the container's args
	proc.Args = argv
	proc.Terminal = false
	return namespaces.ExecOptions{Helper: helper, Target: target, Cgroups: cgroupProcs, Process: proc, Seccomp: c.Seccomp, Identity: c.Identity}
}

// makeExecProfile makes the exec profile of c's instance pid and writes it
// where `peapod exec` reads it, before the instance is recorded as running,
// so a reader that sees it running finds its profile. A container name that
// is not a DNS label (a CRI client's) gets no file: exec then takes the
// spec's slow path.
func (s *Supervisor) makeExecProfile(c *container, pid int) (namespaces.ExecProfile, error) {
	prof, err := s.rt.ExecProfile(pid, c.spec)
	if err != nil {
		return namespaces.ExecProfile{}, fmt.Errorf("exec profile of container %q: %w", c.spec.Name, err)
	}
	if s.pod.RunDir != "" && layout.IsLabel(c.spec.Name) {
		if err := namespaces.WriteExecProfile(layout.Run(s.pod.RunDir).ExecProfile(c.spec.Name), prof); err != nil {
			// Not fatal: exec falls back to the spec.
			fmt.Fprintf(os.Stderr, "supervisor: %v\n", err)
		}
	}
	return prof, nil
}

// dropExecProfile removes c's exec profile file once its instance exited
// (a reader checks the process anyway: this only keeps the dir tidy).
func (s *Supervisor) dropExecProfile(c *container) {
	if s.pod.RunDir != "" {
		os.Remove(layout.Run(s.pod.RunDir).ExecProfile(c.spec.Name))
	}
}

// maxExecOutput caps each stream of a hook or exec probe, as the kubelet.
const maxExecOutput = 10 << 10

// outputGrace bounds the wait for a command's output once it exited: a
// daemon it left behind may hold the pipes open forever.
const outputGrace = 500 * time.Millisecond

// execIn runs argv inside c's namespaces and cgroup and returns its output
// (stdout then stderr, each capped) and exit code (timeout 0 = none); the
// error wraps probes.ErrExecTimeout when it timed out.
func (s *Supervisor) execIn(ctx context.Context, c *container, argv []string, timeout time.Duration) ([]byte, int, error) {
	s.mu.Lock()
	target, prof, profErr := c.proc.PID, c.exec, c.execErr
	s.mu.Unlock()
	if target == 0 {
		return nil, -1, fmt.Errorf("container %q is not running", c.spec.Name)
	}
	if prof.Target != target {
		if profErr == nil {
			profErr = errors.New("no exec profile")
		}
		return nil, -1, fmt.Errorf("failed to exec %q in container %q: %w", argv, c.spec.Name, profErr)
	}
	out, code, err := s.runCommand(ctx, timeout, killTree, func(stdout, stderr *os.File) *exec.Cmd {
		return s.rt.ExecCommand(prof, argv, stdout, stderr)
	})
	if err != nil {
		return out, code, fmt.Errorf("failed to exec %q in container %q: %w", argv, c.spec.Name, err)
	}
	return out, code, nil
}

// execHook runs a lifecycle hook and returns its output as text.
func (s *Supervisor) execHook(c *container, argv []string, timeout time.Duration) (string, int, error) {
	out, code, err := s.execIn(context.Background(), c, argv, timeout)
	return string(out), code, err
}

// runCommand starts the command build returns, registered with the reaper
// (never exec.Cmd.Wait: the reaper's wait4(-1) would race it), collects
// its streams and waits for it, the timeout or ctx. On timeout or
// cancellation, kill stops the process and everything it started.
func (s *Supervisor) runCommand(ctx context.Context, timeout time.Duration, kill func(*os.Process, <-chan unix.WaitStatus), build func(stdout, stderr *os.File) *exec.Cmd) ([]byte, int, error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, -1, fmt.Errorf("failed to create stdout pipe: %w", err)
	}
	defer outR.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		outW.Close()
		return nil, -1, fmt.Errorf("failed to create stderr pipe: %w", err)
	}
	defer errR.Close()
	cmd := build(outW, errW)
	_, wait, err := s.reap.start(func() (int, error) {
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		return cmd.Process.Pid, nil
	})
	outW.Close()
	errW.Close()
	if err != nil {
		return nil, -1, err
	}
	defer cmd.Process.Release()
	stdout, stderr := collect(outR), collect(errR)

	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	code, err := -1, error(nil)
	select {
	case ws := <-wait:
		code, _ = exitCode(ws)
	case <-expired:
		kill(cmd.Process, wait)
		err = fmt.Errorf("%w after %v", probes.ErrExecTimeout, timeout)
	case <-ctx.Done():
		kill(cmd.Process, wait)
		err = ctx.Err()
	}
	return outputOf(stdout, stderr, outR, errR), code, err
}

// collect reads up to maxExecOutput of r (discarding the rest) and delivers it.
func collect(r *os.File) <-chan []byte {
	ch := make(chan []byte, 1)
	go func() {
		var buf bytes.Buffer
		io.Copy(&buf, io.LimitReader(r, maxExecOutput))
		io.Copy(io.Discard, r)
		ch <- buf.Bytes()
	}()
	return ch
}

// outputOf returns stdout followed by stderr (the kubelet's RunInContainer
// order, not interleaved). A process left behind that still holds a pipe
// gets outputGrace; then the read ends are closed, which ends the readers.
func outputOf(stdout, stderr <-chan []byte, outR, errR *os.File) []byte {
	t := time.AfterFunc(outputGrace, func() {
		outR.Close()
		errR.Close()
	})
	defer t.Stop()
	out := <-stdout
	return append(out, <-stderr...)
}
