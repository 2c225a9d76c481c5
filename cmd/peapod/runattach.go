package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"golang.org/x/term"
	corev1 "k8s.io/api/core/v1"

	"github.com/peapod/peapod/runtime/pod"
	"github.com/peapod/peapod/runtime/state"
)

// checkAttach refuses flag combinations of an attached run before anything
// is read or created.
func (o *runOptions) checkAttach() error {
	switch {
	case !o.stdin && !o.tty:
		return nil
	case o.detach:
		return errors.New("-d cannot be combined with -i or -t: an attached run stays in the foreground")
	case !o.stdin:
		// kubectl run's words.
		return errors.New("-i/--stdin is required for containers with -t/--tty=true")
	case slices.Contains(o.files, "-"):
		return errors.New("-f - cannot be combined with -i: standard input goes to the container")
	case o.tty && !term.IsTerminal(int(os.Stdin.Fd())):
		return errNotATerminal
	}
	return nil
}

// attachPoint is the container an attached run connects to.
type attachPoint struct {
	// pod is the index in the manifest's pods, container the name.
	pod       int
	container string
}

// attachTarget finds the first container with tty: true (-t) or stdin:
// true (-i alone), before any pod is created.
func (o *runOptions) attachTarget(pods []*corev1.Pod) (attachPoint, error) {
	if !o.stdin {
		return attachPoint{}, nil
	}
	for i, p := range pods {
		for _, c := range p.Spec.Containers {
			if o.tty && c.TTY || !o.tty && c.Stdin {
				return attachPoint{pod: i, container: c.Name}, nil
			}
		}
	}
	if o.tty {
		return attachPoint{}, errors.New("run -t: no container of the manifest has tty: true")
	}
	return attachPoint{}, errors.New("run -i: no container of the manifest has stdin: true")
}

// runAttached is the foreground of `run -i[t]`: attached to the target
// container until its process ends, then the pods are stopped and removed
// and peapod exits with the process's exit code, as `docker run -it --rm`.
// Detaching (Ctrl-P Ctrl-Q) leaves the pods running.
func runAttached(m *pod.Manager, recs []*state.Record, target attachPoint, tty bool, errw io.Writer) error {
	rec := recs[target.pod]
	removeAll := func() error {
		var errs []error
		for _, r := range recs {
			errs = append(errs, m.Stop(r.Namespace, r.Name, nil), m.Remove(r.Namespace, r.Name, true))
		}
		return errors.Join(errs...)
	}
	detached, err := attachTerminal(m, rec.Namespace, rec.Name, target.container, true, tty, func() {
		fmt.Fprintln(errw, "interrupted: stopping and removing the pods")
		removeAll()
	})
	if detached {
		fmt.Fprintf(errw, "pod/%s keeps running: `peapod attach -it %s` returns to it, `peapod rm -f %s` removes it\n", rec.Name, rec.Name, rec.Name)
		return nil
	}
	code := exitCodeOf(m, rec, target.container)
	if rerr := removeAll(); err == nil {
		err = rerr
	}
	if err != nil {
		return err
	}
	if code != 0 {
		os.Exit(code)
	}
	return nil
}

// exitCodeOf is the exit code of the container's instance that just ended.
// The supervisor records an exit before it ends the attach, so the status
// has it already (as the last state when the container restarted).
func exitCodeOf(m *pod.Manager, rec *state.Record, container string) int {
	v, err := m.Get(rec.Namespace, rec.Name)
	if err != nil || v.Status == nil {
		return 0
	}
	for _, cs := range v.Status.Containers {
		if cs.Name != container {
			continue
		}
		if cs.State == state.StateTerminated {
			return cs.ExitCode
		}
		if cs.Last != nil {
			return cs.Last.ExitCode
		}
	}
	return 0
}
