package pod

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/peapod/peapod/namespaces"
	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/spec"
	"golang.org/x/sys/unix"
)

// Port forwarding (`peapod port-forward`, and the CRI's PortForward): a
// connection to a port of the pod is dialled from a locked OS thread that
// joined the pod's network namespace for the dial only. A socket belongs to
// the namespace it was created in for its whole life, so the thread returns
// to the host's namespace at once and the connection is copied from any
// goroutine. No hostPort, no DNAT: the pod's port needs no mapping, and
// only this process can reach it.

// ErrPodGone is returned once a pod's network namespace or the pod itself is gone.
var ErrPodGone = errors.New("pod is gone")

// dialTimeout bounds a dial inside the pod: a connect to its loopback is
// answered at once, unless the pod's backlog is full.
const dialTimeout = 10 * time.Second

// goneRecheck is how often a Watch re-checks the pod without an event:
// inotify reports the pin and the run dir being deleted, and this only
// covers a watched directory that is itself replaced.
const goneRecheck = 10 * time.Second

// PortDialer dials ports of one pod, inside its network namespace.
type PortDialer struct {
	// desc names the pod in errors: pod default/web.
	desc string
	// netns is the pod's pinned network namespace ("" for hostNetwork).
	netns string
	// inode is the namespace's inode when the dialer was made.
	inode uint64
	// runDir is the pod's run dir, deleted when the pod is removed.
	runDir string
}

// PortDialer returns a dialer for the ports of pod ns/name, which must
// have its network (a stopped pod has none).
func (m *Manager) PortDialer(ns, name string) (*PortDialer, error) {
	v, err := m.Get(ns, name)
	if err != nil {
		return nil, err
	}
	return m.PortDialerOf(v)
}

// PortDialerOf is PortDialer for a view (the CRI has the pod by uid).
func (m *Manager) PortDialerOf(v *View) (*PortDialer, error) {
	desc := fmt.Sprintf("pod %s/%s", v.Record.Namespace, v.Record.Name)
	if v.stale() && v.Reason != ReasonCreating {
		return nil, fmt.Errorf("%s is %s: %s", desc, v.Reason, v.Message)
	}
	runDir := m.runDir(v.Record.UID)
	sp, err := spec.Load(layout.Run(runDir).Spec())
	if err != nil {
		return nil, fmt.Errorf("%s has no network (stopped?): %w", desc, err)
	}
	d := &PortDialer{desc: desc, runDir: runDir}
	if !sp.HostNetwork {
		d.netns = sp.Namespaces[spec.NSNet]
		if d.netns == "" {
			return nil, fmt.Errorf("%s has no network namespace", desc)
		}
		if d.inode, err = namespaces.PinInode(d.netns); err != nil {
			return nil, fmt.Errorf("%s has no network (stopped?): %w", desc, err)
		}
	}
	return d, nil
}

// String names the pod.
func (d *PortDialer) String() string { return d.desc }

// Dial connects to TCP port on the pod's loopback (127.0.0.1), as the
// kubelet's runtimes do: a server bound to the pod's address only is not
// reached. The error of a refused port names the port and the pod.
func (d *PortDialer) Dial(ctx context.Context, port int) (net.Conn, error) {
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("invalid port %d: must be 1-65535", port)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var conn net.Conn
	dial := func() error {
		var err error
		dl := net.Dialer{Timeout: dialTimeout}
		// A literal address: no resolver goroutine, the socket is made
		// on this (locked, switched) thread.
		conn, err = dl.DialContext(ctx, "tcp4", addr)
		return err
	}
	var err error
	if d.netns == "" {
		err = dial()
	} else {
		err = namespaces.Do(d.netns, unix.CLONE_NEWNET, dial)
		if errors.Is(err, os.ErrNotExist) {
			err = fmt.Errorf("%w: its network namespace %s was removed", ErrPodGone, d.netns)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("failed to connect to port %d of %s: %w", port, d.desc, err)
	}
	return conn, nil
}

// Forward dials port and copies bytes both ways between the connection and
// stream until either side is done, then closes both: the CRI's
// PortForward over a stream of its streaming server.
func (d *PortDialer) Forward(ctx context.Context, port int, stream io.ReadWriteCloser) error {
	conn, err := d.Dial(ctx, port)
	if err != nil {
		stream.Close()
		return err
	}
	return Splice(conn, stream)
}

// Splice copies both ways between a and b. When one side's reading ends,
// the other's writing is shut down (a half-close, so a request whose
// sender closed its end still gets its answer); both are closed once both
// directions are done.
func Splice(a, b io.ReadWriteCloser) error {
	var wg sync.WaitGroup
	errs := make([]error, 2)
	copyHalf := func(i int, dst, src io.ReadWriteCloser) {
		defer wg.Done()
		_, err := io.Copy(dst, src)
		if err != nil && !errors.Is(err, net.ErrClosed) {
			errs[i] = err
		}
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			dst.Close()
		}
	}
	wg.Add(2)
	go copyHalf(0, a, b)
	go copyHalf(1, b, a)
	wg.Wait()
	a.Close()
	b.Close()
	return errors.Join(errs...)
}

// gone reports why the pod is gone, or nil while it is there.
func (d *PortDialer) gone() error {
	if _, err := os.Stat(d.runDir); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %w (removed)", d.desc, ErrPodGone)
	}
	if d.netns == "" {
		return nil
	}
	ino, err := namespaces.PinInode(d.netns)
	if err != nil || ino != d.inode {
		return fmt.Errorf("%s: %w (its network namespace was released: stopped or removed)", d.desc, ErrPodGone)
	}
	return nil
}

// Watch blocks until the pod is gone (stopped, which releases its network,
// or removed), returning an error wrapping ErrPodGone, or until ctx is
// done (nil). It waits on inotify for the deletion of the namespace pin
// and of the pod's run dir, re-checking every goneRecheck without one.
func (d *PortDialer) Watch(ctx context.Context) error {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return fmt.Errorf("failed to watch %s: %w", d.desc, err)
	}
	// Non-blocking, so os.File polls it and Close ends a pending Read.
	in := os.NewFile(uintptr(fd), "inotify")
	defer in.Close()
	const mask = unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF
	dirs := []string{filepath.Dir(d.runDir)}
	if d.netns != "" {
		dirs = append(dirs, filepath.Dir(d.netns))
	}
	for _, dir := range dirs {
		if _, err := unix.InotifyAddWatch(fd, dir, mask); err != nil {
			return fmt.Errorf("failed to watch %q for %s: %w", dir, d.desc, err)
		}
	}
	events := make(chan struct{}, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := in.Read(buf); err != nil {
				close(events)
				return
			}
			select {
			case events <- struct{}{}:
			default:
			}
		}
	}()
	tick := time.NewTicker(goneRecheck)
	defer tick.Stop()
	// Checked after the watches exist: a deletion before them is seen here.
	for {
		if err := d.gone(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-events:
			if !ok {
				return d.gone()
			}
		case <-tick.C:
		}
	}
}
