package supervisor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/runtime/layout"
)

// stdio holds the streams between a container instance and its log.
//
// stdout and stderr are FIFOs in the run dir (layout.Run.FIFOs), as containerd's: the
// container's end is opened read-write, so the container itself keeps a
// reader on the pipe and never gets EPIPE or SIGPIPE when the supervisor
// dies; what it writes meanwhile waits in the pipe (64 KiB, then its
// writes block) until an adopting supervisor reopens the FIFO by its path
// and copies on into the same log file.
//
// A container with stdin: true reads a pipe whose write end the attach hub
// holds; a tty container has no FIFOs: its pty master (stdoutR) carries
// both its output and its input. Neither survives the supervisor: see
// attach.go and the adoption notes in docs/ARCHITECTURE.md.
type stdio struct {
	// stdin is /dev/null, or the read end of the stdin pipe.
	stdin *os.File
	// stdoutR and stderrR are the supervisor's read ends; stdoutW and
	// stderrW the container's read-write ends (nil once handed over).
	stdoutR, stdoutW *os.File
	stderrR, stderrW *os.File
	// paths are the two FIFOs, removed once both streams reached EOF.
	paths [2]string
	// copied is done when both readers reached EOF.
	copied sync.WaitGroup
	// tty marks a tty instance: stdoutR is its pty master.
	tty bool
	// hub is the instance's attach point (nil for an adopted instance
	// whose streams are gone).
	hub *attachHub
}

// fifoPaths are the stdout and stderr FIFOs of a container's
// restartCount-th instance: an adopting supervisor finds them by the
// container id and the restart count in the status.
func fifoPaths(runDir, containerID string, restartCount int) [2]string {
	return layout.Run(runDir).FIFOs(containerID, restartCount)
}

// newStdio makes the FIFOs of an instance and opens both ends of each.
func newStdio(paths [2]string) (p *stdio, err error) {
	p = &stdio{paths: paths}
	defer func() {
		if err != nil {
			p.closeChild()
			p.closeParent()
			p.remove()
		}
	}()
	if p.stdin, err = os.Open(os.DevNull); err != nil {
		return nil, fmt.Errorf("failed to open %s: %w", os.DevNull, err)
	}
	if err := os.MkdirAll(filepath.Dir(paths[0]), 0o700); err != nil {
		return nil, fmt.Errorf("failed to create %q: %w", filepath.Dir(paths[0]), err)
	}
	for _, path := range paths {
		os.Remove(path) // left by an instance that never ran
		if err := unix.Mkfifo(path, 0o600); err != nil {
			return nil, fmt.Errorf("failed to create FIFO %q: %w", path, err)
		}
	}
	if p.stdoutR, p.stderrR, err = openReaders(paths); err != nil {
		return nil, err
	}
	if p.stdoutW, err = openWriter(paths[0]); err != nil {
		return nil, err
	}
	if p.stderrW, err = openWriter(paths[1]); err != nil {
		return nil, err
	}
	return p, nil
}

// adoptStdio reopens the read ends of a running instance's FIFOs.
func adoptStdio(paths [2]string) (*stdio, error) {
	p := &stdio{paths: paths}
	var err error
	if p.stdoutR, p.stderrR, err = openReaders(paths); err != nil {
		return nil, err
	}
	return p, nil
}

// openReaders opens the read ends. O_NONBLOCK makes the open return at
// once without a writer, and the files pollable: a read waits in Go's
// poller, and returns EOF once no writer is left.
func openReaders(paths [2]string) (out, errR *os.File, err error) {
	if out, err = os.OpenFile(paths[0], os.O_RDONLY|unix.O_NONBLOCK, 0); err != nil {
		return nil, nil, fmt.Errorf("failed to open FIFO %q: %w", paths[0], err)
	}
	if errR, err = os.OpenFile(paths[1], os.O_RDONLY|unix.O_NONBLOCK, 0); err != nil {
		out.Close()
		return nil, nil, fmt.Errorf("failed to open FIFO %q: %w", paths[1], err)
	}
	return out, errR, nil
}

// openWriter opens the container's end read-write (which never blocks on a
// FIFO) with a raw open: os.OpenFile would make a FIFO non-blocking for
// its poller, and the container would inherit O_NONBLOCK on its stdout.
func openWriter(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("failed to open FIFO %q: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// child returns the container's ends.
func (p *stdio) child() [3]*os.File { return [3]*os.File{p.stdin, p.stdoutW, p.stderrW} }

// closeChild closes our copies of the container's ends, so EOF comes when
// the container's last process goes.
func (p *stdio) closeChild() {
	for _, f := range []*os.File{p.stdin, p.stdoutW, p.stderrW} {
		if f != nil {
			f.Close()
		}
	}
}

func (p *stdio) closeParent() {
	for _, f := range []*os.File{p.stdoutR, p.stderrR} {
		if f != nil {
			f.Close()
		}
	}
}

// remove deletes the FIFOs.
func (p *stdio) remove() {
	for _, path := range p.paths {
		if path == "" {
			continue // a tty instance has no FIFOs
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintln(os.Stderr, "peapod-supervisor:", err)
		}
	}
}

// waitOutput waits until both streams reached EOF, at most max: a
// process that escaped the container's cgroup with its stdout must not
// hold the exit back.
func (p *stdio) waitOutput(max time.Duration) {
	done := make(chan struct{})
	go func() { p.copied.Wait(); close(done) }()
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// waitCopied blocks until both streams reached EOF, then closes them and
// removes the FIFOs.
func (p *stdio) waitCopied() {
	p.copied.Wait()
	p.closeParent()
	p.remove()
	if p.hub != nil {
		p.hub.end()
	}
}
