package probes

import (
	"fmt"
	"sync"
	"time"

	"github.com/peapod/peapod/runtime/spec"
)

// Kubelet defaults for crash-loop backoff and grace periods.
const (
	// DefaultBackoffInitial is initialCrashLoopBackOff.
	DefaultBackoffInitial = 10 * time.Second
	// DefaultBackoffMax is MaxCrashLoopBackOff.
	DefaultBackoffMax = 300 * time.Second
	// BackoffResetAfter: a container that ran longer than this before
	// exiting starts its backoff over (the kubelet's HasExpiredFunc).
	BackoffResetAfter = 600 * time.Second
	// MinimumGracePeriodSeconds is the least a kill waits before SIGKILL.
	MinimumGracePeriodSeconds = 2
	// DefaultTerminationGracePeriodSeconds is the pod's default.
	DefaultTerminationGracePeriodSeconds = 30
)

// ReasonCrashLoopBackOff is the waiting reason of a container in backoff.
const ReasonCrashLoopBackOff = "CrashLoopBackOff"

// ShouldRestart says whether an exited container starts again. Always
// restarts everything, Never nothing; OnFailure restarts a non-zero exit,
// and a probe kill even when the process exited 0 on SIGTERM, because the
// kubelet decides a probe kill's restart by "policy != Never" before the
// exit code exists.
func ShouldRestart(policy string, exitCode int, killedByProbe bool) bool {
	switch policy {
	case spec.RestartNever:
		return false
	case spec.RestartOnFailure:
		return killedByProbe || exitCode != 0
	}
	return true
}

// KillGracePeriod is the grace period a kill starts from
// (setTerminationGracePeriod): the deletion's grace if the pod is being
// deleted, else for a probe kill the probe's terminationGracePeriodSeconds
// (even when larger), else the pod's. probe is nil for a kill that is not
// a liveness or startup failure. A preStop hook runs only when the result
// is > 0, bounded by it; GraceAfterPreStop then gives the stop signal's wait.
func KillGracePeriod(pod *spec.Pod, probe *spec.Probe, deletionGrace *int64) int64 {
	grace := pod.TerminationGracePeriodSeconds
	switch {
	case deletionGrace != nil:
		grace = *deletionGrace
	case probe != nil && probe.TerminationGracePeriodSeconds != nil:
		grace = *probe.TerminationGracePeriodSeconds
	}
	return grace
}

// GraceAfterPreStop is how long the stop signal waits before SIGKILL once a
// preStop hook took took (0 without a hook): grace minus the hook's whole
// seconds (truncated, as the kubelet counts), never less than
// MinimumGracePeriodSeconds.
func GraceAfterPreStop(grace int64, took time.Duration) int64 {
	return max(grace-int64(took.Seconds()), MinimumGracePeriodSeconds)
}

// PodRef is the kubelet's format.Pod: name_namespace(uid).
func PodRef(pod *spec.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}

// CrashLoopBackOffMessage is the waiting message of a container in backoff.
func CrashLoopBackOffMessage(backoff time.Duration, container string, pod *spec.Pod) string {
	return fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", backoff, container, PodRef(pod))
}

// BackOffEvent is the Warning BackOff event raised each time a start is
// skipped because of backoff.
func BackOffEvent(container string, pod *spec.Pod) Event {
	return Event{
		Container: container,
		Type:      EventWarning,
		Reason:    ReasonBackOff,
		Message:   fmt.Sprintf("Back-off restarting failed container %s in pod %s", container, PodRef(pod)),
	}
}

// BackoffKey is the kubelet's getStableKey: a change of the container's
// spec (its hash) starts the backoff over.
func BackoffKey(pod *spec.Pod, container, specHash string) string {
	return fmt.Sprintf("%s_%s_%s_%s_%s", pod.Name, pod.Namespace, pod.UID, container, specHash)
}

// Backoff is the crash-loop backoff of a pod's containers: client-go's
// flowcontrol.Backoff with no jitter as the kubelet configures it. The
// supervisor, on each exit, restarts at RestartAt(key, finishedAt) and
// calls Started(key, finishedAt) when it starts the container. The kubelet
// only gets there on its next sync, 10-15 s later; peapod restarts at
// exactly FinishedAt + backoff.
type Backoff struct {
	// initial and max bound the delay.
	initial, max time.Duration
	// clock stamps the restarts.
	clock Clock
	// mu guards entries.
	mu sync.Mutex
	// entries hold each key's current delay and last restart.
	entries map[string]*backoffEntry
}

// backoffEntry is one key's state.
type backoffEntry struct {
	// delay is the current backoff.
	delay time.Duration
	// lastRestart is when the container was last started after an exit.
	lastRestart time.Time
}

// NewBackoff returns a backoff; zero initial or max take the kubelet's
// defaults (10 s, 300 s), and a nil clock the wall clock.
func NewBackoff(initial, max time.Duration, clock Clock) *Backoff {
	if initial <= 0 {
		initial = DefaultBackoffInitial
	}
	if max <= 0 {
		max = DefaultBackoffMax
	}
	if clock == nil {
		clock = RealClock{}
	}
	return &Backoff{initial: initial, max: max, clock: clock, entries: make(map[string]*backoffEntry)}
}

// live returns key's entry unless it is missing or expired for an exit at
// finishedAt: the container ran longer than BackoffResetAfter since its
// last restart.
func (b *Backoff) live(key string, finishedAt time.Time) *backoffEntry {
	e := b.entries[key]
	if e == nil || finishedAt.Sub(e.lastRestart) > BackoffResetAfter {
		return nil
	}
	return e
}

// Delay is the backoff in force for an exit at finishedAt: 0 after the
// first exit (or after a long run), else the current delay.
func (b *Backoff) Delay(key string, finishedAt time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e := b.live(key, finishedAt); e != nil {
		return e.delay
	}
	return 0
}

// RestartAt is when a container that exited at finishedAt may start again.
func (b *Backoff) RestartAt(key string, finishedAt time.Time) time.Time {
	return finishedAt.Add(b.Delay(key, finishedAt))
}

// InBackOff is IsInBackOffSince: true while now is before RestartAt. The
// container's status is then waiting/CrashLoopBackOff with
// CrashLoopBackOffMessage(Delay(...)).
func (b *Backoff) InBackOff(key string, finishedAt time.Time) bool {
	return b.clock.Since(finishedAt) < b.Delay(key, finishedAt)
}

// Started records a restart after the exit at finishedAt (flowcontrol
// Next): a new or expired entry gets the initial delay, else it doubles up
// to max.
func (b *Backoff) Started(key string, finishedAt time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.live(key, finishedAt)
	if e == nil {
		e = &backoffEntry{delay: b.initial}
		b.entries[key] = e
	} else {
		e.delay = min(2*e.delay, b.max)
	}
	e.lastRestart = b.clock.Now()
}

// Forget drops a key, when its container or pod is removed.
func (b *Backoff) Forget(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.entries, key)
}
