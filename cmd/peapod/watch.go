package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/peapod/peapod/internal/printers"
	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/pod"
	"golang.org/x/sys/unix"
)

// dirWatch tells when a pod's state may have changed, without asking the
// supervisors: every state file (the CLI's record under --root, the
// supervisor's status and events under --run-root) is written to a
// temporary file and renamed into its pod's directory (state.WriteJSON),
// so an inotify watch on each pod directory sees every change as one
// IN_MOVED_TO, and one on the two pods directories sees pods come and go.
// A supervisor that dies without a last write changes no file: the watch
// shows it (SupervisorLost) at the next change of any pod.
type dirWatch struct {
	fd int
	// dirs are the watched directories, by watch descriptor.
	mu   sync.Mutex
	dirs map[int]string
}

// podDirMask is what changes a pod directory's state files.
const podDirMask = unix.IN_MOVED_TO | unix.IN_CLOSE_WRITE | unix.IN_DELETE | unix.IN_DELETE_SELF

// topDirMask is pods appearing and disappearing.
const topDirMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM

func newDirWatch() (*dirWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inotify_init1: %w", err)
	}
	return &dirWatch{fd: fd, dirs: map[int]string{}}, nil
}

func (w *dirWatch) close() { unix.Close(w.fd) }

// add watches dir; a directory already gone is no error (its pod went).
func (w *dirWatch) add(dir string, mask uint32) error {
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

// watchRoots watches both pods directories and every pod directory in
// them (called again after each change picks up new pods).
func (w *dirWatch) watchRoots(d layout.Root) error {
	for _, top := range []string{d.PodsDir(), d.RunPodsDir()} {
		if err := w.add(top, topDirMask); err != nil {
			return err
		}
		ents, err := os.ReadDir(top)
		if err != nil {
			return fmt.Errorf("failed to read %s: %w", top, err)
		}
		for _, e := range ents {
			if e.IsDir() {
				if err := w.add(filepath.Join(top, e.Name()), podDirMask); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// wait blocks until at least one event arrived and drains what is queued.
func (w *dirWatch) wait() error {
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(w.fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("failed to read inotify events: %w", err)
		}
		if n > 0 {
			return nil
		}
	}
}

// watchPods prints each listed pod again when it changes (and new pods
// that match), as kubectl get -w does, until interrupted.
func watchPods(g *globals, m *pod.Manager, pr *printers.Printer, l *listFlags, names []string, views []*pod.View, out io.Writer) error {
	w, err := newDirWatch()
	if err != nil {
		return err
	}
	defer w.close()
	// Watch first, then read: a change between the listing and the watch
	// would otherwise be missed.
	if err := w.watchRoots(g.dirs()); err != nil {
		return err
	}
	last := map[string]string{}
	remember := func(all []*pod.View) ([]printers.Pod, error) {
		// A name held without its record is a run between reserving the
		// name and writing the record, or an rm between removing the two:
		// the view cannot tell them apart (it says Terminating), and the
		// next change says what it was.
		var vs []*pod.View
		for _, v := range all {
			if !(len(v.Record.Manifest) == 0 && v.Reason == pod.ReasonTerminating) {
				vs = append(vs, v)
			}
		}
		pods, err := printable(vs)
		if err != nil {
			return nil, err
		}
		var changed []printers.Pod
		for i, p := range pods {
			b, err := json.Marshal(p)
			if err != nil {
				return nil, fmt.Errorf("failed to encode pod %s: %w", p.Pod.Name, err)
			}
			uid := vs[i].Record.UID
			if last[uid] != string(b) {
				last[uid] = string(b)
				changed = append(changed, p)
			}
		}
		return changed, nil
	}
	if _, err := remember(views); err != nil {
		return err
	}
	header := len(views) == 0
	for {
		// Reading after re-arming catches what changed meanwhile.
		if vs, _, err := selectViews(m, g.namespace, l.all, names, l.selector); err == nil {
			changed, err := remember(vs)
			if err != nil {
				return err
			}
			for _, p := range changed {
				if err := pr.Each().Print(out, []printers.Pod{p}, header); err != nil {
					return err
				}
				header = false
			}
		}
		if err := w.wait(); err != nil {
			return err
		}
		if err := w.watchRoots(g.dirs()); err != nil {
			return err
		}
	}
}
