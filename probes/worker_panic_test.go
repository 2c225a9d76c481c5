package probes

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/peapod/peapod/runtime/spec"
)

// panicking is a handler with a bug.
type panicking struct{}

func (panicking) Probe(context.Context, string) (Outcome, string, error) {
	panic("handler bug")
}

// A panicking handler does not end probing, and says so in the log and the
// panic counter.
func TestWorkerLogsAndCountsRecoveredPanic(t *testing.T) {
	var (
		mu   sync.Mutex
		logs []string
	)
	c := spec.Container{Name: "c", LivenessProbe: probeSpec(1, 0, 1, 3)}
	h := newHarness(t, testPod(c), func(cfg *Config) {
		cfg.Logf = func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			logs = append(logs, fmt.Sprintf(format, args...))
		}
	})
	w := h.worker(&c, Liveness, panicking{})
	h.status.run("c", "c1", t0)
	for i := 1; i <= 2; i++ {
		if !h.probe(w) {
			t.Fatalf("probe %d: worker stopped after a panic, want it to keep going", i)
		}
	}
	if n := h.m.metrics.Panics(); n != 2 {
		t.Errorf("Panics() = %d, want 2", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(logs) != 2 {
		t.Fatalf("logged %d lines, want one per panic: %q", len(logs), logs)
	}
	for _, want := range []string{"Liveness", `"c"`, "handler bug", "worker_panic_test.go"} {
		if !strings.Contains(logs[0], want) {
			t.Errorf("log %q does not name %s", logs[0], want)
		}
	}
}
