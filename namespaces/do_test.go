package namespaces

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/testutil"
	"github.com/peapod/peapod/runtime/spec"
)

// threadNetInode is the inode of the calling thread's network namespace.
func threadNetInode() (uint64, error) {
	var st unix.Stat_t
	err := unix.Stat("/proc/thread-self/ns/net", &st)
	return st.Ino, err
}

// assertAllThreadsIn fails unless every thread of this process is in the
// network namespace with inode want. A discarded thread exits shortly after
// its goroutine, and the kernel offers no event for that: poll with a deadline.
func assertAllThreadsIn(t *testing.T, want uint64) {
	t.Helper()
	var strays []string
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if strays = threadsNotIn(t, want); len(strays) == 0 {
			return
		}
	}
	t.Errorf("threads outside the net namespace %d: %v", want, strays)
}

// threadsNotIn lists the threads whose network namespace is not want.
func threadsNotIn(t *testing.T, want uint64) []string {
	t.Helper()
	tasks, err := filepath.Glob("/proc/self/task/*/ns/net")
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no threads found: %v", err)
	}
	var strays []string
	for _, p := range tasks {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); errors.Is(err, unix.ENOENT) {
			continue // the thread exited meanwhile
		} else if err != nil {
			t.Fatal(err)
		}
		if st.Ino != want {
			strays = append(strays, fmt.Sprintf("%s=%d", p, st.Ino))
		}
	}
	return strays
}

func TestDoEntersAndReturns(t *testing.T) {
	testutil.RequireRoot(t)
	sb, err := CreateSandbox(testSandboxOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	pin := sb.Paths[spec.NSNet]
	want, err := PinInode(pin)
	if err != nil {
		t.Fatal(err)
	}
	host := hostNSInode(t, "net")

	// Many rounds, so a thread that was not switched back would be reused.
	for range 20 {
		var inside uint64
		err := Do(pin, unix.CLONE_NEWNET, func() (err error) {
			inside, err = threadNetInode()
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if inside != want {
			t.Fatalf("inside Do: net namespace %d, want the pin's %d", inside, want)
		}
	}
	if got, err := threadNetInode(); err != nil || got != host {
		t.Errorf("caller's thread in net namespace %d (%v), want the host's %d", got, err, host)
	}
	assertAllThreadsIn(t, host)
}

func TestDoReturnsFnError(t *testing.T) {
	testutil.RequireRoot(t)
	errFn := errors.New("fn failed")
	err := Do("/proc/self/ns/uts", unix.CLONE_NEWUTS, func() error { return errFn })
	if !errors.Is(err, errFn) {
		t.Fatalf("Do() = %v, want %v", err, errFn)
	}
}

func TestDoRefusesUnjoinable(t *testing.T) {
	for _, nstype := range []int{unix.CLONE_NEWNS, unix.CLONE_NEWUSER, unix.CLONE_NEWTIME, 0} {
		called := false
		err := Do("/proc/self/ns/mnt", nstype, func() error { called = true; return nil })
		if !errors.Is(err, ErrUnjoinable) || called {
			t.Errorf("Do(type %#x) = %v, called=%v; want ErrUnjoinable and no call", nstype, err, called)
		}
	}
}

func TestDoWrongTypeFailsBeforeFn(t *testing.T) {
	testutil.RequireRoot(t)
	called := false
	// A net namespace file given as a UTS namespace: setns refuses it.
	err := Do("/proc/self/ns/net", unix.CLONE_NEWUTS, func() error { called = true; return nil })
	if !errors.Is(err, unix.EINVAL) || called {
		t.Fatalf("Do() = %v, called=%v; want EINVAL and no call", err, called)
	}
}

func TestDoMissingPath(t *testing.T) {
	err := Do(filepath.Join(t.TempDir(), "missing"), unix.CLONE_NEWNET, func() error { return nil })
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Do() = %v, want ErrNotExist", err)
	}
}
