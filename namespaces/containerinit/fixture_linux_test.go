package containerinit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/namespaces"
	"github.com/peapod/peapod/runtime/spec"
)

// testHelper is the binary StartContainer re-execs: this test binary.
func testHelper(tb testing.TB) string {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatalf("failed to find test binary: %v", err)
	}
	return exe
}

// busyboxApplets are linked into every test rootfs.
var busyboxApplets = []string{"sh", "ls", "cat", "echo", "grep", "mount", "sleep", "true", "wc", "id",
	"readlink", "head", "hostname", "stat", "touch", "tr"}

// defaultCaps are the Kubernetes/Docker default capabilities.
var defaultCaps = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}

// testMaskedPaths and testReadonlyPaths are runc's defaults.
var (
	testMaskedPaths = []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"}
	testReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// makeBusyboxLower builds a one-layer busybox image in dir/lower.
func makeBusyboxLower(t testing.TB, dir string) string {
	t.Helper()
	lower := filepath.Join(dir, "lower")
	for _, d := range []string{"bin", "etc", "proc", "sys", "tmp", "mnt"} {
		if err := os.MkdirAll(filepath.Join(lower, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("busybox is needed for this test: %v", err)
	}
	if err := os.WriteFile(filepath.Join(lower, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range busyboxApplets {
		if err := os.Symlink("busybox", filepath.Join(lower, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	passwd := "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
	if err := os.WriteFile(filepath.Join(lower, "etc/passwd"), []byte(passwd), 0o644); err != nil {
		t.Fatal(err)
	}
	return lower
}

// newTestContainer is a container over lower with peapod's default
// isolation, fresh namespaces and a new UTS named "testpod".
func newTestContainer(t testing.TB, lower string, args ...string) *spec.Container {
	t.Helper()
	dir := t.TempDir()
	caps := &specs.LinuxCapabilities{Bounding: defaultCaps, Effective: defaultCaps, Permitted: defaultCaps}
	return &spec.Container{
		Name:   "test",
		ID:     "test-" + filepath.Base(dir),
		Rootfs: spec.Rootfs{Lowers: []string{lower}, Upper: filepath.Join(dir, "upper"), Work: filepath.Join(dir, "work")},
		OCI: specs.Spec{
			Root:     &specs.Root{Path: filepath.Join(dir, "rootfs")},
			Hostname: "testpod",
			Process: &specs.Process{
				Args: args, Env: []string{"PATH=/bin"}, Cwd: "/",
				NoNewPrivileges: true, Capabilities: caps,
			},
			Mounts: defaultTestMounts(),
			Linux: &specs.Linux{
				Namespaces: []specs.LinuxNamespace{
					{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace},
					{Type: specs.IPCNamespace}, {Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
				},
				MaskedPaths:   testMaskedPaths,
				ReadonlyPaths: testReadonlyPaths,
			},
		},
	}
}

// defaultTestMounts are the mounts of container-isolation.md §2.
func defaultTestMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
	}
}

// testPod is the pod the test containers belong to.
var testPod = &spec.Pod{Version: spec.Version, Name: "testpod", UID: "test-uid"}

// startedContainer is a running test container.
type startedContainer struct {
	// pid is the container's pid in the test's pid namespace.
	pid int
	// out is the read end of the pipe holding its stdout and stderr.
	out *os.File
	// mu guards reaped.
	mu sync.Mutex
	// reaped is set once pid has been waited for, so it is never signalled again.
	reaped bool
}

// startTestContainer starts c with stdout/stderr on a pipe; a Cleanup
// kills and reaps it if the test has not.
func startTestContainer(t testing.TB, c *spec.Container) (*startedContainer, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	pid, err := namespaces.StartContainer(testHelper(t), testPod, c, [3]*os.File{nil, w, w}, nil)
	w.Close()
	if err != nil {
		r.Close()
		return nil, err
	}
	sc := &startedContainer{pid: pid, out: r}
	t.Cleanup(func() {
		sc.kill()
		sc.wait()
		r.Close()
	})
	return sc, nil
}

// kill SIGKILLs the container unless it was reaped already.
func (sc *startedContainer) kill() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if !sc.reaped {
		_ = unix.Kill(sc.pid, unix.SIGKILL)
	}
}

// wait reaps the container and returns its wait status.
func (sc *startedContainer) wait() unix.WaitStatus {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(sc.pid, &ws, 0, nil)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	sc.mu.Lock()
	sc.reaped = true
	sc.mu.Unlock()
	return ws
}

// runTestContainer runs c to completion (killing it after 20s) and
// returns its combined output and wait status.
func runTestContainer(t testing.TB, c *spec.Container) (string, unix.WaitStatus, error) {
	t.Helper()
	sc, err := startTestContainer(t, c)
	if err != nil {
		return "", 0, err
	}
	timer := time.AfterFunc(20*time.Second, sc.kill)
	defer timer.Stop()
	out, err := io.ReadAll(sc.out)
	if err != nil {
		t.Fatalf("failed to read container output: %v", err)
	}
	return string(out), sc.wait(), nil
}

// runScript runs `sh -c script` in c and fails the test unless it exits 0.
func runScript(t testing.TB, c *spec.Container, script string) string {
	t.Helper()
	c.OCI.Process.Args = []string{"sh", "-c", script}
	out, ws, err := runTestContainer(t, c)
	if err != nil {
		t.Fatalf("failed to start container: %v", err)
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		t.Fatalf("script %q ended with status %#x, output:\n%s", script, ws, out)
	}
	return out
}

// pinTestNamespaces creates fresh net, uts (hostname "pinnedpod") and ipc
// namespaces and pins them by bind mounts in a temp dir, as the sandbox
// does; Cleanup unmounts them.
func pinTestNamespaces(t testing.TB) map[specs.LinuxNamespaceType]string {
	t.Helper()
	dir := t.TempDir()
	pins := map[specs.LinuxNamespaceType]string{
		specs.NetworkNamespace: filepath.Join(dir, "net"),
		specs.UTSNamespace:     filepath.Join(dir, "uts"),
		specs.IPCNamespace:     filepath.Join(dir, "ipc"),
	}
	procNames := map[specs.LinuxNamespaceType]string{specs.NetworkNamespace: "net", specs.UTSNamespace: "uts", specs.IPCNamespace: "ipc"}
	for typ, p := range pins {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				t.Errorf("failed to unpin %s namespace %q: %v", typ, p, err)
			}
		})
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with its namespaces
		if err := unix.Unshare(unix.CLONE_NEWNET | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		if err := unix.Sethostname([]byte("pinnedpod")); err != nil {
			errc <- fmt.Errorf("sethostname: %w", err)
			return
		}
		tid := unix.Gettid()
		for typ, p := range pins {
			src := fmt.Sprintf("/proc/self/task/%d/ns/%s", tid, procNames[typ])
			if err := unix.Mount(src, p, "", unix.MS_BIND, ""); err != nil {
				errc <- fmt.Errorf("pin %s: %w", src, err)
				return
			}
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatalf("failed to pin test namespaces: %v", err)
	}
	return pins
}

// nsInode is the inode of a namespace file.
func nsInode(t testing.TB, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatalf("failed to stat %q: %v", path, err)
	}
	return st.Ino
}
