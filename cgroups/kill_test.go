package cgroups

import (
	"errors"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"
)

// TestKillerEmptyCgroupIsNotFrozen: a cgroup with nothing in it is done at
// once, without the freeze that v1 has to poll for.
func TestKillerEmptyCgroupIsNotFrozen(t *testing.T) {
	var freezes, thaws, lists int
	k := killer{
		dir:    "/fake/empty",
		list:   func() ([]int, error) { lists++; return nil, nil },
		freeze: func() error { freezes++; return nil },
		thaw:   func() error { thaws++; return nil },
	}
	if err := k.run(time.Now().Add(time.Second)); err != nil {
		t.Fatalf("run: %v", err)
	}
	if freezes != 0 || thaws != 0 || lists != 1 {
		t.Fatalf("empty cgroup: %d freezes, %d thaws, %d lists; want 0, 0, 1", freezes, thaws, lists)
	}
}

// TestKillerFreezesKillsAndThaws: a cgroup with a process in it is frozen,
// the process SIGKILLed, the cgroup thawed (a frozen task dies only once
// thawed), and run returns once the process has left.
func TestKillerFreezesKillsAndThaws(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sleep: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var gone atomic.Bool
	waitErr := make(chan error, 1)
	go func() { err := cmd.Wait(); gone.Store(true); waitErr <- err }()
	var frozen atomic.Bool
	var freezes, thaws int
	k := killer{
		dir: "/fake/one",
		list: func() ([]int, error) {
			if gone.Load() {
				return nil, nil
			}
			return []int{cmd.Process.Pid}, nil
		},
		freeze: func() error { freezes++; frozen.Store(true); return nil },
		thaw:   func() error { thaws++; frozen.Store(false); return nil },
	}
	if err := k.run(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatalf("run: %v", err)
	}
	var ee *exec.ExitError
	if err := <-waitErr; !errors.As(err, &ee) || ee.String() != "signal: killed" {
		t.Fatalf("sleep ended with %v, want signal: killed", err)
	}
	if freezes != 1 || thaws != 1 || frozen.Load() {
		t.Fatalf("%d freezes, %d thaws, frozen at the end %v; want 1, 1, false", freezes, thaws, frozen.Load())
	}
}

// TestKillerListErrorStopsBeforeFreezing: a cgroup that cannot be read is
// an error, and nothing was frozen (so nothing is left frozen).
func TestKillerListErrorStopsBeforeFreezing(t *testing.T) {
	boom := errors.New("boom")
	var freezes int
	k := killer{
		dir:    "/fake/broken",
		list:   func() ([]int, error) { return nil, boom },
		freeze: func() error { freezes++; return nil },
		thaw:   func() error { return nil },
	}
	if err := k.run(time.Now().Add(time.Second)); !errors.Is(err, boom) {
		t.Fatalf("run: %v, want boom", err)
	}
	if freezes != 0 {
		t.Fatalf("%d freezes, want 0", freezes)
	}
}
