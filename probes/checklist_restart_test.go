package probes

import (
	"testing"
	"time"

	"github.com/peapod/peapod/runtime/spec"
)

// crashLoop runs a container that exits as soon as it starts through b,
// restarting at RestartAt each time, and returns the delays after each exit.
func crashLoop(t *testing.T, clock *FakeClock, b *Backoff, key string, exits int, check func(delay time.Duration)) []time.Duration {
	t.Helper()
	var delays []time.Duration
	for i := 0; i < exits; i++ {
		finished := clock.Now()
		at := b.RestartAt(key, finished)
		delay := at.Sub(finished)
		delays = append(delays, delay)
		if delay > 0 {
			clock.Step(delay - time.Millisecond)
			if !b.InBackOff(key, finished) {
				t.Fatalf("exit %d: not in backoff 1ms before the restart", i+1)
			}
			if check != nil {
				check(b.Delay(key, finished))
			}
			clock.Step(time.Millisecond)
		}
		if b.InBackOff(key, finished) {
			t.Fatalf("exit %d: still in backoff at RestartAt", i+1)
		}
		b.Started(key, finished)
	}
	return delays
}

func TestChecklist_28(t *testing.T) {
	pod := testPod()
	clock := NewFakeClock(t0)
	b := NewBackoff(0, 0, clock)
	var msgs []string
	delays := crashLoop(t, clock, b, BackoffKey(pod, "c", "h"), 9, func(d time.Duration) {
		msgs = append(msgs, CrashLoopBackOffMessage(d, "c", pod))
	})
	want := []time.Duration{0, 10, 20, 40, 80, 160, 300, 300, 300}
	for i := range want {
		if delays[i] != want[i]*time.Second {
			t.Fatalf("delays %v, want %v s", delays, want)
		}
	}
	if msgs[2] != "back-off 40s restarting failed container=c pod=p_ns(uid-1)" || msgs[5] != "back-off 5m0s restarting failed container=c pod=p_ns(uid-1)" {
		t.Fatalf("waiting messages %q", msgs)
	}
	if e := BackOffEvent("c", pod); e.Type != EventWarning || e.Reason != ReasonBackOff ||
		e.Message != "Back-off restarting failed container c in pod p_ns(uid-1)" {
		t.Fatalf("BackOff event %+v", e)
	}
	// Configurable, for fast tests: 1 s initial.
	fast := crashLoop(t, clock, NewBackoff(time.Second, 0, clock), "k2", 5, nil)
	for i, w := range []time.Duration{0, 1, 2, 4, 8} {
		if fast[i] != w*time.Second {
			t.Fatalf("1s-initial delays %v", fast)
		}
	}
}

func TestChecklist_29(t *testing.T) {
	clock := NewFakeClock(t0)
	b := NewBackoff(0, 0, clock)
	crashLoop(t, clock, b, "k", 4, nil) // restarted after 0, 10, 20, 40 s: the next delay is 80 s
	for _, tc := range []struct {
		ran  time.Duration
		want time.Duration
	}{{600 * time.Second, 80 * time.Second}, {601 * time.Second, 0}} {
		c := NewFakeClock(clock.Now())
		bb := NewBackoff(0, 0, c)
		crashLoop(t, c, bb, "k", 4, nil)
		c.Step(tc.ran)
		if d := bb.Delay("k", c.Now()); d != tc.want {
			t.Fatalf("after running %v: backoff %v, want %v", tc.ran, d, tc.want)
		}
	}
	// A changed spec (another hash) is another key: no backoff.
	pod := testPod()
	if d := b.Delay(BackoffKey(pod, "c", "new-hash"), clock.Now()); d != 0 {
		t.Fatalf("new spec backoff %v, want 0", d)
	}
	if d := b.Delay("k", clock.Now()); d != 80*time.Second {
		t.Fatalf("old key backoff %v, want 80s", d)
	}
	b.Forget("k")
	if d := b.Delay("k", clock.Now()); d != 0 {
		t.Fatalf("forgotten key backoff %v", d)
	}
}

func TestChecklist_30(t *testing.T) {
	c := spec.Container{Name: "c", StartupProbe: probeSpec(1, 0, 1, 3),
		ReadinessProbe: probeSpec(1, 0, 1, 1), LivenessProbe: probeSpec(1, 0, 1, 1)}
	h := newHarness(t, testPod(c))
	handlers := map[ProbeType]*scripted{Startup: newScripted(fail), Readiness: newScripted(fail), Liveness: newScripted(fail)}
	h.status.run("c", "c1", t0)
	h.status.setPod(PodStatus{Phase: PodRunning, Terminating: true})
	for _, typ := range []ProbeType{Startup, Liveness} {
		w := h.worker(&c, typ, handlers[typ])
		if h.probe(w) {
			t.Fatalf("%v worker keeps going on a terminating pod", typ)
		}
		if handlers[typ].count() != 0 || h.result(typ, "c1") != Success {
			t.Fatalf("%v probed %d times, result %v: want no probe and Success", typ, handlers[typ].count(), h.result(typ, "c1"))
		}
	}
	h.m.mu.Lock()
	delete(h.m.workers, workerKey{"c", Startup}) // as workerDone would: startup over, container counts as started
	h.m.mu.Unlock()
	wr := h.worker(&c, Readiness, handlers[Readiness])
	if !h.probe(wr) || handlers[Readiness].count() != 1 || h.result(Readiness, "c1") != Failure {
		t.Fatal("readiness stopped probing on a terminating pod")
	}

	// Through the manager: StopLivenessAndStartup leaves readiness running.
	h2 := newHarness(t, testPod(c))
	h2.m.handlerFor = func(_ string, typ ProbeType) Handler { return newScripted(ok) }
	h2.status.run("c", "c1", t0)
	h2.m.AddContainer(&c)
	h2.waitProbe(Readiness)
	h2.m.StopLivenessAndStartup()
	h2.waitExit(Startup, Liveness)
	h2.clock.Step(time.Second)
	h2.waitProbe(Readiness)
	if h2.m.worker("c", Readiness) == nil {
		t.Fatal("readiness worker stopped")
	}
}

func TestChecklist_31(t *testing.T) {
	c := spec.Container{Name: "c", LivenessProbe: probeSpec(10, 0, 1, 3)}
	// A new pod: first probe at once, no jitter.
	h := newHarness(t, testPod(c), func(cfg *Config) {
		cfg.Rand = func() float64 { t.Error("jitter drawn for a new pod"); return 0 }
	})
	h.m.handlerFor = func(string, ProbeType) Handler { return newScripted(ok) }
	h.status.run("c", "c1", t0)
	h.m.AddContainer(&c)
	h.waitProbe(Liveness)

	// Adopted less than a period ago: the first probe waits rand·period.
	drawn := make(chan struct{}, 1)
	h2 := newHarness(t, testPod(c), func(cfg *Config) {
		cfg.Adopted = true
		cfg.Rand = func() float64 { drawn <- struct{}{}; return 0.5 }
	})
	live := newScripted(ok)
	h2.m.handlerFor = func(string, ProbeType) Handler { return live }
	h2.status.run("c", "c1", t0)
	h2.m.AddContainer(&c)
	<-drawn
	// The worker draws before it calls After: a Step in between would be
	// lost, the jitter then counted from the later time.
	h2.awaitClock("jitter not armed", func(timers, _ int) bool { return timers == 1 })
	h2.clock.Step(5*time.Second - time.Millisecond)
	select {
	case <-live.called:
		t.Fatal("probed before the jitter elapsed")
	default:
	}
	h2.clock.Step(time.Millisecond)
	h2.waitProbe(Liveness)

	// A worker never overlaps its own probes: a probe slower than the period
	// is followed by exactly one more, at once.
	slow := newScripted(ok)
	slow.block = make(chan struct{})
	h3 := newHarness(t, testPod(c))
	h3.m.handlerFor = func(string, ProbeType) Handler { return slow }
	h3.status.run("c", "c1", t0)
	h3.m.AddContainer(&c)
	<-slow.called
	h3.clock.Step(10 * time.Second)
	h3.clock.Step(10 * time.Second)
	h3.clock.Step(10 * time.Second)
	slow.block <- struct{}{}
	h3.waitProbe(Liveness)
	<-slow.called
	slow.block <- struct{}{}
	h3.waitProbe(Liveness)
	slow.mu.Lock()
	calls, maxIn := slow.calls, slow.maxIn
	slow.block = nil
	slow.mu.Unlock()
	if calls != 2 || maxIn != 1 {
		t.Fatalf("calls %d, max concurrent %d: want 2 calls never overlapping", calls, maxIn)
	}
}

func TestChecklist_32(t *testing.T) {
	c := spec.Container{Name: "c", LivenessProbe: probeSpec(1, 0, 1, 1)}
	h := newHarness(t, testPod(c))
	live := newScripted(fail)
	w := h.worker(&c, Liveness, live)
	b := NewBackoff(0, 0, h.clock)
	key := BackoffKey(h.pod, "c", "h")
	// A previous instance exited and was restarted: backoff now 10s.
	b.Started(key, h.clock.Now())
	h.clock.Step(2 * time.Second)
	h.status.run("c", "c1", h.clock.Now())
	h.probe(w)
	if r := h.result(Liveness, "c1"); r != Failure {
		t.Fatalf("liveness %v, want Failure", r)
	}
	// The supervisor kills it; it exits now, within 10s of the last restart.
	finished := h.clock.Now()
	h.status.set("c", ContainerStatus{ID: "c1", State: StateTerminated})
	if !b.InBackOff(key, finished) || CrashLoopBackOffMessage(b.Delay(key, finished), "c", h.pod) != "back-off 10s restarting failed container=c pod=p_ns(uid-1)" {
		t.Fatalf("not in CrashLoopBackOff after the kill: delay %v", b.Delay(key, finished))
	}
	for i := 0; i < 5; i++ {
		h.clock.Step(time.Second)
		h.probe(w)
	}
	if live.count() != 1 {
		t.Fatalf("liveness probed %d times before the new instance", live.count())
	}
	if r := h.result(Liveness, "c1"); r != Failure {
		t.Fatalf("held worker changed the result to %v", r)
	}
	h.clock.Step(5 * time.Second)
	b.Started(key, finished)
	h.status.run("c", "c2", h.clock.Now())
	h.probe(w)
	if live.count() != 2 {
		t.Fatal("liveness did not resume on the new instance")
	}
}
