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

// stopSignalSent, when set (by a test), is called after the first send.
var stopSignalSent func()

// signalUntilCaught sends sig to proc and reports whether proc exited
// within wait.
//
// A container's main process is PID 1 of its PID namespace unless the pod
// shares one, and the kernel discards, when it is sent, a signal that such
// an init has not installed a handler for (SIGNAL_UNKILLABLE: the default
// action does not apply to a namespace's init). A stop that comes right
// after a start can reach the process between its execve and its
// sigaction(2), busybox top's and most servers' alike, and would then wait
// out the whole grace period. So when SigCgt: shows the signal was not
// caught after it was sent, it is sent once more as soon as a handler
// appears. (Read after the kill: a handler installed between the kill
// and the read is taken for one that got it, so no process gets it twice.)
func signalUntilCaught(proc state.Proc, sig syscall.Signal, exited <-chan struct{}, wait time.Duration) bool {
	proc.Signal(sig)
	if stopSignalSent != nil {
		stopSignalSent()
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	var retry <-chan time.Time
	poll := uncaughtPollFirst
	if sig != syscall.SIGKILL && dropped(proc, sig) {
		retry = time.After(poll)
	}
	for {
		select {
		case <-exited:
			return true
		case <-deadline.C:
			return false
		case <-retry:
			retry = nil
			sigs, err := procfs.ReadSignals(proc.PID)
			switch {
			case err != nil || !proc.Alive():
				// Gone, or going: exited tells.
			case sigs.Catches(int(sig)):
				proc.Signal(sig)
			default:
				poll = min(2*poll, uncaughtPollMax)
				retry = time.After(poll)
			}
		}
	}
}

// dropped reports whether sig, just sent to proc, was discarded: proc is a
// PID namespace's init without a handler for it.
func dropped(proc state.Proc, sig syscall.Signal) bool {
	sigs, err := procfs.ReadSignals(proc.PID)
	return err == nil && proc.Alive() && sigs.NSInit && !sigs.Catches(int(sig))
}
