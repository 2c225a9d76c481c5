package probes

import (
	"testing"

	"github.com/peapod/peapod/runtime/spec"
)

// TestResumeKeepsReadiness: an adopted instance seeded with its last
// published results is started and ready at once, before any probe ran;
// the worker that meets the instance keeps the seed instead of publishing
// the initial Failure, and only failureThreshold failures flip it. An
// instance without a seed starts from the initial values as usual.
func TestResumeKeepsReadiness(t *testing.T) {
	c := spec.Container{Name: "c", ReadinessProbe: probeSpec(1, 0, 1, 2), StartupProbe: probeSpec(1, 0, 1, 1)}
	h := newHarness(t, testPod(c), func(cfg *Config) { cfg.Adopted = true })
	wr, ws := h.worker(&c, Readiness, newScripted(ok, ok, fail, fail)), h.worker(&c, Startup, newScripted(fail))
	h.status.run("c", "c/0", t0)
	st := ContainerStatus{ID: "c/0", State: StateRunning, StartedAt: t0}

	h.m.Resume(Startup, "c", "c/0", Success)
	h.m.Resume(Readiness, "c", "c/0", Success)
	if started, ready := h.m.ContainerStatus("c", st); !started || !ready {
		t.Fatalf("seeded instance: started %v, ready %v; want both before any probe", started, ready)
	}
	h.probe(ws) // startup is done: it does not probe (its handler would fail)
	h.probe(wr) // ok
	h.probe(wr) // fail 1 of 2
	if got := h.result(Readiness, "c/0"); got != Success {
		t.Fatalf("readiness after one failure of two = %v, want the seeded Success kept", got)
	}
	if got := h.result(Startup, "c/0"); got != Success {
		t.Fatalf("startup = %v, want the seeded Success kept", got)
	}
	h.probe(wr) // fail 2 of 2
	if got := h.result(Readiness, "c/0"); got != Failure {
		t.Fatalf("readiness after failureThreshold failures = %v, want Failure", got)
	}
	// The next instance has no seed: initial values.
	h.status.run("c", "c/1", t0)
	h.probe(wr)
	if _, ready := h.m.ContainerStatus("c", ContainerStatus{ID: "c/1", State: StateRunning, StartedAt: t0}); ready {
		t.Errorf("a new instance without a seed is ready before its startup probe passed")
	}
	for _, u := range h.stopAndUpdates() {
		if u.Type == Readiness && u.ContainerID == "c/0" && u.Result == Failure {
			return
		}
	}
	t.Errorf("the readiness Failure of the adopted instance was not published")
}
