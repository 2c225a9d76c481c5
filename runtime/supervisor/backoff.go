package supervisor

import (
	"time"

	"github.com/peapod/peapod/runtime/spec"
)

// backoff is the kubelet's crash-loop backoff for one container: the first
// exit restarts at once, later ones wait initial, 2×initial, … up to max.
// A container that ran for 10 minutes (the kubelet's backOffPeriod reset)
// starts over. peapod restarts at exactly FinishedAt + delay: it has no
// 10–15 s pod re-sync like the kubelet.
type backoff struct {
	// initial and max bound the delay.
	initial, max time.Duration
	// current is the delay of the next restart after the first.
	current time.Duration
	// exits counts exits since the last reset.
	exits int
}

// backoffReset is how long a container must run for its backoff to reset.
const backoffReset = 10 * time.Minute

func newBackoff(p *spec.Pod) backoff {
	initial := secondsOr(p.BackoffInitialSeconds, 10)
	maxd := secondsOr(p.BackoffMaxSeconds, 300)
	return backoff{initial: initial, max: maxd}
}

func secondsOr(v, def float64) time.Duration {
	if v <= 0 {
		v = def
	}
	return time.Duration(v * float64(time.Second))
}

// exited records an exit of an instance that ran from started to finished.
func (b *backoff) exited(started, finished time.Time) {
	if !started.IsZero() && finished.Sub(started) >= backoffReset {
		b.exits, b.current = 0, 0
	}
	b.exits++
}

// next returns how long to wait from now for the restart after the exit
// at finished: zero for the first exit, then initial, doubling to max.
func (b *backoff) next(finished, now time.Time) time.Duration {
	if b.exits <= 1 {
		return 0
	}
	if b.current == 0 {
		b.current = b.initial
	} else if b.current < b.max {
		b.current *= 2
		if b.current > b.max {
			b.current = b.max
		}
	}
	if finished.IsZero() {
		finished = now
	}
	return finished.Add(b.current).Sub(now)
}
