package supervisor

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/testutil"
)

// TestSetTimerSlack sets the slack of a process with several busy threads
// and reads it back from every thread, including one created afterwards.
func TestSetTimerSlack(t *testing.T) {
	// Setting another thread's slack takes CAP_SYS_NICE.
	testutil.RequireRoot(t)
	threadSlack := func(tid string) uint64 {
		b, err := os.ReadFile("/proc/" + tid + "/timerslack_ns")
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	orig := threadSlack(strconv.Itoa(unix.Gettid()))
	// Locked goroutines pin four more threads for the duration.
	release := make(chan struct{})
	var ready, done sync.WaitGroup
	for range 4 {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			ready.Done()
			<-release
		}()
	}
	ready.Wait()
	t.Cleanup(func() {
		if err := SetTimerSlack(orig); err != nil {
			t.Errorf("restoring the slack: %v", err)
		}
	})
	const want = 7_654_321
	if err := SetTimerSlack(want); err != nil {
		t.Fatal(err)
	}
	tids, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	if len(tids) < 5 {
		t.Fatalf("only %d threads", len(tids))
	}
	for _, tid := range tids {
		if got := threadSlack(tid.Name()); got != want {
			t.Errorf("thread %s: slack %d, want %d", tid.Name(), got, want)
		}
	}
	// Whichever thread runs a goroutine now, old or new, has it too: new
	// threads inherit the slack of their creator.
	got := make(chan uint64)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		got <- threadSlack(strconv.Itoa(unix.Gettid()))
	}()
	if s := <-got; s != want {
		t.Errorf("thread created after SetTimerSlack: slack %d, want %d", s, want)
	}
	close(release)
	done.Wait()
}
