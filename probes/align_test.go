package probes

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/peapod/peapod/runtime/spec"
)

func TestAlignedWait(t *testing.T) {
	sec := time.Unix(1_700_000_000, 0) // a multiple of 2 s since the epoch
	for _, tc := range []struct {
		name   string
		now    time.Time
		period time.Duration
		fresh  bool
		want   time.Duration
	}{
		{"on the grid, after a tick", sec, 2 * time.Second, false, 2 * time.Second},
		{"just after a tick", sec.Add(3 * time.Millisecond), 2 * time.Second, false, 2*time.Second - 3*time.Millisecond},
		{"late in the period", sec.Add(1900 * time.Millisecond), 2 * time.Second, false, 100 * time.Millisecond},
		{"fresh, a full period left", sec.Add(time.Millisecond), 2 * time.Second, true, 2*time.Second - time.Millisecond},
		{"fresh, exactly half left", sec.Add(time.Second), 2 * time.Second, true, time.Second},
		{"fresh, less than half left", sec.Add(1900 * time.Millisecond), 2 * time.Second, true, 2100 * time.Millisecond},
		{"10 s period", sec.Add(4 * time.Second), 10 * time.Second, false, 6 * time.Second},
	} {
		got := alignedWait(tc.now, tc.period, tc.fresh)
		if got != tc.want {
			t.Errorf("%s: alignedWait = %v, want %v", tc.name, got, tc.want)
		}
		if due := tc.now.Add(got); due.UnixNano()%int64(tc.period) != 0 {
			t.Errorf("%s: due at %v, not on the %v grid", tc.name, due, tc.period)
		}
	}
}

// timedHandler records the fake time of every probe.
type timedHandler struct {
	clock *FakeClock
	mu    sync.Mutex
	at    []time.Time
}

func (h *timedHandler) Probe(context.Context, string) (Outcome, string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.at = append(h.at, h.clock.Now())
	return OutcomeSuccess, "", nil
}

func (h *timedHandler) times() []time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Time(nil), h.at...)
}

// TestAlignedNetworkProbes runs a TCP liveness and an exec readiness
// worker, both every 2 s, with AlignNetworkProbes: the TCP probe moves to
// the 2 s grid of the epoch, the exec probe keeps its own ticker from the
// worker's start (t0 is an odd second).
func TestAlignedNetworkProbes(t *testing.T) {
	live := probeSpec(2, 0, 1, 3)
	live.Exec, live.TCPSocket = nil, &spec.TCPSocket{Port: "80"}
	ready := probeSpec(2, 0, 1, 3)
	c := spec.Container{Name: "c", LivenessProbe: live, ReadinessProbe: ready}
	h := newHarness(t, testPod(c), func(cfg *Config) { cfg.AlignNetworkProbes = true })
	handlers := map[ProbeType]*timedHandler{Liveness: {clock: h.clock}, Readiness: {clock: h.clock}}
	h.m.handlerFor = func(_ string, typ ProbeType) Handler { return handlers[typ] }
	h.status.run("c", "c1", t0)
	h.m.AddContainer(&c)
	h.waitProbe(Liveness)
	h.waitProbe(Readiness)
	// parked waits until the aligned worker has armed its next tick (an
	// After) and the other its ticker: a Step taken before would be lost
	// on the aligned worker, which computes its wait from the clock's now.
	parked := func() {
		t.Helper()
		h.awaitClock("workers not parked", func(timers, tickers int) bool { return timers == 1 && tickers == 1 })
	}
	parked()
	// t0+1 s is on the grid and half a period after the first probe.
	h.clock.Step(time.Second)
	h.waitProbe(Liveness)
	parked()
	h.clock.Step(time.Second)
	h.waitProbe(Readiness)
	h.clock.Step(time.Second)
	h.waitProbe(Liveness)
	want := map[ProbeType][]time.Time{
		Liveness:  {t0, t0.Add(time.Second), t0.Add(3 * time.Second)},
		Readiness: {t0, t0.Add(2 * time.Second)},
	}
	for typ, w := range want {
		got := handlers[typ].times()
		if len(got) != len(w) {
			t.Fatalf("%v probed at %v, want %v", typ, got, w)
		}
		for i := range w {
			if !got[i].Equal(w[i]) {
				t.Errorf("%v probe %d at %v, want %v", typ, i, got[i], w[i])
			}
		}
	}
}
