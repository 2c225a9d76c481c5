package namespaces

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/peapod/peapod/internal/testutil"
)

func TestMountTmpfsAndUnmountUnder(t *testing.T) {
	testutil.RequireRoot(t)
	root := t.TempDir()
	// mountinfo escapes the space of "b c" as \040: UnmountUnder must
	// still find it.
	a, b := filepath.Join(root, "a"), filepath.Join(root, "a", "b c")
	t.Cleanup(func() { UnmountUnder(root) })
	if err := MountTmpfs(a, 1<<20, 0o1777); err != nil {
		t.Fatal(err)
	}
	if err := MountTmpfs(b, 0, 0o755); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(a)
	if err != nil || fi.Mode()&os.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Fatalf("tmpfs root mode = %v (%v), want sticky 0777", fi.Mode(), err)
	}
	points, err := mountPointsUnder(root)
	if err != nil || len(points) != 2 || points[0] != b {
		t.Fatalf("mount points = %v (%v), want [%s %s]", points, err, b, a)
	}
	if err := UnmountUnder(root); err != nil {
		t.Fatal(err)
	}
	if points, _ := mountPointsUnder(root); len(points) != 0 {
		t.Fatalf("still mounted: %v", points)
	}
	if err := UnmountUnder(root); err != nil {
		t.Fatalf("second UnmountUnder: %v", err)
	}
}
