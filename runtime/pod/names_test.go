package pod

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNameIndexFile: every valid namespace/name pair gets a name index
// file the filesystem accepts (a 63-character namespace and a 253-character
// pod name together exceed NAME_MAX), distinct for distinct pairs; short
// keys keep their readable form, which existing roots use.
func TestNameIndexFile(t *testing.T) {
	label63 := strings.Repeat("n", 63)
	name253 := strings.Repeat(strings.Repeat("a", 61)+"b.", 4) + "c"
	dir := t.TempDir()
	m := &Manager{o: Options{Root: dir}}
	if err := os.Mkdir(filepath.Join(dir, "names"), 0o700); err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, k := range [][2]string{
		{"default", "web"},
		{"default", "web.v1.example"},
		{"default", name253},
		{label63, name253},
		{label63, name253[:252] + "d"},
		{"default", strings.Repeat("x", 247)}, // "default_" + 247 = 255 bytes: still whole
		{"default", strings.Repeat("x", 248)},
	} {
		f := nameIndexFile(k[0], k[1])
		if len(f) > fileNameMax {
			t.Errorf("name index of %s/%s is %d bytes long", k[0], k[1], len(f))
		}
		if whole := k[0] + "_" + k[1]; len(whole) <= fileNameMax && f != whole {
			t.Errorf("name index of %s/%s = %q, want %q", k[0], k[1], f, whole)
		}
		if other, dup := seen[f]; dup {
			t.Errorf("%s/%s and %s share the name index %q", k[0], k[1], other, f)
		}
		seen[f] = k[0] + "/" + k[1]
		if err := os.WriteFile(m.nameIndex(k[0], k[1]), []byte("uid"), 0o600); err != nil {
			t.Errorf("name index of %s/%s: %v", k[0], k[1], err)
		}
	}
}

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
