package containerinit

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/testutil"
	"github.com/peapod/peapod/namespaces"
	"github.com/peapod/peapod/runtime/spec"
)

// statusField returns a "Name:\tvalue" field of /proc/<pid>/status output.
func statusField(t *testing.T, status, name string) string {
	t.Helper()
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in status:\n%s", name, status)
	return ""
}

// capMask is the /proc status mask of the named capabilities.
func capMask(t *testing.T, names []string) string {
	t.Helper()
	var m uint64
	for _, n := range names {
		c, ok := capsByName[n]
		if !ok {
			t.Fatalf("unknown capability %q", n)
		}
		m |= 1 << uint(c)
	}
	return fmt.Sprintf("%016x", m)
}

func TestContainerCapabilities(t *testing.T) {
	testutil.RequireRoot(t)
	c := newTestContainer(t, makeBusyboxLower(t, t.TempDir()))
	out := runScript(t, c, "cat /proc/self/status")
	want := capMask(t, defaultCaps)
	if want != "00000000a80425fb" {
		t.Fatalf("default capability mask computed as %s, Docker's 14 are 00000000a80425fb", want)
	}
	for _, f := range []string{"CapBnd", "CapEff", "CapPrm"} {
		if got := statusField(t, out, f); got != want {
			t.Errorf("%s = %s, want %s", f, got, want)
		}
	}
	for _, f := range []string{"CapInh", "CapAmb"} {
		if got := statusField(t, out, f); got != "0000000000000000" {
			t.Errorf("%s = %s, want empty", f, got)
		}
	}
}

func TestContainerNoNewPrivs(t *testing.T) {
	testutil.RequireRoot(t)
	lower := makeBusyboxLower(t, t.TempDir())
	for _, nnp := range []bool{true, false} {
		t.Run(strconv.FormatBool(nnp), func(t *testing.T) {
			c := newTestContainer(t, lower)
			c.OCI.Process.NoNewPrivileges = nnp
			want := "0"
			if nnp {
				want = "1"
			}
			if got := statusField(t, runScript(t, c, "cat /proc/self/status"), "NoNewPrivs"); got != want {
				t.Errorf("NoNewPrivs = %s, want %s", got, want)
			}
		})
	}
}

func TestContainerUser(t *testing.T) {
	testutil.RequireRoot(t)
	c := newTestContainer(t, makeBusyboxLower(t, t.TempDir()))
	c.OCI.Process.User = specs.User{Username: "nobody", AdditionalGids: []uint32{1234}}
	out := runScript(t, c, "id -u; id -g; id -G; echo $HOME; grep CapEff /proc/self/status")
	want := "65534\n65534\n65534 1234\n/nonexistent\nCapEff:\t0000000000000000\n"
	if out != want {
		t.Errorf("user/caps inside = %q, want %q", out, want)
	}
}

func TestContainerOnlyStdioFds(t *testing.T) {
	testutil.RequireRoot(t)
	c := newTestContainer(t, makeBusyboxLower(t, t.TempDir()))
	// The shell is PID 1 (the trailing echo keeps it from exec'ing ls);
	// listing its fds from a child shows what it got at exec.
	out := strings.TrimSuffix(runScript(t, c, "ls /proc/1/fd; echo end"), "end\n")
	if got := strings.Fields(out); !slices.Equal(got, []string{"0", "1", "2"}) {
		t.Errorf("fds at exec = %v, want [0 1 2]", got)
	}
}

func TestContainerMaskedPaths(t *testing.T) {
	testutil.RequireRoot(t)
	c := newTestContainer(t, makeBusyboxLower(t, t.TempDir()))
	// Mask paths this kernel certainly has, besides the defaults.
	c.OCI.Linux.MaskedPaths = append(slices.Clone(testMaskedPaths), "/proc/interrupts", "/proc/driver")
	out := runScript(t, c, "for p in /proc/interrupts /proc/keys /proc/timer_list; do echo $p $(cat $p | wc -c); done; "+
		"for d in /proc/driver /sys/firmware /proc/acpi; do echo $d $(ls -A $d | wc -l); done")
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			t.Fatalf("unexpected line %q in:\n%s", line, out)
		}
		if _, err := os.Stat(f[0]); err != nil {
			continue // the host kernel has no such path: nothing to mask
		}
		checked++
		if f[1] != "0" {
			t.Errorf("masked %s shows %s bytes/entries", f[0], f[1])
		}
	}
	if checked < 2 {
		t.Fatalf("only %d masked paths exist on this host:\n%s", checked, out)
	}
}

func TestContainerProcSysReadonly(t *testing.T) {
	testutil.RequireRoot(t)
	c := newTestContainer(t, makeBusyboxLower(t, t.TempDir()))
	// kernel.hostname is per UTS namespace (the container's own here), so
	// the write would be harmless if the read-only bind were missing.
	out := runScript(t, c, "echo changed > /proc/sys/kernel/hostname; echo rc=$?; hostname")
	if !strings.Contains(out, "Read-only file system") || strings.Contains(out, "rc=0") || !strings.HasSuffix(out, "testpod\n") {
		t.Errorf("write to /proc/sys was not refused as read-only:\n%s", out)
	}
}

func TestContainerSeesNoHostProcesses(t *testing.T) {
	testutil.RequireRoot(t)
	c := newTestContainer(t, makeBusyboxLower(t, t.TempDir()))
	// The glob is expanded by the shell itself (PID 1), which forks nothing.
	if got := strings.TrimSpace(runScript(t, c, "echo /proc/[0-9]*")); got != "/proc/1" {
		t.Errorf("processes visible inside = %q, want only /proc/1", got)
	}
}

func TestContainerCannotMount(t *testing.T) {
	testutil.RequireRoot(t)
	c := newTestContainer(t, makeBusyboxLower(t, t.TempDir()))
	out := runScript(t, c, "mount -t tmpfs none /mnt; echo rc=$?; mount -t cgroup none /mnt; echo rc=$?")
	// busybox reports EPERM as "permission denied (are you root?)".
	if strings.Count(out, "rc=1") != 2 || strings.Count(out, "permission denied") != 2 {
		t.Errorf("mount inside the container did not fail with EPERM:\n%s", out)
	}
}

func TestContainerSeesNoHostMounts(t *testing.T) {
	testutil.RequireRoot(t)
	c := newTestContainer(t, makeBusyboxLower(t, t.TempDir()))
	allowed := map[string]bool{"/": true}
	for _, m := range c.OCI.Mounts {
		allowed[m.Destination] = true
	}
	for _, p := range append(slices.Clone(c.OCI.Linux.MaskedPaths), c.OCI.Linux.ReadonlyPaths...) {
		allowed[p] = true
	}
	out := runScript(t, c, "cat /proc/self/mountinfo")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || !allowed[f[4]] {
			t.Errorf("unexpected mount inside the container: %s", line)
		}
	}
}

func TestContainerReadonlyRoot(t *testing.T) {
	testutil.RequireRoot(t)
	lower := makeBusyboxLower(t, t.TempDir())
	for _, ro := range []bool{true, false} {
		t.Run(strconv.FormatBool(ro), func(t *testing.T) {
			c := newTestContainer(t, lower)
			c.OCI.Root.Readonly = ro
			out := runScript(t, c, "touch /newfile; echo rc=$?; touch /dev/shm/x; echo shm=$?")
			if got := strings.Contains(out, "rc=0"); got == ro {
				t.Errorf("readonly=%v: write to / gave:\n%s", ro, out)
			}
			if !strings.Contains(out, "shm=0") {
				t.Errorf("readonly=%v: /dev/shm not writable:\n%s", ro, out)
			}
		})
	}
}

func TestContainerNewUTSHostname(t *testing.T) {
	testutil.RequireRoot(t)
	c := newTestContainer(t, makeBusyboxLower(t, t.TempDir()))
	c.OCI.Hostname = "other-name"
	if got := strings.TrimSpace(runScript(t, c, "hostname")); got != "other-name" {
		t.Errorf("hostname = %q, want other-name", got)
	}
}

func TestStartContainerExecNotFound(t *testing.T) {
	testutil.RequireRoot(t)
	lower := makeBusyboxLower(t, t.TempDir())
	for _, arg0 := range []string{"/bin/nonexistent", "nonexistent", "/etc/passwd"} {
		t.Run(arg0, func(t *testing.T) {
			c := newTestContainer(t, lower)
			c.OCI.Process.Args = []string{arg0}
			_, _, err := runTestContainer(t, c)
			if !errors.Is(err, namespaces.ErrExecNotFound) {
				t.Fatalf("StartContainer(%q) = %v, want namespaces.ErrExecNotFound", arg0, err)
			}
			if !strings.Contains(err.Error(), c.Name) {
				t.Errorf("error %q does not name container %q", err, c.Name)
			}
			// The failed init was reaped by StartContainer: no child remains.
			if pid, err := unix.Wait4(-1, nil, unix.WNOHANG, nil); !errors.Is(err, unix.ECHILD) {
				t.Errorf("wait4 after a failed start = %d, %v; want ECHILD", pid, err)
			}
		})
	}
}

func TestStartContainerReportsSetupErrors(t *testing.T) {
	testutil.RequireRoot(t)
	c := newTestContainer(t, makeBusyboxLower(t, t.TempDir()), "true")
	c.OCI.Mounts = append(c.OCI.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "/nonexistent-peapod-source"})
	_, _, err := runTestContainer(t, c)
	if err == nil || errors.Is(err, namespaces.ErrExecNotFound) || !errors.Is(err, namespaces.ErrInitFailed) || !strings.Contains(err.Error(), "/data") {
		t.Fatalf("StartContainer with a missing bind source = %v, want an init error naming /data", err)
	}
}

func TestStartContainerBeforeRunError(t *testing.T) {
	testutil.RequireRoot(t)
	c := newTestContainer(t, makeBusyboxLower(t, t.TempDir()), "true")
	boom := errors.New("boom")
	var hookPid int
	_, err := namespaces.StartContainer(testHelper(t), testPod, c, [3]*os.File{}, func(pid int) error {
		hookPid = pid
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("StartContainer = %v, want the hook's error", err)
	}
	if err := unix.Kill(hookPid, 0); !errors.Is(err, unix.ESRCH) {
		t.Errorf("init pid %d still exists after a failed hook: %v", hookPid, err)
	}
}

// hostSymlinkImage makes lower/name a symlink to a fresh, empty host dir
// and, when inImage, creates the same path inside the image, so it
// resolves there. It returns the host dir.
func hostSymlinkImage(t *testing.T, lower, name string, inImage bool) string {
	t.Helper()
	hostDir := filepath.Join(t.TempDir(), "host-"+name)
	if err := os.Mkdir(hostDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(hostDir, filepath.Join(lower, name)); err != nil {
		t.Fatal(err)
	}
	if inImage {
		if err := os.MkdirAll(filepath.Join(lower, hostDir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return hostDir
}

// assertEmptyDir fails unless dir exists and is empty.
func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("host dir %q was touched: %v %v", dir, entries, err)
	}
}

func TestDevSymlinkToHostTouchesNothing(t *testing.T) {
	testutil.RequireRoot(t)
	for _, inImage := range []bool{true, false} {
		t.Run(fmt.Sprintf("target-in-image=%v", inImage), func(t *testing.T) {
			lower := makeBusyboxLower(t, t.TempDir())
			hostDir := hostSymlinkImage(t, lower, "dev", inImage)
			c := newTestContainer(t, lower, "sh", "-c", "echo hi > /dev/null && readlink /dev/ptmx")
			out, _, err := runTestContainer(t, c)
			switch {
			case inImage && (err != nil || out != "pts/ptmx\n"):
				t.Errorf("/dev inside the container is not set up: %q, %v", out, err)
			case !inImage && (err == nil || !strings.Contains(err.Error(), `on "/dev"`)):
				// A dangling symlink is not followed to create directories.
				t.Errorf("a dangling /dev symlink was accepted: %q, %v", out, err)
			}
			assertEmptyDir(t, hostDir)
		})
	}
}

func TestMountDestinationSymlinkStaysInRoot(t *testing.T) {
	testutil.RequireRoot(t)
	vol := t.TempDir()
	if err := os.WriteFile(filepath.Join(vol, "marker"), []byte("vol"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, inImage := range []bool{true, false} {
		t.Run(fmt.Sprintf("target-in-image=%v", inImage), func(t *testing.T) {
			lower := makeBusyboxLower(t, t.TempDir())
			hostDir := hostSymlinkImage(t, lower, "escape", inImage)
			c := newTestContainer(t, lower, "sh", "-c", "cat /escape/vol/marker; touch /escape/vol/x 2>/dev/null && echo writable")
			c.OCI.Mounts = append(c.OCI.Mounts, specs.Mount{Destination: "/escape/vol", Type: "bind", Source: vol, Options: []string{"rbind", "ro"}})
			out, _, err := runTestContainer(t, c)
			switch {
			case inImage && (err != nil || out != "vol"):
				t.Errorf("volume inside the container: %q, %v; want its read-only marker", out, err)
			case !inImage && (err == nil || !strings.Contains(err.Error(), `on "/escape/vol"`)):
				t.Errorf("a mount through a dangling symlink was accepted: %q, %v", out, err)
			}
			assertEmptyDir(t, hostDir)
		})
	}
}

func TestVolumeSubPath(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	lower := makeBusyboxLower(t, dir)
	vol := filepath.Join(dir, "vol")
	if err := os.MkdirAll(filepath.Join(vol, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vol, "sub", "file"), []byte("inside"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"to-root": "/", "dotdot": "../..", "to-sub": "sub"} {
		if err := os.Symlink(target, filepath.Join(vol, name)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		subPath string
		refused bool
	}{
		{"sub", false},
		{"to-sub", false},
		{"to-root", true},
		{"dotdot", true},
		{"../", true},
	}
	for _, tt := range tests {
		t.Run(tt.subPath, func(t *testing.T) {
			c := newTestContainer(t, lower)
			c.OCI.Mounts = append(c.OCI.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: vol,
				Options: []string{"rbind", spec.SubPathOption + tt.subPath}})
			c.OCI.Process.Args = []string{"cat", "/data/file"}
			out, _, err := runTestContainer(t, c)
			if tt.refused {
				if err == nil || !strings.Contains(err.Error(), "outside the volume") {
					t.Errorf("subPath %q: got %v (output %q), want refused", tt.subPath, err, out)
				}
				return
			}
			if err != nil || out != "inside" {
				t.Errorf("subPath %q: got %q, %v; want the file", tt.subPath, out, err)
			}
		})
	}
}

func TestContainerJoinsPodNamespaces(t *testing.T) {
	testutil.RequireRoot(t)
	pins := pinTestNamespaces(t)
	c := newTestContainer(t, makeBusyboxLower(t, t.TempDir()), "sleep", "30")
	c.OCI.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}}
	for typ, p := range pins {
		c.OCI.Linux.Namespaces = append(c.OCI.Linux.Namespaces, specs.LinuxNamespace{Type: typ, Path: p})
	}
	sc, err := startTestContainer(t, c)
	if err != nil {
		t.Fatalf("failed to start container: %v", err)
	}
	for typ, name := range map[specs.LinuxNamespaceType]string{specs.NetworkNamespace: "net", specs.UTSNamespace: "uts", specs.IPCNamespace: "ipc"} {
		got := nsInode(t, fmt.Sprintf("/proc/%d/ns/%s", sc.pid, name))
		if want := nsInode(t, pins[typ]); got != want {
			t.Errorf("container %s ns inode %d, pinned %d", name, got, want)
		}
	}
	for _, name := range []string{"mnt", "pid"} {
		if nsInode(t, fmt.Sprintf("/proc/%d/ns/%s", sc.pid, name)) == nsInode(t, "/proc/self/ns/"+name) {
			t.Errorf("container shares the test's %s namespace", name)
		}
	}
	// The pod's UTS namespace keeps the name it was pinned with.
	c2 := newTestContainer(t, makeBusyboxLower(t, t.TempDir()))
	c2.OCI.Linux.Namespaces = c.OCI.Linux.Namespaces
	if got := strings.TrimSpace(runScript(t, c2, "hostname")); got != "pinnedpod" {
		t.Errorf("hostname in the pod's UTS namespace = %q, want pinnedpod", got)
	}
}

// fileSHA256 hashes a file.
func fileSHA256(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// startTestReaper starts a reaper; Cleanup terminates and reaps it.
func startTestReaper(t *testing.T) int {
	t.Helper()
	pid, err := namespaces.StartReaper(testHelper(t))
	if err != nil {
		t.Fatalf("StartReaper: %v", err)
	}
	t.Cleanup(func() {
		_ = unix.Kill(pid, unix.SIGKILL)
		_, _ = unix.Wait4(pid, nil, 0, nil)
	})
	return pid
}

func TestSharedPIDNamespace(t *testing.T) {
	testutil.RequireRoot(t)
	reaper := startTestReaper(t)
	helperSum := fileSHA256(t, testHelper(t))
	lower := makeBusyboxLower(t, t.TempDir())
	shared := []specs.LinuxNamespace{{Type: specs.PIDNamespace, Path: fmt.Sprintf("/proc/%d/ns/pid", reaper)}, {Type: specs.MountNamespace}}
	a := newTestContainer(t, lower, "sleep", "30")
	a.OCI.Linux.Namespaces = shared
	if _, err := startTestContainer(t, a); err != nil {
		t.Fatalf("failed to start first container: %v", err)
	}
	b := newTestContainer(t, lower)
	b.OCI.Linux.Namespaces = shared
	out := runScript(t, b, `for p in /proc/[0-9]*; do echo "$p $(tr '\0' ' ' < $p/cmdline)"; done; `+
		`cat /proc/1/exe > /dev/null 2>&1; echo read=$?; echo x >> /proc/1/exe; echo write=$?; sleep 1 & exit 0`)
	if !strings.Contains(out, "/proc/1 "+testHelper(t)+" reaper") {
		t.Errorf("PID 1 is not the reaper:\n%s", out)
	}
	if !strings.Contains(out, "sleep 30") {
		t.Errorf("the first container's process is not visible:\n%s", out)
	}
	if !strings.Contains(out, "read=1") || !strings.Contains(out, "write=1") {
		t.Errorf("the reaper's /proc/1/exe is reachable from the container:\n%s", out)
	}
	if fileSHA256(t, testHelper(t)) != helperSum {
		t.Fatalf("the helper binary changed")
	}
	// The orphaned `sleep 1` was reparented to the reaper, which must reap it.
	children := fmt.Sprintf("/proc/%d/task/%d/children", reaper, reaper)
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(children)
		if err != nil {
			t.Fatalf("failed to read %s: %v", children, err)
		}
		if strings.TrimSpace(string(b)) == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reaper still has children %q", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func BenchmarkStartContainer(b *testing.B) {
	testutil.RequireRoot(b)
	lower := makeBusyboxLower(b, b.TempDir())
	c := newTestContainer(b, lower, "true")
	helper := testHelper(b)
	pod := &spec.Pod{Name: "bench"}
	defer reportChildCPU(b)()
	for b.Loop() {
		startAndWait(b, helper, pod, c)
	}
}

// startAndWait starts c and waits for it to exit 0.
func startAndWait(b *testing.B, helper string, pod *spec.Pod, c *spec.Container) {
	b.Helper()
	pid, err := namespaces.StartContainer(helper, pod, c, [3]*os.File{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
		b.Fatalf("wait4 = %v, status %#x", err, ws)
	}
}

func TestFileBindMount(t *testing.T) {
	testutil.RequireRoot(t)
	hosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("10.0.0.2 testpod\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := newTestContainer(t, makeBusyboxLower(t, t.TempDir()))
	c.OCI.Mounts = append(c.OCI.Mounts, specs.Mount{Destination: "/etc/hosts", Type: "bind", Source: hosts, Options: []string{"rbind", "ro"}})
	out := runScript(t, c, "cat /etc/hosts; { echo x >> /etc/hosts; } 2>/dev/null; echo rc=$?")
	if out != "10.0.0.2 testpod\nrc=1\n" {
		t.Errorf("file bind inside the container: %q", out)
	}
}

func TestCwdThroughLeakedFdRefused(t *testing.T) {
	testutil.RequireRoot(t)
	lower := makeBusyboxLower(t, t.TempDir())
	// CVE-2024-21626: no runtime descriptor may serve as a way out.
	for fd := 3; fd <= 8; fd++ {
		c := newTestContainer(t, lower, "true")
		c.OCI.Process.Cwd = fmt.Sprintf("/proc/self/fd/%d", fd)
		if _, _, err := runTestContainer(t, c); err == nil || errors.Is(err, namespaces.ErrExecNotFound) {
			t.Errorf("cwd %q: StartContainer = %v, want a working-directory error", c.OCI.Process.Cwd, err)
		}
	}
}
