package probes

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Clock is the time source of the workers and the backoff, so the logic
// tier can drive them with a fake.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// Since returns the time elapsed since t.
	Since(t time.Time) time.Duration
	// NewTicker returns a ticker firing every d.
	NewTicker(d time.Duration) Ticker
	// After fires once after d.
	After(d time.Duration) <-chan time.Time
}

// Ticker is the part of time.Ticker the workers use.
type Ticker interface {
	// C delivers the ticks; like time.Ticker it holds at most one.
	C() <-chan time.Time
	// Reset restarts the period from now.
	Reset(d time.Duration)
	// Stop stops the ticks.
	Stop()
}

// RealClock is the wall clock.
type RealClock struct{}

var _ Clock = RealClock{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// Since returns time.Since(t).
func (RealClock) Since(t time.Time) time.Duration { return time.Since(t) }

// NewTicker returns a time.Ticker.
func (RealClock) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

// After returns time.After(d).
func (RealClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// realTicker adapts *time.Ticker to Ticker.
type realTicker struct {
	// t is the wrapped ticker.
	t *time.Ticker
}

func (r realTicker) C() <-chan time.Time   { return r.t.C }
func (r realTicker) Reset(d time.Duration) { r.t.Reset(d) }
func (r realTicker) Stop()                 { r.t.Stop() }

// FakeClock is a manual clock: time moves only on Step, which fires the
// tickers and timers that came due, each at most once per Step as a real
// ticker drops ticks nobody read.
type FakeClock struct {
	// mu guards everything below.
	mu sync.Mutex
	// now is the fake current time.
	now time.Time
	// tickers are the live tickers.
	tickers []*fakeTicker
	// timers are the pending After channels with their due times.
	timers []fakeTimer
	// changed is closed (and replaced) whenever a timer or ticker is
	// added or removed: Await waits on it instead of polling.
	changed chan struct{}
}

var _ Clock = (*FakeClock)(nil)

// fakeTimer is one pending After.
type fakeTimer struct {
	// due is when it fires.
	due time.Time
	// ch receives the firing time.
	ch chan time.Time
}

// NewFakeClock returns a fake clock standing at now.
func NewFakeClock(now time.Time) *FakeClock {
	return &FakeClock{now: now, changed: make(chan struct{})}
}

// notifyLocked wakes every Await: the set of timers or tickers changed.
func (f *FakeClock) notifyLocked() {
	if f.changed != nil {
		close(f.changed)
	}
	f.changed = make(chan struct{})
}

// Now returns the fake time.
func (f *FakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Since returns the fake time elapsed since t.
func (f *FakeClock) Since(t time.Time) time.Duration { return f.Now().Sub(t) }

// NewTicker returns a ticker that fires on Step.
func (f *FakeClock) NewTicker(d time.Duration) Ticker {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTicker{clock: f, period: d, next: f.now.Add(d), ch: make(chan time.Time, 1)}
	f.tickers = append(f.tickers, t)
	f.notifyLocked()
	return t
}

// After returns a channel that receives once Step reaches now+d.
func (f *FakeClock) After(d time.Duration) <-chan time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- f.now
		return ch
	}
	f.timers = append(f.timers, fakeTimer{due: f.now.Add(d), ch: ch})
	f.notifyLocked()
	return ch
}

// Await blocks until ready, given the number of pending After channels
// and live tickers, returns true, or ctx ends. A test uses it to wait
// until a worker has armed its next tick before it Steps: a Step taken
// before the After or NewTicker call would be missed by that worker, and
// no amount of waiting in real time makes that impossible.
func (f *FakeClock) Await(ctx context.Context, ready func(timers, tickers int) bool) error {
	for {
		f.mu.Lock()
		if f.changed == nil {
			f.changed = make(chan struct{})
		}
		timers, tickers, changed := len(f.timers), len(f.tickers), f.changed
		f.mu.Unlock()
		if ready(timers, tickers) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("fake clock with %d timers and %d tickers: %w", timers, tickers, ctx.Err())
		}
	}
}

// Step advances the time by d and fires what came due.
func (f *FakeClock) Step(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	for _, t := range f.tickers {
		if t.next.After(f.now) {
			continue
		}
		select {
		case t.ch <- f.now:
		default:
		}
		for !t.next.After(f.now) {
			t.next = t.next.Add(t.period)
		}
	}
	kept := f.timers[:0]
	for _, tm := range f.timers {
		if tm.due.After(f.now) {
			kept = append(kept, tm)
			continue
		}
		tm.ch <- f.now
	}
	if len(kept) != len(f.timers) {
		f.notifyLocked()
	}
	f.timers = kept
}

// fakeTicker is a FakeClock ticker.
type fakeTicker struct {
	// clock owns the ticker.
	clock *FakeClock
	// period and next schedule the ticks; guarded by clock.mu.
	period time.Duration
	next   time.Time
	// ch holds at most one pending tick.
	ch chan time.Time
}

func (t *fakeTicker) C() <-chan time.Time { return t.ch }

func (t *fakeTicker) Reset(d time.Duration) {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	t.period, t.next = d, t.clock.now.Add(d)
}

func (t *fakeTicker) Stop() {
	f := t.clock
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, x := range f.tickers {
		if x == t {
			f.tickers = append(f.tickers[:i], f.tickers[i+1:]...)
			f.notifyLocked()
			return
		}
	}
}
