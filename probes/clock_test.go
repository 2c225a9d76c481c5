package probes

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestFakeClockAwait: Await returns once another goroutine arms a timer or
// a ticker as asked, sees removals (a fired timer, a stopped ticker), and
// ends with ctx when the state never comes.
func TestFakeClockAwait(t *testing.T) {
	c := NewFakeClock(t0)
	ctx, cancel := context.WithTimeout(context.Background(), failSafe)
	defer cancel()
	armed := make(chan (<-chan time.Time))
	go func() { armed <- c.After(time.Second) }()
	if err := c.Await(ctx, func(timers, _ int) bool { return timers == 1 }); err != nil {
		t.Fatalf("Await(a timer): %v", err)
	}
	tk := c.NewTicker(time.Second)
	if err := c.Await(ctx, func(timers, tickers int) bool { return timers == 1 && tickers == 1 }); err != nil {
		t.Fatalf("Await(a timer and a ticker): %v", err)
	}
	ch := <-armed
	go func() { c.Step(time.Second); tk.Stop() }()
	if err := c.Await(ctx, func(timers, tickers int) bool { return timers == 0 && tickers == 0 }); err != nil {
		t.Fatalf("Await(none): %v", err)
	}
	if at := <-ch; !at.Equal(t0.Add(time.Second)) {
		t.Fatalf("timer fired at %v, want %v", at, t0.Add(time.Second))
	}
	short, stop := context.WithCancel(context.Background())
	stop()
	if err := c.Await(short, func(timers, _ int) bool { return timers == 5 }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Await of a state that never comes: %v, want context.Canceled", err)
	}
}
