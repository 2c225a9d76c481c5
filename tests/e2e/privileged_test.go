package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/peapod/peapod/internal/testutil"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// hostDevice is a device node of the host's /dev the test looks for.
type hostDevice struct {
	path    string // e.g. /dev/kmsg
	kind    string // busybox stat's %F: "character special file" or "block special file"
	numbers string // busybox stat's "%t:%T": major and minor in hex
	// openable is whether the host's root can open it read-only: some VMs
	// (this one among them) refuse to open their root disk even to root.
	openable bool
}

// hostDevices returns /dev/kmsg, /dev/loop-control and one block device
// (a loop device if any), those the host has.
func hostDevices(t *testing.T) []hostDevice {
	t.Helper()
	candidates := []string{"/dev/kmsg", "/dev/loop-control"}
	blocks, _ := filepath.Glob("/dev/loop[0-9]*")
	others, _ := filepath.Glob("/dev/[sv]d[a-z]")
	if b := append(blocks, others...); len(b) > 0 {
		candidates = append(candidates, b[0])
	}
	var out []hostDevice
	for _, p := range candidates {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			continue
		}
		d := hostDevice{path: p, numbers: fmt.Sprintf("%x:%x", unix.Major(st.Rdev), unix.Minor(st.Rdev))}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFCHR:
			d.kind = "character special file"
		case unix.S_IFBLK:
			d.kind = "block special file"
		default:
			continue
		}
		if fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0); err == nil {
			unix.Close(fd)
			d.openable = true
		}
		out = append(out, d)
	}
	if len(out) == 0 || out[0].path != "/dev/kmsg" || !out[0].openable {
		t.Fatalf("the host has no /dev/kmsg it can open to test with (found %+v)", out)
	}
	return out
}

// TestPrivileged_3_HostDevices: a privileged container has the host's
// device nodes, with their numbers, and may open them and mknod more
// (the device cgroup allows all) and write /sys; its unprivileged sibling
// has none of them, may not open one it mknods (deny-all), and its /sys is
// read-only, under both cgroup drivers.
func TestPrivileged_3_HostDevices(t *testing.T) {
	// Before hostDevices: without root no device opens, and the test must
	// skip, not fail.
	testutil.RequireRoot(t)
	devs := hostDevices(t)
	for _, driver := range cgroupDrivers {
		t.Run("cgroup-"+driver, func(t *testing.T) {
			e := newEnv(t, withDriver(driver))
			priv := ctr("priv", "sleep", "1000")
			priv.SecurityContext = &corev1.SecurityContext{Privileged: ptr(true)}
			e.runPod(podJSON(newPod("devs", priv, ctr("def", "sleep", "1000"))))
			for _, d := range devs {
				want := d.kind + " " + d.numbers
				if got := strings.TrimSpace(e.mustExec("devs", "priv", "stat", "-c", "%F %t:%T", d.path)); got != want {
					t.Errorf("privileged %s is %q, want the host's %q", d.path, got, want)
				}
				if _, stderr, code := e.exec("devs", "priv", "sh", "-c", ": <"+d.path); d.openable && code != 0 {
					t.Errorf("privileged container cannot open %s: %s", d.path, stderr)
				}
				if _, _, code := e.exec("devs", "def", "stat", d.path); code == 0 {
					t.Errorf("unprivileged container has the host's %s", d.path)
				}
			}
			// The node the container makes itself: only the device cgroup
			// stands between it and the kernel's log.
			mk := "mknod /tmp/kmsg c 1 11 && : </tmp/kmsg"
			if _, stderr, code := e.exec("devs", "priv", "sh", "-c", mk); code != 0 {
				t.Errorf("privileged container cannot mknod and open kmsg: %s", stderr)
			}
			if _, stderr, code := e.exec("devs", "def", "sh", "-c", mk); code == 0 || !strings.Contains(stderr, "not permitted") {
				t.Errorf("unprivileged container opened a kmsg node it made (exit %d, %q), want EPERM", code, stderr)
			}
			for c, want := range map[string]string{"priv": "rw", "def": "ro"} {
				if got := sysMountMode(t, e.mustExec("devs", c, "cat", "/proc/self/mountinfo")); got != want {
					t.Errorf("container %s: /sys is mounted %s, want %s", c, got, want)
				}
			}
		})
	}
}

// sysMountMode returns "rw" or "ro" for the /sys mount in a mountinfo text.
func sysMountMode(t *testing.T, mountinfo string) string {
	t.Helper()
	for _, line := range strings.Split(mountinfo, "\n") {
		if f := strings.Fields(line); len(f) > 5 && f[4] == "/sys" {
			opts := strings.Split(f[5], ",")
			if slices.Contains(opts, "ro") {
				return "ro"
			}
			return "rw"
		}
	}
	t.Fatalf("no /sys mount in:\n%s", mountinfo)
	return ""
}
