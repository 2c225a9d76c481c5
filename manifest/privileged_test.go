package manifest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// fakeHostDevices makes hostDevices return devs (and count its calls) for
// the test.
func fakeHostDevices(t *testing.T, devs []specs.LinuxDevice) *int {
	t.Helper()
	calls := new(int)
	old := hostDevices
	hostDevices = func() ([]specs.LinuxDevice, error) { *calls++; return devs, nil }
	t.Cleanup(func() { hostDevices = old })
	return calls
}

// TestToSpecPrivileged: a privileged container gets every host device on
// top of the defaults (a host node replacing a default of the same path),
// a device cgroup allowing all, a writable /sys and nothing masked; any
// other container keeps the default nodes, deny-all and a read-only /sys,
// and the host's /dev is not even read for it.
func TestToSpecPrivileged(t *testing.T) {
	mode, root := os.FileMode(0o600), uint32(0)
	kmsg := specs.LinuxDevice{Path: "/dev/kmsg", Type: "c", Major: 1, Minor: 11, FileMode: &mode, UID: &root, GID: &root}
	disk := specs.LinuxDevice{Path: "/dev/vda", Type: "b", Major: 254, Minor: 0, FileMode: &mode, UID: &root, GID: &root}
	hostNull := charDevice("/dev/null", 1, 3)
	calls := fakeHostDevices(t, []specs.LinuxDevice{hostNull, kmsg, disk})

	c := toSpecOne(t, func(p *corev1.Pod) {})
	if *calls != 0 {
		t.Errorf("the host's devices were listed for an unprivileged container")
	}
	if diff := cmp.Diff(defaultDevices, c.OCI.Linux.Devices); diff != "" {
		t.Errorf("unprivileged devices mismatch (-want +got):\n%s", diff)
	}
	if rules := c.OCI.Linux.Resources.Devices; len(rules) == 0 || rules[0].Allow || rules[0].Type != "" {
		t.Errorf("unprivileged device cgroup = %+v, want it to start by denying all", rules)
	}
	if got := sysOptions(t, c.OCI.Mounts); !slices.Contains(got, "ro") {
		t.Errorf("unprivileged /sys options %v, want ro", got)
	}

	c = toSpecOne(t, func(p *corev1.Pod) {
		p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
	})
	want := append(slices.DeleteFunc(slices.Clone(defaultDevices), func(d specs.LinuxDevice) bool { return d.Path == "/dev/null" }), hostNull, kmsg, disk)
	if diff := cmp.Diff(want, c.OCI.Linux.Devices); diff != "" {
		t.Errorf("privileged devices mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}, c.OCI.Linux.Resources.Devices); diff != "" {
		t.Errorf("privileged device cgroup mismatch (-want +got):\n%s", diff)
	}
	if got := sysOptions(t, c.OCI.Mounts); slices.Contains(got, "ro") || !slices.Contains(got, "rw") {
		t.Errorf("privileged /sys options %v, want rw", got)
	}
	if len(c.OCI.Linux.MaskedPaths)+len(c.OCI.Linux.ReadonlyPaths) != 0 {
		t.Errorf("privileged container has masked %v and read-only %v paths", c.OCI.Linux.MaskedPaths, c.OCI.Linux.ReadonlyPaths)
	}
}

// sysOptions returns the options of the /sys mount.
func sysOptions(t *testing.T, mounts []specs.Mount) []string {
	t.Helper()
	for _, m := range mounts {
		if m.Destination == "/sys" {
			return m.Options
		}
	}
	t.Fatalf("no /sys mount in %+v", mounts)
	return nil
}

// TestWalkHostDev lists the real /dev: /dev/null is there as the host has
// it, and nothing the container sets up itself or that is not a device
// node (symlinks, /dev/pts, /dev/shm, the console, ptmx) is.
func TestWalkHostDev(t *testing.T) {
	devs, err := walkDevices("/dev")
	if err != nil {
		t.Fatal(err)
	}
	var null *specs.LinuxDevice
	for i, d := range devs {
		if d.Path == "/dev/null" {
			null = &devs[i]
		}
		for _, skipped := range []string{"/dev/pts/", "/dev/shm/", "/dev/mqueue/", "/dev/fd/"} {
			if strings.HasPrefix(d.Path, skipped) {
				t.Errorf("%s is listed; nothing under %s should be", d.Path, skipped)
			}
		}
		if d.Path == "/dev/console" || d.Path == "/dev/ptmx" {
			t.Errorf("%s is listed; the container sets it up itself", d.Path)
		}
		var st unix.Stat_t
		if err := unix.Lstat(d.Path, &st); err != nil || st.Mode&unix.S_IFMT == unix.S_IFLNK {
			t.Errorf("%s is listed but is not a device node (%v)", d.Path, err)
		}
	}
	if null == nil || null.Type != "c" || null.Major != 1 || null.Minor != 3 || null.FileMode == nil || *null.FileMode != 0o666 {
		t.Fatalf("/dev/null listed as %+v, want c 1:3 mode 0666", null)
	}
}

// TestWalkDevicesSkipsNonDevices: FIFOs, files, symlinks (even to a device)
// and the skipped directories give nothing.
func TestWalkDevicesSkipsNonDevices(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"pts", "sub"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mkfifo(filepath.Join(dir, "sub", "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"null-link", "pts/0", "sub/null-link"} {
		if err := os.Symlink("/dev/null", filepath.Join(dir, l)); err != nil {
			t.Fatal(err)
		}
	}
	devs, err := walkDevices(dir)
	if err != nil || len(devs) != 0 {
		t.Errorf("walkDevices = %+v, %v; want nothing", devs, err)
	}
	if _, err := walkDevices(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("walkDevices of a missing dir = %v, want an error naming it", err)
	}
}
