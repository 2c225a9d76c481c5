package supervisor

import (
	"syscall"
	"time"

	"github.com/peapod/peapod/internal/procfs"
	"github.com/peapod/peapod/runtime/state"
)

// Polling bounds for a stop signal the kernel dropped: the first check
// comes soon (a process usually installs its handlers within milliseconds
// of its execve), later ones back off.
const (
	uncaughtPollFirst = 2 * time.Millisecond
	uncaughtPollMax   = 100 * time.Millisecond
)

// stopSignalSent and stopSignalHeld, when set (by a test), are called
// after each send, and when the signal is first held back.
var stopSignalSent, stopSignalHeld func()

// signalUntilCaught sends sig to proc and reports whether proc exited
// within wait.
//
// A container's main process is PID 1 of its PID namespace unless the pod
// shares one, and the kernel discards, when it is sent, a signal that such
// an init has not installed a handler for (SIGNAL_UNKILLABLE: the default
// action does not apply to a namespace's init). A stop that comes right
// after a start can reach the process between its execve and its
// sigaction(2), busybox top's and most servers' alike, and would then wait
// out the whole grace period. Reading SigCgt: after the kill cannot tell
// a handler installed just before it (the process got the signal) from one
// installed just after (the kernel dropped it; critest's "StopContainer
// should not return an error if already stopped" waited its 60 s once in
// CI that way). So such an init is signalled only once SigCgt: shows a
// handler: before, the signal would be dropped anyway, and it is held back
// while SigCgt: is polled. A handler gone again right after the send (an
// execve in between) means the kernel dropped it, and the new image gets it
// once it has a handler of its own. A process that never installs one waits
// out the grace period, as it would have.
func signalUntilCaught(proc state.Proc, sig syscall.Signal, exited <-chan struct{}, wait time.Duration) bool {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	poll := uncaughtPollFirst
	held := false
	for {
		if !wouldDrop(proc, sig) {
			proc.Signal(sig)
			if stopSignalSent != nil {
				stopSignalSent()
			}
			if !wouldDrop(proc, sig) {
				select {
				case <-exited:
					return true
				case <-deadline.C:
					return false
				}
			}
		} else if !held {
			held = true
			if stopSignalHeld != nil {
				stopSignalHeld()
			}
		}
		select {
		case <-exited:
			return true
		case <-deadline.C:
			return false
		case <-time.After(poll):
			poll = min(2*poll, uncaughtPollMax)
		}
	}
}

// wouldDrop reports whether the kernel would discard sig sent to proc now:
// proc is a PID namespace's init without a handler for it. SIGKILL (from
// the parent namespace) and a process that is gone are never held back.
func wouldDrop(proc state.Proc, sig syscall.Signal) bool {
	if sig == syscall.SIGKILL {
		return false
	}
	sigs, err := procfs.ReadSignals(proc.PID)
	return err == nil && proc.Alive() && sigs.NSInit && !sigs.Catches(int(sig))
}
