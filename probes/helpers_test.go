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
	done    chan probeDone
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
		done: make(chan probeDone, 1000), exits: make(chan ProbeType, 100),
	}
	cfg := Config{Pod: pod, Status: h.status, Events: h.events, Clock: h.clock}
	for _, f := range tweak {
		f(&cfg)
	}
	h.m = NewManager(cfg)
	h.m.afterProbe = func(w *worker, keep bool) { h.done <- probeDone{w.typ, w.container.Name, keep} }
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

// waitProbe waits for the run loop of typ to finish a doProbe.
func (h *harness) waitProbe(typ ProbeType) probeDone {
	h.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case d := <-h.done:
			if d.typ == typ {
				return d
			}
		case <-deadline:
			h.t.Fatalf("no %v probe within 5s", typ)
		}
	}
}

// waitExit waits for workers of the given types to exit.
func (h *harness) waitExit(types ...ProbeType) {
	h.t.Helper()
	deadline := time.After(5 * time.Second)
	left := map[ProbeType]bool{}
	for _, typ := range types {
		left[typ] = true
	}
	for len(left) > 0 {
		select {
		case x := <-h.exits:
			delete(left, x)
		case <-deadline:
			h.t.Fatalf("workers %v did not exit within 5s", left)
		}
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
