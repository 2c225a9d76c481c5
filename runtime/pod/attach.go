package pod

import (
	"errors"
	"fmt"
	"io"

	"github.com/peapod/peapod/runtime/state"
	"github.com/peapod/peapod/runtime/supervisor"
)

// AttachOptions say what to attach to and with which streams.
type AttachOptions struct {
	// Container is the container's name ("" for the default container).
	Container string
	// Streams are the caller's ends (Stdin nil: output only).
	Streams supervisor.AttachStreams
	// Ready, when not nil, is called with the container's name and what
	// the supervisor said about it once the attach is accepted, before any
	// output arrives (the CLI puts its terminal in raw mode there).
	Ready func(container string, info supervisor.AttachInfo)
}

// Attach connects to the running main process of a container of the pod
// through its supervisor, which holds the process's pty master or stdin
// pipe and copies its output. It returns nil when the process's output
// ended (it exited), supervisor.ErrDetached when the caller detached (the
// process runs on), or the reason attaching failed.
func (m *Manager) Attach(ns, name string, o AttachOptions) error {
	v, err := m.Get(ns, name)
	if err != nil {
		return err
	}
	if v.stale() {
		return fmt.Errorf("pod %s/%s is %s: %s", ns, name, v.Reason, v.Message)
	}
	container, err := m.ChooseContainer(v, o.Container)
	if err != nil {
		return err
	}
	if err := attachable(v, container); err != nil {
		return fmt.Errorf("pod %s/%s: %w", ns, name, err)
	}
	var ready func(supervisor.AttachInfo)
	if o.Ready != nil {
		ready = func(info supervisor.AttachInfo) { o.Ready(container, info) }
	}
	err = supervisor.Attach(m.runDir(v.Record.UID), container, o.Streams, ready)
	if err != nil && !errors.Is(err, supervisor.ErrDetached) {
		return fmt.Errorf("pod %s/%s: %w", ns, name, err)
	}
	return err
}

// attachable says why the container cannot be attached to, judged from
// the status (the supervisor judges again with its live facts).
func attachable(v *View, container string) error {
	if v.Status == nil {
		return fmt.Errorf("container %q has not started", container)
	}
	for _, list := range [][]state.ContainerStatus{v.Status.Containers, v.Status.InitContainers} {
		for _, cs := range list {
			if cs.Name != container {
				continue
			}
			if cs.State != state.StateRunning {
				return fmt.Errorf("container %q is not running (%s)", container, cs.State)
			}
			if !v.SupervisorAlive {
				return fmt.Errorf("container %q: %w", container, supervisor.ErrNoSupervisor)
			}
			return nil
		}
	}
	return fmt.Errorf("container %q not found", container)
}

// DefaultDetachKeys are docker's and podman's: Ctrl-P Ctrl-Q.
var DefaultDetachKeys = []byte{0x10, 0x11}

// DetachReader passes r through until keys is typed, then returns what
// came before the keys and supervisor.ErrDetached. Bytes that start the
// sequence are held back until it is clear they do not complete it (then
// they pass on, as with docker: Ctrl-P alone still reaches the process).
func DetachReader(r io.Reader, keys []byte) io.Reader {
	return &detachReader{r: r, keys: keys}
}

type detachReader struct {
	// r is the wrapped input.
	r io.Reader
	// keys is the detach sequence.
	keys []byte
	// matched counts the bytes of keys seen and held back.
	matched int
	// pending is output not yet returned.
	pending []byte
	// err is returned once pending is empty.
	err error
	// buf is the read buffer.
	buf []byte
}

func (d *detachReader) Read(p []byte) (int, error) {
	for len(d.pending) == 0 && d.err == nil {
		if d.buf == nil {
			d.buf = make([]byte, 32<<10)
		}
		n, err := d.r.Read(d.buf)
		d.scan(d.buf[:n])
		if err != nil && d.err == nil {
			// The input ended: what was held back was typed, not a key.
			d.pending = append(d.pending, d.keys[:d.matched]...)
			d.matched = 0
			d.err = err
		}
	}
	n := copy(p, d.pending)
	d.pending = d.pending[n:]
	if len(d.pending) == 0 && d.err != nil {
		return n, d.err
	}
	return n, nil
}

// scan moves b into pending, holding back a prefix of the keys and
// stopping at the whole sequence.
func (d *detachReader) scan(b []byte) {
	if len(d.keys) == 0 {
		d.pending = append(d.pending, b...)
		return
	}
	for _, c := range b {
		if c == d.keys[d.matched] {
			d.matched++
			if d.matched == len(d.keys) {
				d.matched = 0
				d.err = supervisor.ErrDetached
				return
			}
			continue
		}
		d.pending = append(d.pending, d.keys[:d.matched]...)
		d.matched = 0
		if c == d.keys[0] {
			d.matched = 1
			continue
		}
		d.pending = append(d.pending, c)
	}
}
