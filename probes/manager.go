package probes

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/peapod/peapod/runtime/spec"
)

// updatesBuffer is the kubelet's buffer of the results update channel.
const updatesBuffer = 20

// Config is what a Manager needs from the supervisor.
type Config struct {
	// Pod is the pod's spec: identity, restart policy, containers.
	Pod *spec.Pod
	// Status is the supervisor's view of the pod's and containers' status.
	Status StatusSource
	// Events receives Unhealthy and ProbeWarning events; nil drops them.
	Events EventSink
	// Metrics receives the counters; nil gives the manager its own.
	Metrics *Metrics
	// Clock drives tickers and delays; nil means the wall clock.
	Clock Clock
	// ExecRunner returns the runner that executes argv inside a container's
	// namespaces and cgroup with its env (exec probes).
	ExecRunner func(c *spec.Container) Runner
	// Remote runs the HTTP and gRPC probes in the prober process; nil
	// makes every such probe an error.
	Remote *RemoteProber
	// Adopted says the supervisor took over containers that were already
	// running (its restart): first probes get the kubelet-restart jitter.
	Adopted bool
	// Rand returns a float in [0,1) for the jitter; nil means math/rand.
	Rand func() float64
	// Logf receives the manager's own diagnostics (a panic a worker
	// recovered from); nil writes them to stderr, the supervisor's log.
	Logf func(format string, args ...any)
	// AlignNetworkProbes puts TCP, HTTP and gRPC probes on a grid of
	// their period counted from the Unix epoch (alignedWait), so the
	// network probes of every pod on the machine come due together and
	// share wake-ups. Exec probes keep the kubelet's free-running ticker:
	// a burst of them would queue their processes behind each other.
	AlignNetworkProbes bool
}

// workerKey names one worker of the pod.
type workerKey struct {
	// container is the container's name.
	container string
	// typ is the probe kind.
	typ ProbeType
}

// Manager owns the probe workers of one pod (prober_manager.go) and
// publishes their result changes on Updates.
type Manager struct {
	// pod is the pod's spec.
	pod *spec.Pod
	// status, events and clock come from Config.
	status StatusSource
	events EventSink
	clock  Clock
	// metrics holds the workers' series.
	metrics *Metrics
	// deps builds the protocol handlers.
	deps handlerDeps
	// logf is Config.Logf, or a writer to stderr.
	logf func(format string, args ...any)
	// align is Config.AlignNetworkProbes.
	align bool
	// adopted and rand drive the first-probe jitter; start is when the manager began.
	adopted bool
	rand    func() float64
	start   time.Time
	// updates carries result changes to the supervisor.
	updates chan Update
	// results are the caches, one per probe kind.
	results map[ProbeType]*Results
	// ctx is cancelled by Stop; it aborts in-flight probes and blocked updates.
	ctx    context.Context
	cancel context.CancelFunc
	// wg counts running workers.
	wg sync.WaitGroup
	// mu guards workers.
	mu sync.Mutex
	// workers are the live workers.
	workers map[workerKey]*worker
	// resumed are the instances whose results Resume seeded (resume.go).
	resumed map[workerKey]string
	// afterProbe and exited, set by tests only, run after each doProbe and
	// when a worker has exited.
	afterProbe func(w *worker, keepGoing bool)
	exited     func(w *worker)
	// handlerFor, set by tests only, replaces the protocol handlers.
	handlerFor func(container string, t ProbeType) Handler
}

// NewManager returns a manager with no workers.
func NewManager(cfg Config) *Manager {
	m := &Manager{
		pod:     cfg.Pod,
		status:  cfg.Status,
		events:  cfg.Events,
		clock:   cfg.Clock,
		metrics: cfg.Metrics,
		adopted: cfg.Adopted,
		align:   cfg.AlignNetworkProbes,
		rand:    cfg.Rand,
		updates: make(chan Update, updatesBuffer),
		workers: make(map[workerKey]*worker),
	}
	if m.clock == nil {
		m.clock = RealClock{}
	}
	if m.metrics == nil {
		m.metrics = NewMetrics()
	}
	if m.rand == nil {
		m.rand = rand.Float64
	}
	if m.logf = cfg.Logf; m.logf == nil {
		m.logf = func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "probes: "+format+"\n", args...)
		}
	}
	m.deps = handlerDeps{pod: cfg.Pod, execRunner: cfg.ExecRunner, remote: cfg.Remote}
	m.start = m.clock.Now()
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.results = make(map[ProbeType]*Results, 3)
	for _, t := range []ProbeType{Startup, Readiness, Liveness} {
		m.results[t] = newResults(t, m.updates, m.ctx.Done())
	}
	return m
}

// Updates delivers every change of a published result. The supervisor must
// drain it: a full channel blocks the workers, as in the kubelet. A
// Liveness or Startup Failure for the running instance means: kill it.
func (m *Manager) Updates() <-chan Update { return m.updates }

// Metrics returns the registry the workers count into.
func (m *Manager) Metrics() *Metrics { return m.metrics }

// Result returns the cached result of a probe kind for a container instance.
func (m *Manager) Result(t ProbeType, containerID string) (Result, bool) {
	return m.results[t].Get(containerID)
}

// AddContainer starts the workers of a container's probes, in the order
// startup, readiness, liveness; a probe that already has a worker is skipped.
func (m *Manager) AddContainer(c *spec.Container) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx.Err() != nil {
		return
	}
	for _, t := range []ProbeType{Startup, Readiness, Liveness} {
		p := probeOf(c, t)
		key := workerKey{c.Name, t}
		if p == nil || m.workers[key] != nil {
			continue
		}
		w := m.newWorker(c, t, p)
		m.workers[key] = w
		m.wg.Add(1)
		go w.run(m.ctx)
	}
}

// probeOf returns a container's probe of kind t, nil when absent.
func probeOf(c *spec.Container, t ProbeType) *spec.Probe {
	switch t {
	case Startup:
		return c.StartupProbe
	case Readiness:
		return c.ReadinessProbe
	}
	return c.LivenessProbe
}

// newWorker builds a worker; probe fields still 0 get the API defaults so a
// hand-written spec cannot stop a ticker with a zero period.
func (m *Manager) newWorker(c *spec.Container, t ProbeType, p *spec.Probe) *worker {
	probe := *p
	DefaultProbe(&probe)
	handler := m.deps.newHandler(&probe, c)
	if m.handlerFor != nil {
		handler = m.handlerFor(c.Name, t)
	}
	return &worker{
		m:               m,
		typ:             t,
		container:       c,
		probe:           &probe,
		handler:         handler,
		aligned:         m.align && probe.Exec == nil,
		results:         m.results[t],
		initialValue:    initialValues[t],
		lastResult:      Unknown,
		stopCh:          make(chan struct{}),
		manualTriggerCh: make(chan struct{}, 1),
		series: m.metrics.add(SeriesLabels{
			ProbeType: t.String(), Container: c.Name, Pod: m.pod.Name, Namespace: m.pod.Namespace, PodUID: m.pod.UID,
		}),
	}
}

// workerDone is the worker's exit path: forget its result, its entry and
// its metric series.
func (m *Manager) workerDone(w *worker) {
	defer m.wg.Done()
	if w.containerID != "" {
		w.results.Remove(w.containerID)
	}
	m.mu.Lock()
	key := workerKey{w.container.Name, w.typ}
	if m.workers[key] == w {
		delete(m.workers, key)
	}
	m.mu.Unlock()
	m.metrics.remove(w.series)
	if m.exited != nil {
		m.exited(w)
	}
}

// RemoveContainer stops a container's workers; it does not wait for them.
func (m *Manager) RemoveContainer(name string) {
	m.stopWorkers(func(k workerKey) bool { return k.container == name })
}

// StopLivenessAndStartup stops the liveness and startup workers of every
// container, as syncTerminatingPod does; readiness goes on.
func (m *Manager) StopLivenessAndStartup() {
	m.stopWorkers(func(k workerKey) bool { return k.typ != Readiness })
}

// stopWorkers stops the workers that match.
func (m *Manager) stopWorkers(match func(workerKey) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, w := range m.workers {
		if match(k) {
			w.stop()
		}
	}
}

// Stop stops every worker, aborts in-flight probes, and waits for the
// workers to exit. It is idempotent.
func (m *Manager) Stop() {
	m.mu.Lock()
	m.cancel()
	for _, w := range m.workers {
		w.stop()
	}
	m.mu.Unlock()
	m.wg.Wait()
}

// worker returns the live worker for a key.
func (m *Manager) worker(name string, t ProbeType) *worker {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.workers[workerKey{name, t}]
}

// triggerReadiness asks a container's readiness worker to probe now.
func (m *Manager) triggerReadiness(name string) {
	if w := m.worker(name, Readiness); w != nil {
		w.trigger()
	}
}

// isStarted is isContainerStarted: a running container is started when
// its startup probe succeeded, or when it has no startup probe.
func (m *Manager) isStarted(name string, c ContainerStatus) bool {
	if c.State != StateRunning {
		return false
	}
	if r, ok := m.results[Startup].Get(c.ID); ok {
		return r == Success
	}
	return m.worker(name, Startup) == nil
}

// ContainerStatus computes a container instance's Started and Ready flags
// as UpdatePodStatus: not started means not ready; ready means running and
// readiness succeeded, or no readiness probe. While a readiness worker has
// no success yet it is triggered, so readiness re-probes at once (this is
// why a not-ready container is probed more often than periodSeconds).
func (m *Manager) ContainerStatus(name string, c ContainerStatus) (started, ready bool) {
	started = m.isStarted(name, c)
	if !started {
		return false, false
	}
	if r, ok := m.results[Readiness].Get(c.ID); ok && r == Success {
		return true, true
	}
	w := m.worker(name, Readiness)
	if w != nil {
		w.trigger()
	}
	return true, w == nil
}
