package supervisor

import (
	"os"
	"os/signal"
	"sync"

	"golang.org/x/sys/unix"
)

// reaper is the supervisor's only waiter. As child subreaper the supervisor
// inherits every orphan of the pod, so it must reap with wait4(-1); that
// would steal exit statuses from exec.Cmd.Wait, so every child the
// supervisor starts is registered here instead and its status is delivered
// on a channel.
type reaper struct {
	// mu is held while a child is started and registered, so the reap loop
	// can never see a pid before it is known.
	mu sync.Mutex
	// waiters maps registered pids to their status channel.
	waiters map[int]chan unix.WaitStatus
	// early holds statuses of pids reaped before registration (cannot
	// happen while start holds mu, kept for robustness).
	early map[int]unix.WaitStatus
}

func newReaper() *reaper {
	r := &reaper{waiters: map[int]chan unix.WaitStatus{}, early: map[int]unix.WaitStatus{}}
	sig := make(chan os.Signal, 16)
	signal.Notify(sig, unix.SIGCHLD)
	go func() {
		for range sig {
			r.reapAll()
		}
	}()
	return r
}

// start runs fn (which forks a child and returns its pid) with the
// registry locked and returns the channel that receives its exit status.
func (r *reaper) start(fn func() (int, error)) (int, <-chan unix.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var pid int
	err := withDefaultTimerSlack(func() (err error) {
		pid, err = fn()
		return err
	})
	if err != nil || pid <= 0 {
		return pid, nil, err
	}
	ch := make(chan unix.WaitStatus, 1)
	if ws, ok := r.early[pid]; ok {
		delete(r.early, pid)
		ch <- ws
		return pid, ch, nil
	}
	r.waiters[pid] = ch
	return pid, ch, nil
}

// reapAll collects every exited child; SIGCHLD coalesces, so one signal
// may stand for many exits.
func (r *reaper) reapAll() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
		r.mu.Lock()
		if ch, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			ch <- ws
		} else if len(r.early) < 1024 {
			// Orphans reparented to us land here too; only keep a bounded
			// number in case one is a registration race.
			r.early[pid] = ws
		}
		r.mu.Unlock()
	}
}

// exitCode turns a wait status into the shell-style code Kubernetes shows:
// the exit status, or 128+signal for a killed process.
func exitCode(ws unix.WaitStatus) (code, sig int) {
	if ws.Signaled() {
		return 128 + int(ws.Signal()), int(ws.Signal())
	}
	return ws.ExitStatus(), 0
}
