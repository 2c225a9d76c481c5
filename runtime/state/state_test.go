package state

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestWriteReadRecord(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pod.json")
	in := &Record{Version: Version, UID: "u1", Name: "web", Namespace: "default", Phase: PhaseCreating, Creator: Self()}
	if err := WriteJSON(p, in); err != nil {
		t.Fatal(err)
	}
	out, err := ReadRecord(p)
	if err != nil {
		t.Fatal(err)
	}
	if out.UID != "u1" || out.Creator != in.Creator {
		t.Fatalf("round trip: got %+v", out)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temp files left behind: %v", entries)
	}
}

// TestWriteBytesNoSync: the bytes replace the file as they are (not
// re-encoded), over an older file, and no temp file is left.
func TestWriteBytesNoSync(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "spec.json")
	if err := os.WriteFile(p, []byte(`{"old": true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	want := "{\"b\": 1,\n \"a\": [2]}"
	if err := WriteBytesNoSync(p, []byte(want)); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(p); err != nil || string(got) != want {
		t.Fatalf("file = %q (%v), want %q", got, err, want)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("temp files left behind: %v", entries)
	}
	if err := WriteBytesNoSync(filepath.Join(dir, "absent", "spec.json"), []byte("{}")); err == nil || !strings.Contains(err.Error(), "absent") {
		t.Fatalf("write into a missing directory: %v, want an error naming it", err)
	}
}

func TestReadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadRecord(filepath.Join(dir, "missing.json")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing file: got %v, want ErrNotFound", err)
	}
	p := filepath.Join(dir, "old.json")
	if err := WriteJSON(p, &Status{Version: "peapod.dev/state/v0"}); err != nil {
		t.Fatal(err)
	}
	_, err := ReadStatus(p)
	if !errors.Is(err, ErrVersion) {
		t.Fatalf("old version: got %v, want ErrVersion", err)
	}
}

func TestProcAlive(t *testing.T) {
	self := Self()
	if !self.Alive() {
		t.Fatal("own process not alive")
	}
	stale := self
	stale.Start++
	if stale.Alive() {
		t.Fatal("a pid with another start time must not count as alive")
	}
	if (Proc{}).Alive() {
		t.Fatal("zero proc alive")
	}
}

// A process that exited but was not reaped yet keeps its pid and start time:
// it must not count as alive.
func TestProcAliveZombie(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Wait() })
	p := ProcOf(cmd.Process.Pid)
	// WNOWAIT: wait for the exit but leave the zombie in place.
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, p.PID, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatalf("waitid: %v", err)
	}
	if p.Start == 0 || p.Alive() {
		t.Fatalf("zombie %+v: Alive() = true, want false", p)
	}
}

func TestEventsAggregateAndCap(t *testing.T) {
	var e Events
	t0 := time.Unix(1000, 0)
	e.Add("Warning", "spec.containers{app}", "BackOff", "back-off", t0)
	e.Add("Warning", "spec.containers{app}", "BackOff", "back-off", t0.Add(time.Second))
	if len(e.Items) != 1 || e.Items[0].Count != 2 || !e.Items[0].LastSeen.Equal(t0.Add(time.Second)) {
		t.Fatalf("aggregation: %+v", e.Items)
	}
	for i := 0; i < MaxEvents+10; i++ {
		e.Add("Normal", "", "Reason", string(rune('a'+i%26))+time.Duration(i).String(), t0)
	}
	if len(e.Items) != MaxEvents {
		t.Fatalf("cap: %d events", len(e.Items))
	}
}

func TestLockExcludes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	unlock, err := Lock(p)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{})
	go func() {
		u2, err := Lock(p)
		if err == nil {
			u2()
		}
		close(got)
	}()
	select {
	case <-got:
		t.Fatal("second lock acquired while the first is held")
	case <-time.After(100 * time.Millisecond):
		// The second Lock blocks in flock(2); no event exists for "still blocked".
	}
	unlock()
	<-got
}
