package probes

import (
	"context"
	"runtime/debug"
	"sync"
	"time"

	"github.com/peapod/peapod/runtime/spec"
)

// worker probes one container with one probe kind on a ticker: the
// kubelet's pkg/kubelet/prober/worker.go, step for step.
type worker struct {
	// m owns the worker: status, results, events, metrics, clock.
	m *Manager
	// typ is the probe kind.
	typ ProbeType
	// container is the probed container's spec.
	container *spec.Container
	// probe is the probe's spec, captured at creation (probes are immutable).
	probe *spec.Probe
	// handler runs the protocol probe.
	handler Handler
	// results is the cache of this probe kind.
	results *Results
	// initialValue is published for every new container instance.
	initialValue Result
	// aligned puts the worker's ticks on the period grid (alignedWait)
	// instead of a free-running ticker.
	aligned bool
	// stopCh is closed by stop; stopOnce guards the close.
	stopCh   chan struct{}
	stopOnce sync.Once
	// manualTriggerCh asks for an immediate probe (readiness); it holds one.
	manualTriggerCh chan struct{}
	// series holds this worker's metric series.
	series *series

	// containerID is the instance being probed; the fields below are
	// touched by the worker's goroutine only.
	containerID string
	// lastResult and resultRun count consecutive identical results.
	lastResult Result
	resultRun  int
	// onHold skips probing until a new container instance appears.
	onHold bool
}

// initialValues are what a new container instance starts with: not ready,
// alive (no kill before a failure run), start unknown.
var initialValues = map[ProbeType]Result{Readiness: Failure, Liveness: Success, Startup: Unknown}

// stop ends the worker's loop; it is idempotent and does not wait.
func (w *worker) stop() {
	w.stopOnce.Do(func() { close(w.stopCh) })
}

// trigger asks for an immediate probe without blocking.
func (w *worker) trigger() {
	select {
	case w.manualTriggerCh <- struct{}{}:
	default:
	}
}

// run is the worker's goroutine.
func (w *worker) run(ctx context.Context) {
	defer w.m.workerDone(w)
	period := time.Duration(w.probe.PeriodSeconds) * time.Second
	if !w.jitter(period) {
		return
	}
	var ticker Ticker
	if !w.aligned {
		ticker = w.m.clock.NewTicker(period)
		defer ticker.Stop()
	}
	// fresh marks a probe not run on a tick (the first, a manual one).
	fresh := true
	for {
		keepGoing := w.doProbe(ctx)
		if w.m.afterProbe != nil {
			w.m.afterProbe(w, keepGoing)
		}
		if !keepGoing {
			return
		}
		var tick <-chan time.Time
		if w.aligned {
			tick = w.m.clock.After(alignedWait(w.m.clock.Now(), period, fresh))
		} else {
			tick = ticker.C()
		}
		select {
		case <-w.stopCh:
			return
		case <-tick:
			fresh = false
		case <-w.manualTriggerCh:
			if ticker != nil {
				ticker.Reset(period)
			}
			fresh = true
		}
	}
}

// alignedWait returns how long to wait from now until the next multiple of
// period since the Unix epoch. Probes run on such ticks stay period apart,
// as on the kubelet's ticker, but every aligned worker of the machine — all
// supervisors share the wall clock — comes due at the same instants, so
// with their timer slack the kernel wakes them together instead of once
// each. After a probe not run on a tick (fresh) the wait is at least half a
// period, so the first interval lies in [period/2, 3·period/2).
func alignedWait(now time.Time, period time.Duration, fresh bool) time.Duration {
	wait := period - time.Duration(now.UnixNano()%int64(period))
	if fresh && wait < period/2 {
		wait += period
	}
	return wait
}

// jitter delays the first probe by rand·period, only when the supervisor
// adopted running containers less than a period ago: after a kubelet
// restart this spreads the probes out, while a new pod is probed on
// schedule. It returns false if the worker was stopped meanwhile.
func (w *worker) jitter(period time.Duration) bool {
	if !w.m.adopted || period <= w.m.clock.Since(w.m.start) {
		return true
	}
	select {
	case <-w.m.clock.After(time.Duration(w.m.rand() * float64(period))):
		return true
	case <-w.stopCh:
		return false
	}
}

// doProbe probes once and says whether the worker keeps going. A panic
// in a handler must not end probing (the kubelet's HandleCrash), nor pass
// unseen: it is a peapod bug, so it is logged with its stack and counted.
func (w *worker) doProbe(ctx context.Context) (keepGoing bool) {
	defer func() {
		if r := recover(); r != nil {
			w.m.metrics.panics.Add(1)
			w.m.logf("recovered from a panic in the %s probe of container %q: %v\n%s", w.typ, w.container.Name, r, debug.Stack())
			keepGoing = true
		}
	}()
	start := w.m.clock.Now()
	name := w.container.Name
	pod, c, ok := w.m.status.Status(name)
	if !ok {
		return true // 1: no status yet, wait
	}
	if pod.Phase == PodFailed || pod.Phase == PodSucceeded {
		return false // 2: the pod is done
	}
	if c.ID == "" {
		return true // 3: the container has not been created yet
	}
	if w.containerID != c.ID {
		w.newInstance(c.ID) // 4
	}
	if w.onHold {
		return true // 5: wait for a new instance after a kill or a startup success
	}
	if c.State != StateRunning {
		// 6: a stopped container is not healthy; only a terminated one
		// that will never restart ends the worker.
		w.results.Set(w.containerID, name, Failure)
		return c.State != StateTerminated || w.m.pod.RestartPolicy != spec.RestartNever
	}
	if pod.Terminating && w.typ != Readiness {
		// 7: a shutting-down app must not be killed for its health (#52817).
		w.results.Set(w.containerID, name, Success)
		return false
	}
	if int32(w.m.clock.Since(c.StartedAt).Seconds()) < w.probe.InitialDelaySeconds {
		return true // 8
	}
	started := w.m.isStarted(name, c)
	if started && w.typ == Startup || !started && w.typ != Startup {
		return true // 9: startup is done, or it gates the others
	}
	result, err := runProbe(ctx, w.typ, name, w.handler, pod.IP, w.m.events)
	if err != nil {
		return true // 10: an error is neither counted nor published
	}
	w.count(result, w.m.clock.Since(start))
	w.publish(result)
	return true
}

// newInstance starts over for a new container instance (step 4). The
// consecutive count is deliberately kept, as the kubelet keeps it.
func (w *worker) newInstance(id string) {
	if w.containerID != "" {
		w.results.Remove(w.containerID)
	}
	w.containerID = id
	if !w.m.takeResumed(w.container.Name, w.typ, id) {
		w.results.Set(id, w.container.Name, w.initialValue)
	}
	w.onHold = false
}

// count updates the metrics (step 11): duration only for successes.
func (w *worker) count(result Result, took time.Duration) {
	switch result {
	case Success:
		w.series.successful.Add(1)
		w.series.observe(took)
	case Failure:
		w.series.failed.Add(1)
	default:
		w.series.unknown.Add(1)
		w.series.observe(took)
	}
}

// publish applies the thresholds and sets the result (steps 12-15).
func (w *worker) publish(result Result) {
	if result == w.lastResult {
		w.resultRun++
	} else {
		w.lastResult, w.resultRun = result, 1
	}
	if result == Failure && w.resultRun < int(w.probe.FailureThreshold) ||
		result == Success && w.resultRun < int(w.probe.SuccessThreshold) {
		return
	}
	w.results.Set(w.containerID, w.container.Name, result)
	if w.typ == Startup && result == Success {
		// Readiness runs at once once the container counts as started
		// (#99979); the kubelet gets there through a pod sync.
		w.m.triggerReadiness(w.container.Name)
	}
	if w.typ == Liveness && result == Failure || w.typ == Startup {
		// The container is being killed, or has started: do not probe this
		// instance again (#21751, #117153).
		w.onHold, w.resultRun = true, 0
	}
}
