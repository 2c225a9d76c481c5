package pod

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestLookupRefusesInvalidNames: a name no manifest could have (a CLI
// argument) is not found and never becomes a path outside the root.
func TestLookupRefusesInvalidNames(t *testing.T) {
	root := t.TempDir()
	m := &Manager{o: Options{Root: root}}
	// ROOT/names/default_../../../x is ROOT/x: a directory there makes
	// a lookup that built the path fail to read it, not "not found".
	if err := os.Mkdir(filepath.Join(root, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, k := range [][2]string{{"default", "../../../x"}, {"default", "a/b"}, {"..", "../x"}, {"default", ""}} {
		if _, err := m.Get(k[0], k[1]); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q, %q) error = %v, want ErrNotFound", k[0], k[1], err)
		}
		if _, err := m.lockName(k[0], k[1]); !errors.Is(err, ErrNotFound) {
			t.Errorf("lockName(%q, %q) error = %v, want ErrNotFound", k[0], k[1], err)
		}
	}
}
