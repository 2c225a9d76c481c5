package supervisor

import (
	"fmt"
	"os"
	"sync"
)

// stdio holds the pipes between a container instance and its log.
type stdio struct {
	// stdin is /dev/null: peapod containers have no attached stdin yet.
	stdin *os.File
	// stdoutR/stdoutW and stderrR/stderrW are the two stream pipes.
	stdoutR, stdoutW *os.File
	stderrR, stderrW *os.File
	// copied is done when both readers reached EOF.
	copied sync.WaitGroup
}

func newStdio() (*stdio, error) {
	p := &stdio{}
	var err error
	if p.stdin, err = os.Open(os.DevNull); err != nil {
		return nil, fmt.Errorf("failed to open %s: %w", os.DevNull, err)
	}
	if p.stdoutR, p.stdoutW, err = os.Pipe(); err != nil {
		p.stdin.Close()
		return nil, fmt.Errorf("failed to create stdout pipe: %w", err)
	}
	if p.stderrR, p.stderrW, err = os.Pipe(); err != nil {
		p.stdin.Close()
		p.stdoutR.Close()
		p.stdoutW.Close()
		return nil, fmt.Errorf("failed to create stderr pipe: %w", err)
	}
	return p, nil
}

// child returns the container's ends.
func (p *stdio) child() [3]*os.File { return [3]*os.File{p.stdin, p.stdoutW, p.stderrW} }

// closeChild closes our copies of the container's ends, so EOF comes when
// the container's last writer goes.
func (p *stdio) closeChild() {
	p.stdin.Close()
	p.stdoutW.Close()
	p.stderrW.Close()
}

func (p *stdio) closeParent() {
	p.stdoutR.Close()
	p.stderrR.Close()
}

// waitCopied blocks until both streams reached EOF, then closes them.
func (p *stdio) waitCopied() {
	p.copied.Wait()
	p.closeParent()
}
