package probes

import (
	"fmt"
	"testing"
	"time"

	"github.com/peapod/peapod/runtime/spec"
)

// The §10 checklist items about the worker state machine, driven through
// doProbe with a fake clock, fake status and scripted handlers.

func TestChecklist_01(t *testing.T) {
	p := &spec.Probe{HTTPGet: &spec.HTTPGet{Port: "80"}}
	DefaultProbe(p)
	want := spec.Probe{HTTPGet: &spec.HTTPGet{Port: "80", Path: "/", Scheme: "HTTP"},
		TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3}
	if fmt.Sprint(*p.HTTPGet) != fmt.Sprint(*want.HTTPGet) || p.TimeoutSeconds != 1 || p.PeriodSeconds != 10 ||
		p.SuccessThreshold != 1 || p.FailureThreshold != 3 || p.InitialDelaySeconds != 0 {
		t.Fatalf("defaulted probe = %+v %+v, want %+v %+v", *p, *p.HTTPGet, want, *want.HTTPGet)
	}
	// The pod-level defaults are the manifest's: TestChecklist_01PodDefaults.
	// A worker defaults a hand-written zero probe instead of panicking on a zero ticker period.
	c := spec.Container{Name: "c", LivenessProbe: &spec.Probe{Exec: []string{"true"}}}
	h := newHarness(t, testPod(c))
	w := h.worker(&c, Liveness, nil)
	if w.probe.PeriodSeconds != 10 || w.probe.FailureThreshold != 3 || c.LivenessProbe.PeriodSeconds != 0 {
		t.Fatalf("worker probe %+v, spec probe %+v: want defaults on a copy", *w.probe, *c.LivenessProbe)
	}
}

// TestChecklist_02 is in checklist_validate_test.go: it runs the validation
// every manifest goes through (package manifest).

func TestChecklist_03(t *testing.T) {
	c := spec.Container{Name: "c"}
	h := newHarness(t, testPod(c))
	if started, ready := h.m.ContainerStatus("c", ContainerStatus{ID: "c1", State: StateWaiting}); started || ready {
		t.Fatalf("waiting container: started=%v ready=%v, want false/false", started, ready)
	}
	if started, ready := h.m.ContainerStatus("c", ContainerStatus{ID: "c1", State: StateRunning, StartedAt: t0}); !started || !ready {
		t.Fatalf("running container without probes: started=%v ready=%v, want true/true", started, ready)
	}
	all := []ContainerReadiness{{Name: "a", Known: true, Ready: true}, {Name: "b", Known: true, Ready: true}}
	cr, r := PodConditions(PodRunning, all, []ReadinessGate{{ConditionType: "g", Status: ConditionTrue}})
	if cr.Status != ConditionTrue || r.Status != ConditionTrue {
		t.Fatalf("all ready, gate true: %+v %+v", cr, r)
	}
	_, r = PodConditions(PodRunning, all, []ReadinessGate{{ConditionType: "g", Status: ConditionFalse}, {ConditionType: "h"}})
	want := `the status of pod readiness gate "g" is not "True", but False, corresponding condition of pod readiness gate "h" does not exist.`
	if r.Status != ConditionFalse || r.Reason != ReasonReadinessGatesNotReady || r.Message != want {
		t.Fatalf("gate false: %+v, want message %q", r, want)
	}
}

func TestChecklist_04(t *testing.T) {
	c := spec.Container{Name: "c", ReadinessProbe: probeSpec(1, 10, 1, 3)}
	h := newHarness(t, testPod(c))
	w := h.worker(&c, Readiness, newScripted(ok))
	h.probe(w) // before the container exists
	if _, ready := h.m.ContainerStatus("c", ContainerStatus{}); ready {
		t.Fatal("ready before the container exists")
	}
	h.status.run("c", "c1", t0)
	for s := 0; s < 10; s++ {
		h.probe(w)
		if r := h.result(Readiness, "c1"); r != Failure {
			t.Fatalf("at %ds after start readiness = %v, want Failure (initial delay 10s)", s, r)
		}
		if _, ready := h.m.ContainerStatus("c", ContainerStatus{ID: "c1", State: StateRunning, StartedAt: t0}); ready {
			t.Fatalf("ready at %ds", s)
		}
		h.clock.Step(time.Second)
	}
	h.probe(w)
	if _, ready := h.m.ContainerStatus("c", ContainerStatus{ID: "c1", State: StateRunning, StartedAt: t0}); !ready {
		t.Fatalf("not ready at 10s: readiness %v", h.result(Readiness, "c1"))
	}
}

func TestChecklist_05(t *testing.T) {
	c := spec.Container{Name: "c", ReadinessProbe: probeSpec(1, 0, 3, 3)}
	h := newHarness(t, testPod(c))
	w := h.worker(&c, Readiness, newScripted(ok, ok, ok, fail, ok, ok, ok))
	h.status.run("c", "c1", t0)
	want := []Result{Failure, Failure, Failure, Failure, Failure, Success}
	for i, r := range want {
		h.probe(w)
		if got := h.result(Readiness, "c1"); got != r {
			t.Fatalf("after probe %d readiness = %v, want %v", i+1, got, r)
		}
		h.clock.Step(time.Second)
	}
}

func TestChecklist_06(t *testing.T) {
	c := spec.Container{Name: "c", ReadinessProbe: probeSpec(1, 0, 1, 3)}
	h := newHarness(t, testPod(c))
	w := h.worker(&c, Readiness, newScripted(fail, ok))
	h.status.run("c", "c1", t0)
	running := ContainerStatus{ID: "c1", State: StateRunning, StartedAt: t0}
	for i, want := range []bool{true, true, true, false} {
		h.probe(w)
		if _, ready := h.m.ContainerStatus("c", running); ready != want {
			t.Fatalf("after probe %d ready = %v, want %v", i+1, ready, want)
		}
		h.clock.Step(time.Second)
	}
	cr, r := PodConditions(PodRunning, []ContainerReadiness{{Name: "c", Known: true}}, nil)
	if cr.Reason != ReasonContainersNotReady || cr.Message != "containers with unready status: [c]" || r.Message != cr.Message {
		t.Fatalf("conditions %+v %+v", cr, r)
	}
	for _, u := range h.stopAndUpdates() {
		if u.Type != Readiness {
			t.Fatalf("readiness published %+v: readiness never kills", u)
		}
	}
}

func TestChecklist_07(t *testing.T) {
	c := spec.Container{Name: "c", LivenessProbe: probeSpec(1, 0, 1, 3)}
	h := newHarness(t, testPod(c))
	handler := newScripted(outcome{out: OutcomeFailure, msg: "cat: /tmp/healthy: No such file or directory"})
	w := h.worker(&c, Liveness, handler)
	h.status.run("c", "c1", t0)
	for i := 0; i < 3; i++ {
		if r := h.result(Liveness, "c1"); i > 0 && r != Success {
			t.Fatalf("liveness %v after %d failures, want Success below threshold", r, i)
		}
		h.probe(w)
		h.clock.Step(time.Second)
	}
	if r := h.result(Liveness, "c1"); r != Failure {
		t.Fatalf("liveness after 3 failures = %v, want Failure", r)
	}
	msgs := h.eventsWith(ReasonUnhealthy)
	if len(msgs) != 3 || msgs[0] != "Liveness probe failed: cat: /tmp/healthy: No such file or directory" {
		t.Fatalf("Unhealthy events %q", msgs)
	}
	if e := KillEvent(Liveness, "c", ShouldRestart(spec.RestartAlways, 137, true)); e.Type != EventNormal ||
		e.Message != "Container c failed liveness probe, will be restarted" {
		t.Fatalf("kill event %+v", e)
	}
	// The first kill restarts at once: no backoff entry yet.
	b := NewBackoff(0, 0, h.clock)
	key := BackoffKey(h.pod, "c", "h1")
	if at := b.RestartAt(key, h.clock.Now()); !at.Equal(h.clock.Now()) {
		t.Fatalf("first restart at %v, want now %v", at, h.clock.Now())
	}
	h.probe(w) // on hold: no probe of the killed instance
	if handler.count() != 3 {
		t.Fatalf("handler ran %d times, want 3 (on hold after the kill)", handler.count())
	}
}

func TestChecklist_08(t *testing.T) {
	pod := testPod()
	cases := []struct {
		name     string
		probe    *spec.Probe
		deletion *int64
		preStop  time.Duration
		want     int64
	}{
		{"pod grace", &spec.Probe{}, nil, 0, 30},
		{"probe grace larger", &spec.Probe{TerminationGracePeriodSeconds: ptr[int64](60)}, nil, 0, 60},
		{"probe grace smaller", &spec.Probe{TerminationGracePeriodSeconds: ptr[int64](5)}, nil, 0, 5},
		{"at least 2s", &spec.Probe{TerminationGracePeriodSeconds: ptr[int64](1)}, nil, 0, 2},
		{"preStop subtracted", &spec.Probe{}, nil, 5700 * time.Millisecond, 25},
		{"preStop leaves at least 2s", &spec.Probe{}, nil, 40 * time.Second, 2},
		{"deletion wins", &spec.Probe{TerminationGracePeriodSeconds: ptr[int64](60)}, ptr[int64](7), 0, 7},
		{"not a probe kill", nil, nil, 0, 30},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := GraceAfterPreStop(KillGracePeriod(pod, tc.probe, tc.deletion), tc.preStop); got != tc.want {
				t.Fatalf("grace = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestChecklist_09(t *testing.T) {
	if ShouldRestart(spec.RestartNever, 137, true) || ShouldRestart(spec.RestartNever, 0, true) {
		t.Fatal("Never restarted a probe-killed container")
	}
	if msg := KillMessage(Liveness, "c", ShouldRestart(spec.RestartNever, 143, true)); msg != "Container c failed liveness probe" {
		t.Fatalf("kill message %q", msg)
	}
	c := spec.Container{Name: "c", LivenessProbe: probeSpec(1, 0, 1, 3), ReadinessProbe: probeSpec(1, 0, 1, 3)}
	for _, policy := range []string{spec.RestartNever, spec.RestartAlways} {
		pod := testPod(c)
		pod.RestartPolicy = policy
		h := newHarness(t, pod)
		w := h.worker(&c, Readiness, newScripted(ok))
		h.status.set("c", ContainerStatus{ID: "c1", State: StateTerminated})
		if keep := h.probe(w); keep != (policy != spec.RestartNever) {
			t.Fatalf("%s: terminated container keepGoing = %v", policy, keep)
		}
		if r := h.result(Readiness, "c1"); r != Failure {
			t.Fatalf("%s: terminated container readiness %v, want Failure", policy, r)
		}
		h.status.setPod(PodStatus{Phase: PodFailed})
		if h.probe(w) {
			t.Fatalf("%s: worker keeps going in a Failed pod", policy)
		}
	}
}

func TestChecklist_10(t *testing.T) {
	cases := []struct {
		exit   int
		killed bool
		want   bool
	}{{0, true, true}, {143, true, true}, {0, false, false}, {1, false, true}}
	for _, tc := range cases {
		if got := ShouldRestart(spec.RestartOnFailure, tc.exit, tc.killed); got != tc.want {
			t.Errorf("OnFailure exit %d killedByProbe %v: restart %v, want %v", tc.exit, tc.killed, got, tc.want)
		}
	}
	if !ShouldRestart(spec.RestartAlways, 0, false) {
		t.Error("Always did not restart a clean exit")
	}
}

func TestChecklist_11(t *testing.T) {
	c := spec.Container{Name: "c", StartupProbe: probeSpec(1, 0, 1, 100),
		LivenessProbe: probeSpec(1, 0, 1, 3), ReadinessProbe: probeSpec(1, 0, 1, 3)}
	h := newHarness(t, testPod(c))
	startup, live, ready := newScripted(fail), newScripted(fail), newScripted(ok)
	ws := []*worker{h.worker(&c, Startup, startup), h.worker(&c, Readiness, ready), h.worker(&c, Liveness, live)}
	h.status.run("c", "c1", t0)
	for i := 0; i < 5; i++ {
		for _, w := range ws {
			h.probe(w)
		}
		h.clock.Step(time.Second)
	}
	if startup.count() != 5 || live.count() != 0 || ready.count() != 0 {
		t.Fatalf("calls startup %d liveness %d readiness %d, want 5/0/0", startup.count(), live.count(), ready.count())
	}
	if started, rdy := h.m.ContainerStatus("c", ContainerStatus{ID: "c1", State: StateRunning, StartedAt: t0}); started || rdy {
		t.Fatalf("started=%v ready=%v during startup", started, rdy)
	}
}

func TestChecklist_12(t *testing.T) {
	c := spec.Container{Name: "c", StartupProbe: probeSpec(10, 0, 1, 3), ReadinessProbe: probeSpec(10, 0, 1, 3)}
	h := newHarness(t, testPod(c))
	startup, ready := newScripted(ok), newScripted(ok)
	h.status.run("c", "c1", t0)
	h.m.handlerFor = func(_ string, typ ProbeType) Handler {
		return map[ProbeType]Handler{Startup: startup, Readiness: ready}[typ]
	}
	h.m.AddContainer(&c)
	h.waitProbe(Startup)
	// The clock does not move: readiness must run through the manual trigger.
	select {
	case <-ready.called:
	case <-time.After(failSafe):
		t.Fatalf("readiness did not run after startup succeeded without a tick (waited %v)", failSafe)
	}
	if started, _ := h.m.ContainerStatus("c", ContainerStatus{ID: "c1", State: StateRunning, StartedAt: t0}); !started {
		t.Fatal("not started after startup success")
	}
	for i := 0; i < 3; i++ {
		h.clock.Step(10 * time.Second)
		h.waitProbe(Startup)
	}
	if startup.count() != 1 {
		t.Fatalf("startup probed %d times, want 1 (on hold after success)", startup.count())
	}
}
