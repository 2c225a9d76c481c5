package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzStateFiles loads any bytes as each of the state files a peapod
// command reads (pod.json, status.json, events.json). A file that fails to
// load gets an error naming it; one that loads, encoded again as WriteJSON
// encodes it, reads back to the same encoding, so a state file peapod
// wrote is always one it can read. (The bytes go to the file with
// os.WriteFile: WriteJSON's fsync would make each run wait on the disk.)
func FuzzStateFiles(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, "state.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		rec, err := ReadRecord(path)
		checkLoaded(t, path, data, rec, err, func() (any, error) { return ReadRecord(path) })
		if err == nil {
			rec.Creator.Alive() // any pid, start time: reads /proc, never panics
			rec.Supervisor.Alive()
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := ReadStatus(path)
		checkLoaded(t, path, data, st, err, func() (any, error) { return ReadStatus(path) })
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		var ev Events
		err = ReadJSON(path, &ev)
		checkLoaded(t, path, data, &ev, err, func() (any, error) {
			var again Events
			return &again, ReadJSON(path, &again)
		})
		if err == nil {
			ev.Add("Normal", "", "Fuzzed", "an event", time.Unix(0, 0))
			if len(ev.Items) > MaxEvents {
				t.Fatalf("%d events kept after Add, more than %d", len(ev.Items), MaxEvents)
			}
		}
	})
}

// checkLoaded asserts what FuzzStateFiles promises of one load: an error
// names the file; a loaded value written back reads back the same.
func checkLoaded(t *testing.T, path string, data []byte, v any, err error, reload func() (any, error)) {
	t.Helper()
	if err != nil {
		if !strings.Contains(err.Error(), path) {
			t.Fatalf("loading %q: error %q does not name the file", data, err)
		}
		return
	}
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("loaded %q but cannot encode it: %v", data, err)
	}
	if err := os.WriteFile(path, want, 0o600); err != nil {
		t.Fatal(err)
	}
	again, err := reload()
	if err != nil {
		t.Fatalf("loaded %q, wrote it back as %q, which does not load: %v", data, want, err)
	}
	got, err := json.Marshal(again)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("loaded %q: written back as %q, read back as %q (%v)", data, want, got, errors.Join(err))
	}
}
