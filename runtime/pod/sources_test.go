package pod

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/peapod/peapod/manifest"
)

// TestWriteProjectionSymlinks: a volume's files are written through an
// os.Root with O_EXCL, so a symlink planted in the volume directory (as a
// directory or as the file itself) can neither lead a write outside it nor
// have a file replaced; modes are exact whatever the umask.
func TestWriteProjectionSymlinks(t *testing.T) {
	tests := []struct {
		name  string
		plant func(t *testing.T, dir, outside string)
		path  string
		ok    bool
	}{
		{name: "plain nested file", plant: func(*testing.T, string, string) {}, path: "conf/app.conf", ok: true},
		{name: "symlinked directory", plant: func(t *testing.T, dir, outside string) {
			if err := os.Symlink(outside, filepath.Join(dir, "conf")); err != nil {
				t.Fatal(err)
			}
		}, path: "conf/app.conf"},
		{name: "absolute symlink as the file", plant: func(t *testing.T, dir, outside string) {
			if err := os.Symlink(filepath.Join(outside, "app.conf"), filepath.Join(dir, "app.conf")); err != nil {
				t.Fatal(err)
			}
		}, path: "app.conf"},
		{name: "relative symlink escaping", plant: func(t *testing.T, dir, outside string) {
			if err := os.Symlink("../../"+filepath.Base(outside), filepath.Join(dir, "up")); err != nil {
				t.Fatal(err)
			}
		}, path: "up/app.conf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			outside := filepath.Join(base, "outside")
			dir := filepath.Join(base, "run", "vol")
			for _, d := range []string{outside, dir} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			tt.plant(t, dir, outside)
			err := writeProjection(dir, manifest.Projection{Name: "v", Files: []manifest.ProjectedFile{{Path: tt.path, Data: []byte("x"), Mode: 0o640}}})
			if entries, _ := os.ReadDir(outside); len(entries) > 0 {
				t.Errorf("a file was written outside the volume: %v", entries)
			}
			if !tt.ok {
				if err == nil {
					t.Error("writeProjection() followed the symlink without an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(filepath.Join(dir, tt.path))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o640 {
				t.Errorf("mode = %v, want 0640", fi.Mode().Perm())
			}
		})
	}
}
