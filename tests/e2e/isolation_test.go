package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/peapod/peapod/internal/testutil"
	corev1 "k8s.io/api/core/v1"
)

// defaultCaps are the 14 capabilities Kubernetes (containerd, CRI-O) grants
// a container by default, as bit numbers.
var defaultCaps = map[string]uint{
	"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3, "CAP_FSETID": 4,
	"CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
	"CAP_NET_BIND_SERVICE": 10, "CAP_NET_RAW": 13, "CAP_SYS_CHROOT": 18,
	"CAP_MKNOD": 27, "CAP_AUDIT_WRITE": 29, "CAP_SETFCAP": 31,
}

// isoPod starts the pod most isolation tests look at: "def" has the
// defaults, "nnp" sets allowPrivilegeEscalation: false.
func isoPod(t *testing.T, opts ...envOption) *env {
	t.Helper()
	e := newEnv(t, opts...)
	nnp := ctr("nnp", "sleep", "1000")
	nnp.SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: ptr(false)}
	e.runPod(podJSON(newPod("iso", ctr("def", "sleep", "1000"), nnp)))
	return e
}

// TestIsolation_3_Capabilities: the main process holds exactly the 14
// default capabilities in its bounding, permitted and effective sets, and
// none inheritable or ambient.
func TestIsolation_3_Capabilities(t *testing.T) {
	e := isoPod(t)
	var mask uint64
	for _, bit := range defaultCaps {
		mask |= 1 << bit
	}
	want := fmt.Sprintf("%016x", mask)
	status := e.mustExec("iso", "def", "cat", "/proc/1/status")
	for key, w := range map[string]string{"CapBnd": want, "CapPrm": want, "CapEff": want, "CapInh": "0000000000000000", "CapAmb": "0000000000000000"} {
		if got := statusField(t, status, key); got != w {
			t.Errorf("%s = %s, want %s", key, got, w)
		}
	}
}

// TestIsolation_3_NoNewPrivs: no_new_privs is set exactly when
// allowPrivilegeEscalation is false.
func TestIsolation_3_NoNewPrivs(t *testing.T) {
	e := isoPod(t)
	for c, want := range map[string]string{"def": "0", "nnp": "1"} {
		if got := statusField(t, e.mustExec("iso", c, "cat", "/proc/1/status"), "NoNewPrivs"); got != want {
			t.Errorf("container %s: NoNewPrivs = %s, want %s", c, got, want)
		}
	}
}

// TestIsolation_3_OnlyStdioFds: the container's PID 1 starts with fds 0-2
// only: nothing of the runtime leaks in.
func TestIsolation_3_OnlyStdioFds(t *testing.T) {
	e := isoPod(t)
	if fds := strings.Fields(e.mustExec("iso", "def", "ls", "/proc/1/fd")); !slices.Equal(fds, []string{"0", "1", "2"}) {
		t.Errorf("PID 1 has fds %v, want [0 1 2]", fds)
	}
}

// TestIsolation_3_MaskedPaths: the masked /proc and /sys paths read empty.
func TestIsolation_3_MaskedPaths(t *testing.T) {
	e := isoPod(t)
	masked := []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"}
	checked := 0
	for _, p := range masked {
		st, err := os.Stat(p)
		if err != nil {
			continue // not on this host: nothing to hide
		}
		checked++
		script := fmt.Sprintf("cat %s | wc -c", p)
		if st.IsDir() {
			script = fmt.Sprintf("ls -A %s | wc -l", p)
		}
		if got := strings.TrimSpace(e.mustExec("iso", "def", "sh", "-c", script)); got != "0" {
			t.Errorf("masked %s is not empty inside the container (%s → %s)", p, script, got)
		}
	}
	if checked == 0 {
		t.Fatalf("none of %v exists on this host", masked)
	}
}

// TestIsolation_3_ProcSysReadOnly: /proc/sys and /proc/sysrq-trigger cannot
// be written, not even the sysctls of the pod's own network namespace.
func TestIsolation_3_ProcSysReadOnly(t *testing.T) {
	e := isoPod(t)
	for _, p := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/kernel/domainname", "/proc/sysrq-trigger"} {
		if _, err := os.Stat(p); err != nil {
			continue // not on this host's kernel
		}
		_, stderr, code := e.exec("iso", "def", "sh", "-c", "echo 0 > "+p)
		if code == 0 {
			t.Errorf("writing %s inside the container succeeded", p)
		} else if !strings.Contains(stderr, "Read-only") {
			t.Errorf("writing %s failed, but not as read-only: %s", p, stderr)
		}
	}
}

// TestIsolation_3_NoHostView: the container sees neither host processes nor
// host mounts.
func TestIsolation_3_NoHostView(t *testing.T) {
	e := isoPod(t)
	ps := e.mustExec("iso", "def", "ps", "-o", "pid,args")
	for _, line := range strings.Split(strings.TrimSpace(ps), "\n")[1:] {
		f := strings.Fields(line)
		if args := strings.Join(f[1:], " "); args != "sleep 1000" && args != "ps -o pid,args" {
			t.Errorf("the container sees a process that is not its own: %q", line)
		}
	}
	host := make(map[string]bool)
	for _, m := range mountPoints(readHost(t, "/proc/self/mountinfo")) {
		if m != "/" && !underAny(m, "/proc", "/dev", "/sys") {
			host[m] = true
		}
	}
	for _, m := range mountPoints(e.mustExec("iso", "def", "cat", "/proc/self/mountinfo")) {
		if host[m] {
			t.Errorf("the container sees the host mount point %s", m)
		}
	}
}

// mountPoints lists the mount points (field 5) of mountinfo text.
func mountPoints(mountinfo string) []string {
	var out []string
	for _, line := range strings.Split(mountinfo, "\n") {
		if f := strings.Fields(line); len(f) > 4 {
			out = append(out, f[4])
		}
	}
	return out
}

// underAny tells whether p is one of dirs or below one.
func underAny(p string, dirs ...string) bool {
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// TestIsolation_3_MountFails: mount(2) is refused inside a container.
func TestIsolation_3_MountFails(t *testing.T) {
	e := isoPod(t)
	if _, _, code := e.exec("iso", "def", "mount", "-t", "tmpfs", "none", "/tmp"); code == 0 {
		t.Errorf("mount -t tmpfs inside the container succeeded")
	}
	for _, m := range mountPoints(e.mustExec("iso", "def", "cat", "/proc/self/mountinfo")) {
		if m == "/tmp" {
			t.Errorf("a mount appeared at /tmp inside the container")
		}
	}
}

// rootDisk returns the major:minor of the host's root filesystem device.
func rootDisk(t *testing.T) (major, minor string) {
	t.Helper()
	for _, line := range strings.Split(readHost(t, "/proc/self/mountinfo"), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == "/" {
			major, minor, _ = strings.Cut(f[2], ":")
			if major == "0" {
				t.Skipf("the root filesystem has no block device (%s)", f[2])
			}
			return major, minor
		}
	}
	t.Fatalf("no root mount in /proc/self/mountinfo")
	return "", ""
}

// TestIsolation_3_MknodHostDisk: with CAP_MKNOD a container may create a
// node for the host's root disk, but the device cgroup (deny-all) keeps it
// from opening it, under both cgroup drivers.
func TestIsolation_3_MknodHostDisk(t *testing.T) {
	major, minor := rootDisk(t)
	for _, driver := range cgroupDrivers {
		t.Run("cgroup-"+driver, func(t *testing.T) {
			e := isoPod(t, withDriver(driver))
			_, mkErr, mkCode := e.exec("iso", "def", "mknod", "/tmp/disk", "b", major, minor)
			t.Logf("mknod /tmp/disk b %s %s: exit %d %s", major, minor, mkCode, mkErr)
			out, _, code := e.exec("iso", "def", "head", "-c", "512", "/tmp/disk")
			if code == 0 || out != "" {
				t.Errorf("the container read %d bytes of the host's root disk %s:%s", len(out), major, minor)
			}
		})
	}
}

// TestIsolation_3_SubPathSymlink: a subPath that is a symlink to / (made by
// an init container in the volume) is refused: the container does not
// start and its status says why.
func TestIsolation_3_SubPathSymlink(t *testing.T) {
	e := newEnv(t)
	app := ctr("app", "sleep", "1000")
	app.VolumeMounts = []corev1.VolumeMount{{Name: "vol", MountPath: "/host", SubPath: "escape"}}
	p := newPod("subpath", app)
	p.Spec.InitContainers = []corev1.Container{mount(shell("mklink", "ln -s / /vol/escape"), "vol", "/vol")}
	p.Spec.Volumes = []corev1.Volume{emptyDir("vol")}
	p.Spec.RestartPolicy = corev1.RestartPolicyNever
	out, stderr, code := e.run(podJSON(p), "run", "-d", "-f", "-")
	if code == 0 {
		t.Errorf("run -d succeeded with a subPath symlink to /; stdout %q", out)
	}
	if !strings.Contains(stderr, "app") {
		t.Errorf("run's error does not name the container: %q", stderr)
	}
	got := e.get("subpath")
	s := containerStatus(t, got, "app")
	if s.State.Running != nil {
		t.Errorf("container app runs with a subPath symlink to /: state %+v", s.State)
	}
	w := s.State.Waiting
	if w == nil || (w.Reason != "CreateContainerError" && w.Reason != "RunContainerError") {
		t.Errorf("container app: state %+v, want waiting with CreateContainerError or RunContainerError", s.State)
	}
}

// TestIsolation_3_DevSymlinkImage: an image whose /dev is a symlink to a
// host directory gets its /dev inside its own root: the host directory is
// untouched and no mount lands on it.
func TestIsolation_3_DevSymlinkImage(t *testing.T) {
	hostDir := t.TempDir()
	sentinel := filepath.Join(hostDir, "sentinel")
	if err := os.WriteFile(sentinel, []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, target string }{
		{"absolute", hostDir},
		{"relative", strings.Repeat("../", 16) + strings.TrimPrefix(hostDir, "/")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			data := tarOfWithout(t, busyboxTar, []string{"./dev/", "./dev"}, tSymlink("dev", tt.target))
			file := filepath.Join(t.TempDir(), "devlink.tar")
			if err := os.WriteFile(file, data, 0o644); err != nil {
				t.Fatal(err)
			}
			e.mustRun("image", "import", file, "--name", "devlink:1")
			before := e.snapshot()
			p := newPod("devlink", ctr("c", "sh", "-c", "echo pwned > /dev/sentinel; exec sleep 1000"))
			p.Spec.Containers[0].Image = "devlink:1"
			out, stderr, code := e.run(podJSON(p), "run", "-d", "-f", "-")
			t.Logf("run: exit %d %s %s", code, out, stderr)
			names, err := os.ReadDir(hostDir)
			if err != nil {
				t.Fatal(err)
			}
			if len(names) != 1 || names[0].Name() != "sentinel" {
				t.Errorf("host directory %s now holds %v, want only the sentinel", hostDir, names)
			}
			if got := readHost(t, sentinel); got != "host" {
				t.Errorf("host file %s now holds %q", sentinel, got)
			}
			for _, m := range mountPoints(readHost(t, "/proc/self/mountinfo")) {
				if underAny(m, hostDir) {
					t.Errorf("a mount landed on the host at %s", m)
				}
			}
			e.mustRun("rm", "-f", "devlink")
			e.assertNoLeak(before)
		})
	}
}

// sha256File hashes a host file.
func sha256File(t *testing.T, p string) string {
	t.Helper()
	sum := sha256.Sum256([]byte(readHost(t, p)))
	return hex.EncodeToString(sum[:])
}

// exeAttack runs in the container: for every process it can see but its
// own busybox ones, it opens /proc/PID/exe read-only (CVE-2019-5736's first
// step), then, once that process has gone, tries to write the binary
// through the held fd; it logs what it reached to /tmp/reached. `command`
// keeps a failed redirection of the special built-in exec from ending the
// shell.
const exeAttack = `
while :; do
  for p in /proc/[0-9]*; do
    exe=$(readlink $p/exe 2>/dev/null) || continue
    case "$exe" in /bin/busybox|"") continue;; esac
    command exec 3<"$p/exe" 2>/dev/null || continue
    echo "$p $exe" >> /tmp/reached
    i=0
    while [ $i -lt 50 ]; do
      echo pwned 2>/dev/null >/proc/self/fd/3 && echo "wrote $exe" >> /tmp/reached && break
      i=$((i+1)); sleep 0.02
    done
    exec 3<&-
  done
  sleep 0.01
done`

// TestIsolation_3_HelperExe: a container that tries to write through
// /proc/<pid>/exe of every runtime helper it can see (exec's helper, also
// one run by `#!/proc/self/exe`) leaves the host's peapod binaries
// unchanged (CVE-2019-5736).
func TestIsolation_3_HelperExe(t *testing.T) {
	// Before copying the binaries: TestMain builds them only as root.
	testutil.RequireRoot(t)
	// A private copy of the binaries: if the attack succeeds, the other
	// tests still run intact ones.
	dir := t.TempDir()
	var bins []string
	for _, src := range append([]string{peapodBin}, helperBins...) {
		dst := filepath.Join(dir, filepath.Base(src))
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o755); err != nil {
			t.Fatal(err)
		}
		bins = append(bins, dst)
	}
	e := newEnv(t, withBinary(bins[0]))
	before := make(map[string]string)
	for _, b := range bins {
		before[b] = sha256File(t, b)
	}
	attacker := shell("attacker", "printf '#!/proc/self/exe\\n' > /evil && chmod +x /evil && exec sh -c '"+strings.ReplaceAll(exeAttack, "'", `'\''`)+"'")
	p := newPod("cve", attacker)
	p.Spec.ShareProcessNamespace = ptr(true)
	e.runPod(podJSON(p))
	for range 20 {
		e.exec("cve", "attacker", "true")
		e.exec("cve", "attacker", "/evil")
	}
	reached, _, _ := e.exec("cve", "attacker", "cat", "/tmp/reached")
	t.Logf("helpers the container reached:\n%s", reached)
	for _, b := range bins {
		if got := sha256File(t, b); got != before[b] {
			t.Errorf("host binary %s changed: sha256 %s, was %s", b, got, before[b])
		}
	}
	for _, line := range strings.Split(reached, "\n") {
		if strings.HasPrefix(line, "wrote ") {
			t.Errorf("the container wrote a helper binary: %s", line)
		}
	}
}
