package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestCreateLockedReserves(t *testing.T) {
	p := filepath.Join(t.TempDir(), "default_web")
	h, err := CreateLocked(p, []byte("uid-1"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Unlock()
	if _, err := CreateLocked(p, []byte("uid-2")); !errors.Is(err, ErrExists) {
		t.Fatalf("second reservation of one name: got %v, want ErrExists", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "uid-1" {
		t.Fatalf("name holds %q, want uid-1", b)
	}
	if _, err := LockExisting(p, true); !errors.Is(err, ErrBusy) {
		t.Fatalf("non-blocking lock of a held name: got %v, want ErrBusy", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Fatalf("temp files left behind: %v", entries)
	}
}

func TestLockExistingMissing(t *testing.T) {
	if _, err := LockExisting(filepath.Join(t.TempDir(), "none"), false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
}

// awaitBlockedFlock waits until /proc/locks shows a process blocked on the
// flock of path ("->" marks a waiting request).
func awaitBlockedFlock(t *testing.T, path string) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	suffix := fmt.Sprintf(":%d ", st.Ino)
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile("/proc/locks")
		if err != nil {
			t.Skipf("no /proc/locks: %v", err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "-> FLOCK") && strings.Contains(l+" ", suffix) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nobody blocked on the flock of %s:\n%s", path, b)
		}
		// The kernel offers no event for "a process is now waiting".
		time.Sleep(5 * time.Millisecond)
	}
}

// A waiter on a name whose holder removes it (rm finished, or run rolled
// back) finds it gone; one whose holder made it again finds the new one.
func TestLockExistingWaitsAndSeesRemoval(t *testing.T) {
	for _, remake := range []bool{false, true} {
		t.Run(fmt.Sprintf("remake=%v", remake), func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "default_web")
			h, err := CreateLocked(p, []byte("uid-1"))
			if err != nil {
				t.Fatal(err)
			}
			type result struct {
				h   *Held
				err error
			}
			got := make(chan result, 1)
			go func() {
				w, err := LockExisting(p, false)
				got <- result{w, err}
			}()
			awaitBlockedFlock(t, p)
			var h2 *Held
			if remake {
				if err := h.RemoveKeepLocked(); err != nil {
					t.Fatal(err)
				}
				if h2, err = CreateLocked(p, []byte("uid-2")); err != nil {
					t.Fatal(err)
				}
				h.Unlock()
				h2.Unlock()
			} else if err := h.Remove(); err != nil {
				t.Fatal(err)
			}
			r := <-got
			switch {
			case !remake && !errors.Is(r.err, ErrNotFound):
				t.Fatalf("waiter on a removed name: got %v, want ErrNotFound", r.err)
			case remake && (r.err != nil || string(r.h.Data) != "uid-2"):
				t.Fatalf("waiter on a remade name: got %v, %v; want the lock on uid-2", r.h, r.err)
			}
			if r.h != nil {
				r.h.Unlock()
			}
		})
	}
}
