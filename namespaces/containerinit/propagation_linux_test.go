package containerinit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/testutil"
)

// sharedBind bind-mounts dir on itself and makes it shared, as a host path
// of a bidirectional mount must be; Cleanup detaches it with whatever was
// propagated into it.
func sharedBind(t *testing.T, dir string) {
	t.Helper()
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("failed to detach %s: %v", dir, err)
		}
	})
	if err := unix.Mount("", dir, "", unix.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
}

// mountsUnder lists the host's mount points under dir (dir excluded).
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			out = append(out, f[4])
		}
	}
	return out
}

// TestBidirectionalPropagation: with an rshared rootfs propagation, a
// container's mount under an rshared bind of a shared host path reaches
// the host, while its rootfs and everything mounted into it do not, even
// with the rootfs's own parent a shared mount (the init stage makes that
// one private, as runc does). With the default rslave, the container's
// mount stays its own.
func TestBidirectionalPropagation(t *testing.T) {
	testutil.RequireRoot(t)
	lower := makeBusyboxLower(t, t.TempDir())
	for _, tc := range []struct {
		name, rootfsPropagation, bindPropagation string
		reaches                                  bool
	}{
		{"bidirectional", "rshared", "rshared", true},
		{"host to container", "", "rslave", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vol := t.TempDir()
			if err := os.Mkdir(filepath.Join(vol, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			sharedBind(t, vol)
			c := newTestContainer(t, lower)
			// The rootfs's parent shared too: what the container mounts
			// there must still not reach the host.
			parent := filepath.Dir(c.OCI.Root.Path)
			sharedBind(t, parent)
			c.OCI.Linux.RootfsPropagation = tc.rootfsPropagation
			c.OCI.Mounts = append(c.OCI.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: vol, Options: []string{"rbind", tc.bindPropagation}})
			all := append(append([]string{}, defaultCaps...), "CAP_SYS_ADMIN")
			c.OCI.Process.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}
			runScript(t, c, "mount -t tmpfs inside /mnt/sub && touch /mnt/sub/flag")

			var st unix.Statfs_t
			if err := unix.Statfs(filepath.Join(vol, "sub"), &st); err != nil {
				t.Fatal(err)
			}
			_, err := os.Stat(filepath.Join(vol, "sub", "flag"))
			if got := st.Type == unix.TMPFS_MAGIC && err == nil; got != tc.reaches {
				t.Errorf("the container's mount on the host: %v, want %v", got, tc.reaches)
			}
			if m := mountsUnder(t, parent); len(m) != 0 {
				t.Errorf("the container's rootfs mounts reached the host: %q", m)
			}
		})
	}
}
