package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"golang.org/x/sys/unix"
)

// pollInterval is how often a cgroup is re-read where the kernel offers no
// event to wait for (v1 has no cgroup.events).
const pollInterval = 5 * time.Millisecond

// killer SIGKILLs a cgroup's processes in rounds when no cgroup.kill exists.
type killer struct {
	// dir names the cgroup in errors.
	dir string
	// list returns the processes still in the cgroup and below.
	list func() ([]int, error)
	// freeze stops every process in the cgroup so none can fork while it is
	// being killed; nil where no freezer is available.
	freeze func() error
	// thaw undoes freeze; SIGKILLed frozen tasks only die once thawed.
	thaw func() error
}

// run kills in rounds (freeze, SIGKILL every listed pid, thaw) until the
// cgroup is empty or deadline passes. Each round catches processes forked
// before the freeze took hold.
func (k killer) run(deadline time.Time) error {
	for {
		n, err := k.round()
		// A cgroup removed meanwhile has nothing left to kill.
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		// A killed process takes a moment to leave the cgroup (v1 has no
		// event for it); re-read with a short, growing delay — most
		// processes are gone within a fraction of a millisecond — before
		// starting another round.
		delay := 100 * time.Microsecond
		for i := 0; i < 20; i++ {
			if time.Now().After(deadline) {
				return fmt.Errorf("failed to kill every process of cgroup %q: %w", k.dir, ErrNotEmpty)
			}
			time.Sleep(delay)
			delay = min(2*delay, pollInterval)
			pids, err := k.list()
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			if len(pids) == 0 {
				return nil
			}
		}
	}
}

// round freezes, kills what is listed and thaws; it returns how many
// processes it signalled.
func (k killer) round() (n int, err error) {
	// An empty cgroup has nothing to freeze: nothing in it can fork, and on
	// v1 a freeze is polled until FROZEN, which can take milliseconds (the
	// common case: a pod's cgroup after stop, its processes already gone).
	pids, err := k.list()
	if err != nil || len(pids) == 0 {
		return 0, err
	}
	if k.freeze != nil {
		if err := k.freeze(); err != nil {
			return 0, errors.Join(err, k.thaw())
		}
		defer func() { err = errors.Join(err, k.thaw()) }()
	}
	// Listed again once frozen: what forked before the freeze took hold.
	pids, err = k.list()
	if err != nil {
		return 0, err
	}
	for _, pid := range pids {
		// ESRCH: it exited between the listing and the kill.
		if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
			return 0, fmt.Errorf("failed to kill pid %d of cgroup %q: %w", pid, k.dir, err)
		}
	}
	return len(pids), nil
}
