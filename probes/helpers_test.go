package probes

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/peapod/peapod/runtime/spec"
)

// t0 is the fake clock's start; containers start at t0 unless a test says otherwise.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// failSafe bounds every wait for an event in these tests. It is not a
// timing expectation: a correct run waits only for the scheduler, however
// loaded the machine. It turns a hang (a bug) into a failure that names
// what did not happen, long before go test's -timeout.
const failSafe = time.Minute

// fakeStatus is a StatusSource the test sets.
type fakeStatus struct {
	mu   sync.Mutex
	has  bool
	pod  PodStatus
	ctrs map[string]ContainerStatus
}

func (f *fakeStatus) Status(name string) (PodStatus, ContainerStatus, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pod, f.ctrs[name], f.has
}

// run marks a container instance running since startedAt.
func (f *fakeStatus) run(name, id string, startedAt time.Time) {
	f.set(name, ContainerStatus{ID: id, State: StateRunning, StartedAt: startedAt})
}

func (f *fakeStatus) set(name string, c ContainerStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.has = true
	if f.ctrs == nil {
		f.ctrs = map[string]ContainerStatus{}
	}
	f.ctrs[name] = c
}

func (f *fakeStatus) setPod(p PodStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.has, f.pod = true, p
}

// outcome is one scripted handler answer.
type outcome struct {
	out Outcome
	msg string
	err error
}

// scripted is a Handler answering from a script, then with def; it counts
// calls, tracks concurrency, and can block until released.
type scripted struct {
	mu       sync.Mutex
	script   []outcome
	def      outcome
	calls    int
	inFlight int
	maxIn    int
	called   chan struct{}
	block    chan struct{}
}

func newScripted(def outcome, script ...outcome) *scripted {
	return &scripted{def: def, script: script, called: make(chan struct{}, 100)}
}

func (s *scripted) Probe(ctx context.Context, _ string) (Outcome, string, error) {
	s.mu.Lock()
	s.calls++
	s.inFlight++
	s.maxIn = max(s.maxIn, s.inFlight)
	o := s.def
	if len(s.script) > 0 {
		o, s.script = s.script[0], s.script[1:]
	}
	block := s.block
	s.mu.Unlock()
	s.called <- struct{}{}
	if block != nil {
		<-block
	}
	s.mu.Lock()
	s.inFlight--
	s.mu.Unlock()
	return o.out, o.msg, o.err
}

func (s *scripted) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

var (
	ok   = outcome{out: OutcomeSuccess}
	fail = outcome{out: OutcomeFailure, msg: "boom"}
)

// recorder is an EventSink keeping every event.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) Emit(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) all() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// probeDone is one afterProbe report.
type probeDone struct {
	typ       ProbeType
	container string
	keepGoing bool
}

// harness is a Manager over fakes.
type harness struct {
	t       *testing.T
	pod     *spec.Pod
	clock   *FakeClock
	status  *fakeStatus
	events  *recorder
	m       *Manager
	mu      sync.Mutex
	updates []Update
	// done queues the afterProbe reports of each probe kind apart, so
	// waiting for one kind never consumes (and loses) another's.
	done    map[ProbeType]chan probeDone
	exits   chan ProbeType
	drained chan struct{}
}

// stopAndUpdates stops the manager and returns every update it published.
func (h *harness) stopAndUpdates() []Update {
	h.m.Stop()
	<-h.drained
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Update(nil), h.updates...)
}

func testPod(containers ...spec.Container) *spec.Pod {
	return &spec.Pod{
		Version: spec.Version, UID: "uid-1", Name: "p", Namespace: "ns",
		RestartPolicy: spec.RestartAlways, TerminationGracePeriodSeconds: 30,
		Containers: containers,
	}
}

func newHarness(t *testing.T, pod *spec.Pod, tweak ...func(*Config)) *harness {
	t.Helper()
	h := &harness{
		t: t, pod: pod, clock: NewFakeClock(t0), status: &fakeStatus{}, events: &recorder{},
		exits: make(chan ProbeType, 100),
		done: map[ProbeType]chan probeDone{
			Startup: make(chan probeDone, 1000), Readiness: make(chan probeDone, 1000), Liveness: make(chan probeDone, 1000),
		},
	}
	cfg := Config{Pod: pod, Status: h.status, Events: h.events, Clock: h.clock}
	for _, f := range tweak {
		f(&cfg)
	}
	h.m = NewManager(cfg)
	h.m.afterProbe = func(w *worker, keep bool) { h.done[w.typ] <- probeDone{w.typ, w.container.Name, keep} }
	h.m.exited = func(w *worker) { h.exits <- w.typ }
	drained := make(chan struct{})
	h.drained = drained
	go func() {
		defer close(drained)
		for {
			select {
			case u := <-h.m.Updates():
				h.mu.Lock()
				h.updates = append(h.updates, u)
				h.mu.Unlock()
			case <-h.m.ctx.Done():
				for {
					select {
					case u := <-h.m.Updates():
						h.mu.Lock()
						h.updates = append(h.updates, u)
						h.mu.Unlock()
					default:
						return
					}
				}
			}
		}
	}()
	t.Cleanup(func() { h.m.Stop(); <-drained })
	return h
}

// worker builds a worker with handler and registers it without starting
// its goroutine, so the test drives doProbe itself.
func (h *harness) worker(c *spec.Container, typ ProbeType, handler Handler) *worker {
	w := h.m.newWorker(c, typ, probeOf(c, typ))
	if handler != nil {
		w.handler = handler
	}
	h.m.mu.Lock()
	h.m.workers[workerKey{c.Name, typ}] = w
	h.m.mu.Unlock()
	return w
}

// probe runs one doProbe and returns keepGoing.
func (h *harness) probe(w *worker) bool {
	return w.doProbe(h.m.ctx)
}

// waitProbe waits for the run loop of typ to finish its next doProbe not
// waited for yet.
func (h *harness) waitProbe(typ ProbeType) probeDone {
	h.t.Helper()
	select {
	case d := <-h.done[typ]:
		return d
	case <-time.After(failSafe):
		h.t.Fatalf("no %v probe (waited %v)", typ, failSafe)
	}
	panic("unreachable")
}

// waitExit waits for workers of the given types to exit.
func (h *harness) waitExit(types ...ProbeType) {
	h.t.Helper()
	left := map[ProbeType]bool{}
	for _, typ := range types {
		left[typ] = true
	}
	deadline := time.After(failSafe)
	for len(left) > 0 {
		select {
		case x := <-h.exits:
			delete(left, x)
		case <-deadline:
			h.t.Fatalf("workers %v did not exit (waited %v)", left, failSafe)
		}
	}
}

// awaitClock waits until the fake clock's pending timers and tickers
// satisfy ready: the workers have armed their next ticks, so the next
// Step reaches them.
func (h *harness) awaitClock(what string, ready func(timers, tickers int) bool) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), failSafe)
	defer cancel()
	if err := h.clock.Await(ctx, ready); err != nil {
		h.t.Fatalf("%s: %v", what, err)
	}
}

// result returns the cached result of typ for a container instance.
func (h *harness) result(typ ProbeType, id string) Result {
	h.t.Helper()
	r, ok := h.m.Result(typ, id)
	if !ok {
		return Unknown - 1 // distinguishable "absent"
	}
	return r
}

// eventsWith returns the messages of events with reason.
func (h *harness) eventsWith(reason string) []string {
	var out []string
	for _, e := range h.events.all() {
		if e.Reason == reason {
			out = append(out, e.Message)
		}
	}
	return out
}

func probeSpec(period, delay, success, failure int32) *spec.Probe {
	return &spec.Probe{
		Exec:                []string{"true"},
		PeriodSeconds:       period,
		InitialDelaySeconds: delay,
		SuccessThreshold:    success,
		FailureThreshold:    failure,
		TimeoutSeconds:      1,
	}
}

func ptr[T any](v T) *T { return &v }

// TestHarnessWaitProbeKeepsOtherKinds pins the harness against the race
// that made TestAlignedNetworkProbes flaky: two workers report in either
// order, and waiting for one kind must not consume the other's report.
// The readiness worker is made to report first; a waitProbe that drops
// other kinds then never sees it.
func TestHarnessWaitProbeKeepsOtherKinds(t *testing.T) {
	c := spec.Container{Name: "c", LivenessProbe: probeSpec(1, 0, 1, 3), ReadinessProbe: probeSpec(1, 0, 1, 3)}
	h := newHarness(t, testPod(c))
	readinessReported := make(chan struct{})
	report := h.m.afterProbe
	h.m.afterProbe = func(w *worker, keep bool) {
		report(w, keep)
		if w.typ == Readiness {
			close(readinessReported)
		}
	}
	live := &gated{gate: readinessReported}
	h.m.handlerFor = func(_ string, typ ProbeType) Handler {
		if typ == Liveness {
			return live
		}
		return newScripted(ok)
	}
	h.status.run("c", "c1", t0)
	h.m.AddContainer(&c)
	h.waitProbe(Liveness)
	h.waitProbe(Readiness)
}

// gated is a Handler whose probes succeed once gate is closed.
type gated struct{ gate chan struct{} }

func (g *gated) Probe(context.Context, string) (Outcome, string, error) {
	<-g.gate
	return OutcomeSuccess, "", nil
}
