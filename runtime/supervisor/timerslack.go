package supervisor

import (
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/namespaces"
)

// TimerSlack is the timer slack of a running supervisor's threads, in ns.
// Its timers are probe periods, timeouts and backoffs counted in seconds,
// so firing up to 10 ms late changes nothing a user can see; in exchange
// the kernel fires the timers of every supervisor that fall within the
// window (and the Go runtime's own short sleeps in sysmon) at one wake-up
// instead of one each. Scenario 6 of scripts/bench.sh (100 pods, TCP+HTTP
// probes every second): 8.5 % of a core without it, 5.0 % with it, 2.7 %
// with the probes' aligned ticks too (probes.Config.AlignNetworkProbes).
// Events — I/O, signals, child exits — are not timers and are not delayed.
const TimerSlack = 10 * 1000 * 1000

// SetTimerSlack sets the timer slack, in ns, of every thread of this
// process. prctl(PR_SET_TIMERSLACK) only reaches the calling thread, and
// Go may run the caller on any of its threads, so each thread's
// /proc/TID/timerslack_ns is written instead (CAP_SYS_NICE for threads
// other than the caller's). Threads created later inherit the slack of the
// thread that creates them, and so do children: the supervisor forks them
// from a thread set back to the kernel's default (withDefaultTimerSlack,
// and namespaces.StartContainer's own thread), and the init and exec stages
// set it again before a workload's execve. The loop repeats until no new
// thread appeared while it ran.
func SetTimerSlack(ns uint64) error {
	done := map[string]bool{}
	val := []byte(strconv.FormatUint(ns, 10))
	for {
		tids, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("failed to list own threads: %w", err)
		}
		fresh := 0
		for _, t := range tids {
			if done[t.Name()] {
				continue
			}
			fresh++
			// A thread that exited meanwhile has nothing left to set.
			if err := os.WriteFile("/proc/"+t.Name()+"/timerslack_ns", val, 0); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("failed to set the timer slack of thread %s: %w", t.Name(), err)
			}
			done[t.Name()] = true
		}
		if fresh == 0 {
			return nil
		}
	}
}

// withDefaultTimerSlack runs fn, which forks a child, on a thread whose
// timer slack is the kernel's default for the duration, so the child (a
// helper, an exec probe, the prober) inherits that and not TimerSlack: its
// own start-up, with Go's runtime and short waits, must not be batched.
// fn must fork on the calling goroutine.
func withDefaultTimerSlack(fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil {
		return fmt.Errorf("failed to read the timer slack: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, namespaces.WorkloadTimerSlack, 0, 0, 0); err != nil {
		return fmt.Errorf("failed to set the timer slack: %w", err)
	}
	// The thread goes back to the pool with the slack it had.
	defer unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(prev), 0, 0, 0)
	return fn()
}
