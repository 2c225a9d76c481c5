package dirwatch

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/peapod/peapod/runtime/layout"
)

// TestWatch: a rename into a watched pod directory wakes Wait, a new pod
// directory is seen under the watched pods directory, a directory already
// gone is no error, and Close wakes a Wait blocked in another goroutine
// (the CRI daemon's shutdown) with os.ErrClosed.
func TestWatch(t *testing.T) {
	d := layout.Root{Root: t.TempDir(), RunRoot: t.TempDir()}
	for _, dir := range []string{d.PodsDir(), d.RunPodsDir()} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	w, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WatchRoots(d); err != nil {
		t.Fatal(err)
	}
	if err := w.Add(filepath.Join(d.RunRoot, "gone"), PodDirMask); err != nil {
		t.Errorf("Add of a missing directory: %v, want none", err)
	}
	wait := func(what string) error {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- w.Wait() }()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatalf("Wait did not return after %s", what)
			return nil
		}
	}
	pod := d.RunDir("01234567-89ab-cdef-0123-456789abcdef")
	if err := os.Mkdir(pod, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := wait("a new pod directory"); err != nil {
		t.Fatal(err)
	}
	if err := w.WatchRoots(d); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(pod, ".status.json.tmp")
	if err := os.WriteFile(tmp, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, layout.Run(pod).Status()); err != nil {
		t.Fatal(err)
	}
	if err := wait("a status written"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Wait() }()
	w.Close()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("Wait after Close: %v, want os.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not wake a blocked Wait")
	}
}
