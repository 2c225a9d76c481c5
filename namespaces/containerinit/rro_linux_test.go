package containerinit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/testutil"
	"github.com/peapod/peapod/runtime/spec"
)

// TestRecursiveReadOnlyMount: a host directory with a tmpfs mounted
// below it (and another below that), bound read-only into a container.
// With spec.RecursiveReadOnlyOption every one of those mounts is
// read-only inside (EROFS); with "ro" alone the submounts stay writable,
// which is why rro exists (and what makes this test able to fail). The
// host's own mounts stay writable either way: mount_setattr changed the
// container's copies only.
func TestRecursiveReadOnlyMount(t *testing.T) {
	testutil.RequireRoot(t)
	vol := t.TempDir()
	sub := filepath.Join(vol, "sub")
	deeper := filepath.Join(sub, "deeper")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{sub, deeper} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
				t.Errorf("failed to unmount %s: %v", dir, err)
			}
		})
	}
	script := `for d in /mnt /mnt/sub /mnt/sub/deeper; do
	if touch $d/x 2>/dev/null; then echo "$d writable"; else touch $d/x 2>&1 | grep -q "Read-only file system" && echo "$d EROFS"; fi
done`
	for _, tt := range []struct {
		name string
		opts []string
		want string
	}{
		{"rro", []string{"rbind", "rprivate", "ro", spec.RecursiveReadOnlyOption}, "/mnt EROFS\n/mnt/sub EROFS\n/mnt/sub/deeper EROFS\n"},
		{"ro only", []string{"rbind", "rprivate", "ro"}, "/mnt EROFS\n/mnt/sub writable\n/mnt/sub/deeper writable\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lower := makeBusyboxLower(t, t.TempDir())
			c := newTestContainer(t, lower, "sh", "-c", script)
			c.OCI.Mounts = append(c.OCI.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: vol, Options: tt.opts})
			out, ws, err := runTestContainer(t, c)
			if err != nil || ws.ExitStatus() != 0 {
				t.Fatalf("container: %q, %v, %v", out, ws, err)
			}
			if out != tt.want {
				t.Errorf("inside the container:\n%s\nwant:\n%s", out, tt.want)
			}
			for _, dir := range []string{sub, deeper} {
				f := filepath.Join(dir, "host-"+strings.ReplaceAll(tt.name, " ", "-"))
				if err := os.WriteFile(f, nil, 0o644); err != nil {
					t.Errorf("the host's mount became read-only: %v", err)
				}
			}
		})
	}
}
