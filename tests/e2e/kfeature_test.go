package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/testutil"
)

// TestRootOnOverlaySaysWhatCheckSays puts --root on an overlayfs, which
// overlayfs refuses as an upper layer (EINVAL): `peapod check` fails on
// it, and a `run` whose container's overlay mount hits it fails with the
// same fix text instead of a bare EINVAL.
func TestRootOnOverlaySaysWhatCheckSays(t *testing.T) {
	// Before the mount below: as an unprivileged user it must skip, as
	// every root test does, not fail on the mount.
	testutil.RequireRoot(t)
	dir := shortTempDir(t)
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	merged := filepath.Join(dir, "merged")
	opts := "lowerdir=" + filepath.Join(dir, "lower") + ",upperdir=" + filepath.Join(dir, "upper") + ",workdir=" + filepath.Join(dir, "work")
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Fatalf("mount overlay for --root: %v", err)
	}
	// Registered before newEnv's teardown, so it runs after it.
	t.Cleanup(func() {
		if err := unix.Unmount(merged, unix.MNT_DETACH); err != nil {
			t.Errorf("cleanup: unmount %s: %v", merged, err)
		}
	})
	e := newEnv(t, func(e *env) { e.root = filepath.Join(merged, "root") })

	out, _, code := e.run("", "check")
	if code != 1 || !strings.Contains(out, "FAIL  overlayfs") || !strings.Contains(out, "is on overlayfs") {
		t.Errorf("check with --root on overlayfs: exit %d, want 1 and an overlayfs FAIL:\n%s", code, out)
	}
	_, stderr, code := e.run(onePod("ovl"), "run", "-d", "-f", "-")
	if code == 0 {
		t.Fatal("run with --root on overlayfs succeeded; the kernel should refuse overlayfs as upper layer")
	}
	for _, want := range []string{"failed to mount overlay", "invalid argument", "is overlayfs missing?", "--root on ext4", "`peapod check` tests this"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("run's error lacks %q:\n%s", want, stderr)
		}
	}
}
