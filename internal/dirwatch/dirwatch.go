// Package dirwatch tells when a pod's state may have changed, without
// asking the supervisors: every state file (the CLI's record under --root,
// the supervisor's spec, status and events under --run-root) is written to
// a temporary file and renamed into its pod's directory (state.WriteJSON),
// so an inotify watch on each pod directory sees every change as one
// IN_MOVED_TO, and one on the two pods directories sees pods come and go.
// A supervisor that dies without a last write changes no file: a watcher
// sees it (SupervisorLost) at the next change of any pod.
//
// `peapod get -w`, `events -w` and `logs -f` wait on it, and so does the
// CRI daemon's GetContainerEvents, which must also stop waiting when the
// daemon shuts down: Close ends a Wait blocked in another goroutine.
package dirwatch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/peapod/peapod/runtime/layout"
	"golang.org/x/sys/unix"
)

// PodDirMask is what changes a pod directory's state files.
const PodDirMask = unix.IN_MOVED_TO | unix.IN_CLOSE_WRITE | unix.IN_DELETE | unix.IN_DELETE_SELF

// TopDirMask is pods appearing and disappearing.
const TopDirMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM

// Watch is one inotify instance.
type Watch struct {
	// f is the inotify descriptor, non-blocking and in Go's poller, so
	// that Close wakes a Read blocked on it (a plain close(2) of a
	// descriptor another thread reads does not).
	f  *os.File
	fd int
	mu sync.Mutex
	// dirs are the watched directories, by watch descriptor.
	dirs map[int]string
}

// New makes a watch on nothing yet.
func New() (*Watch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify_init1: %w", err)
	}
	return &Watch{f: os.NewFile(uintptr(fd), "inotify"), fd: fd, dirs: map[int]string{}}, nil
}

// Close releases the watch; a Wait blocked in another goroutine returns
// os.ErrClosed.
func (w *Watch) Close() error { return w.f.Close() }

// Add watches dir; a directory already gone is no error (its pod went).
func (w *Watch) Add(dir string, mask uint32) error {
	wd, err := unix.InotifyAddWatch(w.fd, dir, mask)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to watch %s: %w", dir, err)
	}
	w.mu.Lock()
	w.dirs[wd] = dir
	w.mu.Unlock()
	return nil
}

// WatchRoots watches both pods directories and every pod directory in
// them (called again after each change picks up new pods).
func (w *Watch) WatchRoots(d layout.Root) error {
	for _, top := range []string{d.PodsDir(), d.RunPodsDir()} {
		if err := w.Add(top, TopDirMask); err != nil {
			return err
		}
		ents, err := os.ReadDir(top)
		if err != nil {
			return fmt.Errorf("failed to read %s: %w", top, err)
		}
		for _, e := range ents {
			if e.IsDir() {
				if err := w.Add(filepath.Join(top, e.Name()), PodDirMask); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Wait blocks until at least one event arrived and drains what is queued.
func (w *Watch) Wait() error {
	buf := make([]byte, 64<<10)
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return err
			}
			return fmt.Errorf("failed to read inotify events: %w", err)
		}
		if n > 0 {
			return nil
		}
	}
}
