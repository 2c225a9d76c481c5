package namespaces

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/peapod/peapod/internal/testutil"
	"golang.org/x/sys/unix"
)

func TestBindHelperReadOnly(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "helper"), filepath.Join(dir, "run", "bin", "helper")
	copyFile(t, "/bin/true", src)
	t.Cleanup(func() { UnbindHelper(dst) })
	if err := BindHelperReadOnly(src, dst); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command(dst).Run(); err != nil {
		t.Fatalf("running the bound helper: %v", err)
	}
	// What CVE-2019-5736 does through /proc/<pid>/exe: open the file the
	// helper runs from for writing.
	if f, err := os.OpenFile(dst, os.O_WRONLY, 0); !errors.Is(err, unix.EROFS) {
		if err == nil {
			f.Close()
		}
		t.Fatalf("opening the helper mount for writing: %v, want EROFS", err)
	}
	if err := BindHelperReadOnly(src, dst); err != nil {
		t.Fatalf("second bind: %v", err)
	}
	if n := mountCount(t, dst); n != 1 {
		t.Fatalf("%d mounts on %s after a second bind, want 1 (idempotent)", n, dst)
	}
	// An upgrade replaces the binary (a new inode): the mount follows.
	copyFile(t, "/bin/false", src+".new")
	if err := os.Rename(src+".new", src); err != nil {
		t.Fatal(err)
	}
	if err := BindHelperReadOnly(src, dst); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command(dst).Run(); err == nil {
		t.Fatal("the mount still runs the old helper after an upgrade")
	}
	if n := mountCount(t, dst); n != 1 {
		t.Fatalf("%d mounts on %s after the upgrade, want 1", n, dst)
	}
	for i := 0; i < 2; i++ {
		if err := UnbindHelper(dst); err != nil {
			t.Fatalf("unbind #%d: %v", i+1, err)
		}
	}
	if n := mountCount(t, dst); n != 0 {
		t.Fatalf("%d mounts left on %s", n, dst)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mountCount(t *testing.T, path string) int {
	t.Helper()
	points, err := mountPointsUnder(path)
	if err != nil {
		t.Fatal(err)
	}
	return len(points)
}
