package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/peapod/peapod/internal/dirwatch"
	"github.com/peapod/peapod/internal/printers"
	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/pod"
)

// dirWatch is internal/dirwatch's Watch, which tells when a pod's state
// may have changed without asking the supervisors (see there why).
type dirWatch struct{ w *dirwatch.Watch }

// podDirMask is what changes a pod directory's state files.
const podDirMask = dirwatch.PodDirMask

func newDirWatch() (*dirWatch, error) {
	w, err := dirwatch.New()
	if err != nil {
		return nil, err
	}
	return &dirWatch{w: w}, nil
}

func (w *dirWatch) close() { w.w.Close() }

// add watches dir; a directory already gone is no error (its pod went).
func (w *dirWatch) add(dir string, mask uint32) error { return w.w.Add(dir, mask) }

// watchRoots watches both pods directories and every pod directory in
// them (called again after each change picks up new pods).
func (w *dirWatch) watchRoots(d layout.Root) error { return w.w.WatchRoots(d) }

// wait blocks until at least one event arrived and drains what is queued.
func (w *dirWatch) wait() error { return w.w.Wait() }

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
