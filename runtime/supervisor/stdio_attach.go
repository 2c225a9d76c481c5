package supervisor

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/peapod/peapod/runtime/spec"
)

// newInstanceStdio makes the streams of one instance of c: FIFOs for its
// output (none for a tty, whose master the start hands over), a pipe for
// its stdin when it has one, and the attach hub.
func newInstanceStdio(c *spec.Container, paths [2]string) (*stdio, error) {
	hub := newAttachHub(c)
	if c.TTY() {
		return &stdio{hub: hub, tty: true}, nil
	}
	p, err := newStdio(paths)
	if err != nil {
		return nil, err
	}
	p.hub = hub
	if !c.Stdin {
		return p, nil
	}
	// A plain pipe: the container's end is blocking (os.StartProcess makes
	// it so), ours is in Go's poller, so a Close ends a blocked write.
	r, w, err := os.Pipe()
	if err != nil {
		p.closeChild()
		p.closeParent()
		p.remove()
		return nil, fmt.Errorf("failed to create the stdin pipe of container %q: %w", c.Name, err)
	}
	p.stdin.Close()
	p.stdin = r
	hub.setStdin(w, false)
	return p, nil
}

// errNoTerminalRuntime: the runtime cannot start tty containers.
var errNoTerminalRuntime = errors.New("this runtime cannot start containers with tty: true")

// startTerminal starts a tty container through the runtime; the master
// becomes the instance's output stream and its hub's stdin.
func (s *Supervisor) startTerminal(c *container, pipes *stdio, beforeRun func(int) error) (int, error) {
	trt, ok := s.rt.(TerminalRuntime)
	if !ok {
		return 0, fmt.Errorf("failed to start container %q: %w", c.spec.Name, errNoTerminalRuntime)
	}
	pid, master, err := trt.StartTerminalContainer(s.pod, c.spec, beforeRun)
	if err != nil {
		return 0, err
	}
	pipes.stdoutR = master
	pipes.hub.setStdin(master, true)
	return pid, nil
}

// copyOutput starts the copiers of an instance's output into lg and the
// attach hub: stdout and stderr, or the pty's one stream, logged as stdout
// as containerd logs a tty container, each
// line without the carriage return the terminal put before its newline.
// Attached clients get the pty's bytes as they are.
func (p *stdio) copyOutput(lg *criLog) {
	tee := func(r io.Reader, kind byte) io.Reader {
		if p.hub == nil {
			return r
		}
		return io.TeeReader(r, p.hub.output(kind))
	}
	if p.stdoutR != nil {
		p.copied.Add(1)
		go func() { defer p.copied.Done(); lg.copyLines("stdout", tee(p.stdoutR, frameStdout), p.tty) }()
	}
	if p.stderrR != nil {
		p.copied.Add(1)
		go func() { defer p.copied.Done(); lg.copyStream("stderr", tee(p.stderrR, frameStderr)) }()
	}
}
