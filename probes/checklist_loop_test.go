package probes

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/peapod/peapod/runtime/spec"
)

func TestChecklist_13(t *testing.T) {
	sp := probeSpec(1, 0, 1, 3)
	sp.TerminationGracePeriodSeconds = ptr[int64](9)
	c := spec.Container{Name: "c", StartupProbe: sp, LivenessProbe: probeSpec(1, 0, 1, 3)}
	h := newHarness(t, testPod(c))
	startup, live := newScripted(fail), newScripted(ok)
	ws, wl := h.worker(&c, Startup, startup), h.worker(&c, Liveness, live)
	h.status.run("c", "c1", t0)
	for i := 0; i < 4; i++ {
		h.probe(ws)
		h.probe(wl)
		h.clock.Step(time.Second)
	}
	if r := h.result(Startup, "c1"); r != Failure {
		t.Fatalf("startup = %v, want Failure after 3 failures", r)
	}
	if startup.count() != 3 || live.count() != 0 {
		t.Fatalf("startup ran %d (want 3, then on hold), liveness %d (want 0)", startup.count(), live.count())
	}
	if msg := KillMessage(Startup, "c", true); msg != "Container c failed startup probe, will be restarted" {
		t.Fatalf("kill message %q", msg)
	}
	if g := GraceAfterPreStop(KillGracePeriod(h.pod, c.StartupProbe, nil), 0); g != 9 {
		t.Fatalf("grace %d, want the startup probe's 9", g)
	}
}

func TestChecklist_14(t *testing.T) {
	c := spec.Container{Name: "c", StartupProbe: probeSpec(1, 0, 1, 3),
		ReadinessProbe: probeSpec(1, 0, 1, 1), LivenessProbe: probeSpec(1, 5, 1, 3)}
	h := newHarness(t, testPod(c))
	live := newScripted(ok)
	ws, wr, wl := h.worker(&c, Startup, newScripted(ok)), h.worker(&c, Readiness, newScripted(ok)), h.worker(&c, Liveness, live)
	all := []*worker{ws, wr, wl}
	round := func() {
		for _, w := range all {
			h.probe(w)
		}
		h.clock.Step(time.Second)
	}
	h.status.run("c", "c1", t0)
	for i := 0; i < 6; i++ {
		round()
	}
	if started, ready := h.m.ContainerStatus("c", ContainerStatus{ID: "c1", State: StateRunning, StartedAt: t0}); !started || !ready {
		t.Fatalf("first instance started=%v ready=%v", started, ready)
	}
	// Liveness fails three times: killed; the supervisor restarts it.
	live.mu.Lock()
	live.def = fail
	live.mu.Unlock()
	for i := 0; i < 3; i++ {
		round()
	}
	if r := h.result(Liveness, "c1"); r != Failure {
		t.Fatalf("liveness %v after 3 failures, want Failure", r)
	}
	restart := h.clock.Now()
	h.status.run("c", "c2", restart)
	h.probe(wr)
	h.probe(wl)
	if started, ready := h.m.ContainerStatus("c", ContainerStatus{ID: "c2", State: StateRunning, StartedAt: restart}); started || ready {
		t.Fatalf("new instance started=%v ready=%v before its startup probe passed", started, ready)
	}
	h.probe(ws)
	if h.result(Readiness, "c2") != Failure || h.result(Liveness, "c2") != Success {
		t.Fatalf("new instance results: readiness %v liveness %v", h.result(Readiness, "c2"), h.result(Liveness, "c2"))
	}
	if _, ok := h.m.Result(Liveness, "c1"); ok {
		t.Fatal("old instance's result kept")
	}
	c2 := ContainerStatus{ID: "c2", State: StateRunning, StartedAt: restart}
	if h.result(Startup, "c2") != Success { // startup ran in this very round and passed
		t.Fatalf("startup %v", h.result(Startup, "c2"))
	}
	if _, ready := h.m.ContainerStatus("c", c2); ready {
		t.Fatal("new instance ready before readiness ran")
	}
	before := live.count()
	for s := 0; s < 5; s++ { // liveness initialDelay 5s from the new startedAt
		h.clock.Step(time.Second)
		if s < 4 {
			h.probe(wl)
		}
	}
	if live.count() != before {
		t.Fatalf("liveness probed the new instance %d times before its initial delay", live.count()-before)
	}
	for i := 1; i <= 3; i++ {
		h.probe(wl)
		h.clock.Step(time.Second)
		if r := h.result(Liveness, "c2"); (r == Failure) != (i == 3) {
			t.Fatalf("after %d failures of the new instance liveness = %v: the count must start from zero", i, r)
		}
	}
}

// TestLivenessCountCarriesAcrossCrash pins a kubelet quirk (§3 step 4): a
// container that crashes (no kill) keeps its worker's consecutive count.
func TestLivenessCountCarriesAcrossCrash(t *testing.T) {
	c := spec.Container{Name: "c", LivenessProbe: probeSpec(1, 0, 1, 3)}
	h := newHarness(t, testPod(c))
	w := h.worker(&c, Liveness, newScripted(fail))
	h.status.run("c", "c1", t0)
	h.probe(w)
	h.probe(w)
	h.status.run("c", "c2", t0)
	h.probe(w)
	if r := h.result(Liveness, "c2"); r != Failure {
		t.Fatalf("liveness %v: the kubelet carries the count of two failures into the new instance", r)
	}
}

func TestChecklist_20(t *testing.T) {
	ports := []spec.Port{{Name: "http", ContainerPort: 8080}, {Name: "metrics", ContainerPort: 9090}}
	if p, err := ResolvePort("http", ports); err != nil || p != 8080 {
		t.Fatalf("ResolvePort(http) = %d, %v", p, err)
	}
	if _, err := ResolvePort("70000", ports); !errors.Is(err, ErrInvalidPort) || err.Error() != "invalid port number: 70000" {
		t.Fatalf("ResolvePort(70000) err = %v", err)
	}
	for _, typ := range []ProbeType{Readiness, Liveness} {
		p := probeSpec(1, 0, 1, 1)
		p.Exec, p.HTTPGet = nil, &spec.HTTPGet{Port: "x", Path: "/"}
		c := spec.Container{Name: "c", Ports: ports, ReadinessProbe: p, LivenessProbe: p}
		h := newHarness(t, testPod(c))
		w := h.worker(&c, typ, nil) // the real handler: the port does not resolve
		h.status.run("c", "c1", t0)
		for i := 0; i < 3; i++ {
			h.probe(w)
			h.clock.Step(time.Second)
		}
		initial := initialValues[typ]
		if r := h.result(typ, "c1"); r != initial {
			t.Fatalf("%v result %v, want the initial %v (errors leave the state alone)", typ, r, initial)
		}
		msgs := h.eventsWith(ReasonUnhealthy)
		want := typ.String() + ` probe errored and resulted in unknown state: port "x" not found`
		if len(msgs) != 3 || msgs[0] != want {
			t.Fatalf("%v events %q, want 3 × %q", typ, msgs, want)
		}
		if ups := h.stopAndUpdates(); len(ups) != 1 || ups[0].Result != initial {
			t.Fatalf("%v published %+v, want only the initial value", typ, ups)
		}
	}
}

func TestChecklist_23(t *testing.T) {
	run := func(_ context.Context, argv []string, timeout time.Duration) ([]byte, int, error) {
		if timeout != time.Second {
			return nil, 0, fmt.Errorf("runner got timeout %v, want 1s", timeout)
		}
		return nil, -1, fmt.Errorf("exec %q: %w", argv, ErrExecTimeout)
	}
	p := probeSpec(1, 0, 1, 3)
	p.Exec = []string{"sleep", "5"}
	c := spec.Container{Name: "c", LivenessProbe: p}
	h := newHarness(t, testPod(c), func(cfg *Config) {
		cfg.ExecRunner = func(*spec.Container) Runner { return run }
	})
	w := h.worker(&c, Liveness, nil)
	h.status.run("c", "c1", t0)
	for i := 0; i < 3; i++ {
		h.probe(w)
		h.clock.Step(time.Second)
	}
	if r := h.result(Liveness, "c1"); r != Failure {
		t.Fatalf("liveness %v after 3 timeouts, want Failure (timeouts count)", r)
	}
	msgs := h.eventsWith(ReasonUnhealthy)
	if len(msgs) != 3 || msgs[0] != `Liveness probe failed: command "sleep 5" timed out` {
		t.Fatalf("events %q", msgs)
	}
}

func TestChecklist_25(t *testing.T) {
	c := spec.Container{Name: "c", ReadinessProbe: probeSpec(1, 0, 2, 3)}
	h := newHarness(t, testPod(c))
	broken := outcome{out: OutcomeUnknown, err: errors.New("exec runtime gone")}
	handler := newScripted(ok, ok, broken, broken, broken, ok)
	w := h.worker(&c, Readiness, handler)
	h.status.run("c", "c1", t0)
	h.probe(w) // success 1 of 2
	h.probe(w) // three errors back to back, discarded
	if handler.count() != 4 {
		t.Fatalf("handler ran %d times, want 1 + 3 retries", handler.count())
	}
	if msgs := h.eventsWith(ReasonUnhealthy); len(msgs) != 1 || msgs[0] != "Readiness probe errored and resulted in unknown state: exec runtime gone" {
		t.Fatalf("events %q, want one errored event", msgs)
	}
	snap := h.m.Metrics().Snapshot()
	if len(snap) != 1 || snap[0].Successful != 1 || snap[0].Failed != 0 || snap[0].Unknown != 0 {
		t.Fatalf("metrics %+v, want only the first success counted", snap)
	}
	h.probe(w) // success 2 of 2: the errors did not reset the run
	if r := h.result(Readiness, "c1"); r != Success {
		t.Fatalf("readiness %v: errors must not touch the consecutive count", r)
	}
}

func TestChecklist_26(t *testing.T) {
	c := spec.Container{Name: "c", ReadinessProbe: probeSpec(1, 0, 1, 5)}
	h := newHarness(t, testPod(c))
	w := h.worker(&c, Readiness, newScripted(ok, fail, ok, fail, fail, ok))
	h.status.run("c", "c1", t0)
	for i := 0; i < 6; i++ {
		h.probe(w)
	}
	evs := h.events.all()
	if len(evs) != 3 {
		t.Fatalf("events %+v, want one per failure (3)", evs)
	}
	for _, e := range evs {
		if e.Type != EventWarning || e.Reason != ReasonUnhealthy || e.Message != "Readiness probe failed: boom" || e.Container != "c" {
			t.Fatalf("event %+v", e)
		}
	}
}

func TestChecklist_27(t *testing.T) {
	c := spec.Container{Name: "c", LivenessProbe: probeSpec(1, 0, 1, 10)}
	h := newHarness(t, testPod(c))
	h.m.handlerFor = func(string, ProbeType) Handler { return newScripted(fail, ok, ok, fail) }
	h.status.run("c", "c1", t0)
	h.m.AddContainer(&c)
	h.waitProbe(Liveness)
	for i := 0; i < 4; i++ {
		h.clock.Step(time.Second)
		h.waitProbe(Liveness)
	}
	snap := h.m.Metrics().Snapshot()
	want := SeriesLabels{ProbeType: "Liveness", Container: "c", Pod: "p", Namespace: "ns", PodUID: "uid-1"}
	if len(snap) != 1 || snap[0].Labels != want {
		t.Fatalf("series %+v, want one with %+v", snap, want)
	}
	if s := snap[0]; s.Successful != 2 || s.Failed != 3 || s.DurationCount != 2 || s.DurationBuckets[len(DurationBuckets)-1] != 2 {
		t.Fatalf("series %+v, want 2 successful, 3 failed, 2 durations", s)
	}
	h.m.RemoveContainer("c")
	h.waitExit(Liveness)
	if snap := h.m.Metrics().Snapshot(); len(snap) != 0 {
		t.Fatalf("series %+v left after the worker stopped", snap)
	}
}
