package testutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSnapshotSeesKernelObjects creates one of each kind of object peapod
// can leak, checks the diff names every one, removes them and checks the
// diff is empty again.
func TestSnapshotSeesKernelObjects(t *testing.T) {
	RequireRoot(t)
	tmp := t.TempDir()
	// Unique per test process, so a concurrent run cannot collide; nft and
	// veth names accept neither "-" at the start nor more than 15 bytes.
	id := fmt.Sprintf("tu%d", os.Getpid())
	prefix := "peapod_" + id
	r := Roots{
		Root:           filepath.Join(tmp, "root"),
		RunRoot:        filepath.Join(tmp, "run"),
		CgroupPrefixes: []string{prefix},
		NftTablePrefix: prefix,
	}
	before := TakeSnapshot(t, r)

	var undo undoStack
	t.Cleanup(func() {
		if err := undo.run(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	shm := filepath.Join(r.RunRoot, "shm")
	makeTmpfs(t, &undo, shm)
	pin := filepath.Join(netnsDir, prefix)
	makeNetnsPin(t, &undo, pin)
	veth := "pp" + id + "a"
	run(t, "ip", "link", "add", veth, "type", "veth", "peer", "name", "pp"+id+"b")
	undo.push(func() error { return runIgnoring("Cannot find device", "ip", "link", "del", veth) })
	cgMount, cgDir := makeCgroup(t, &undo, prefix)
	inCgroup := startSleep(t, &undo, cgDir)
	outside := startSleep(t, &undo, "")
	run(t, "nft", "add", "table", "inet", prefix)
	undo.push(func() error {
		return runIgnoring("No such file or directory", "nft", "delete", "table", "inet", prefix)
	})
	lease := filepath.Join(r.Root, "net", "10.9.9.9")
	writeFile(t, lease, "ctr eth0")
	undo.push(func() error { return os.RemoveAll(filepath.Dir(lease)) })

	diff := before.Diff(TakeSnapshot(t, r))
	for _, want := range []string{
		"+ mounts: " + shm + " tmpfs ",
		"+ mounts: " + pin + " nsfs ",
		"+ netns: " + prefix,
		"+ links: " + veth + " ifindex=",
		"+ cgroups: " + cgMount + " /" + prefix,
		"+ nftables: table inet " + prefix,
		"+ leases: root:/net/10.9.9.9 owner=\"ctr eth0\"",
		"+ files: run-root:/shm dir",
		"+ files: root:/net/10.9.9.9 file",
		fmt.Sprintf("+ processes: pid=%d ", inCgroup),
	} {
		if !hasLinePrefix(diff, want) {
			t.Errorf("diff lacks %q; diff:\n%s", want, strings.Join(diff, "\n"))
		}
	}
	if hasLinePrefix(diff, fmt.Sprintf("+ processes: pid=%d ", outside)) {
		t.Errorf("diff lists the test's own non-peapod child %d; diff:\n%s", outside, strings.Join(diff, "\n"))
	}

	if err := undo.run(); err != nil {
		t.Fatalf("failed to remove the test objects: %v", err)
	}
	// The pinned netns and the veth pair are destroyed asynchronously by
	// the kernel: AssertNoLeak waits for it.
	AssertNoLeak(t, before, r)
}

// undoStack holds idempotent undo steps, run last-in first-out.
type undoStack struct {
	steps []func() error // in acquisition order
}

func (u *undoStack) push(f func() error) { u.steps = append(u.steps, f) }

// run undoes every step, also after one failed, and may run again.
func (u *undoStack) run() error {
	var errs []error
	for i := len(u.steps) - 1; i >= 0; i-- {
		errs = append(errs, u.steps[i]())
	}
	return errors.Join(errs...)
}

// unmount detaches p; not mounted (EINVAL) or missing is success.
func unmount(p string) error {
	err := unix.Unmount(p, unix.MNT_DETACH)
	if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return fmt.Errorf("failed to unmount %q: %w", p, err)
}

func makeTmpfs(t *testing.T, undo *undoStack, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	undo.push(func() error { return os.RemoveAll(dir) })
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatalf("failed to mount tmpfs on %q: %v", dir, err)
	}
	undo.push(func() error { return unmount(dir) })
}

// makeNetnsPin creates a network namespace and pins it at pin, the way
// `ip netns add` does, without `ip`'s one-time bind mount of /run/netns
// onto itself, which would outlive the test.
func makeNetnsPin(t *testing.T, undo *undoStack, pin string) {
	t.Helper()
	if _, err := os.Stat(netnsDir); errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(netnsDir, 0o755); err != nil {
			t.Fatal(err)
		}
		undo.push(func() error { return ignoreNotExist(os.Remove(netnsDir)) })
	}
	f, err := os.OpenFile(pin, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		t.Fatalf("failed to create netns pin %q: %v", pin, err)
	}
	f.Close()
	undo.push(func() error { return ignoreNotExist(os.Remove(pin)) })
	errc := make(chan error)
	go func() {
		// Never unlocked: this thread moves into the new namespace, and the
		// runtime discards a locked thread when its goroutine ends.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("failed to unshare netns: %w", err)
			return
		}
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		errc <- unix.Mount(self, pin, "", unix.MS_BIND, "")
	}()
	if err := <-errc; err != nil {
		t.Fatalf("failed to pin netns at %q: %v", pin, err)
	}
	undo.push(func() error { return unmount(pin) })
}

// makeCgroup creates a cgroup named name in the first cgroup2 hierarchy (or
// else the first v1 one) and returns the hierarchy's mount point and the
// cgroup's directory.
func makeCgroup(t *testing.T, undo *undoStack, name string) (mountPoint, dir string) {
	t.Helper()
	mounts, err := readMountinfo(mountinfoPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		if m.fsType == "cgroup2" || (m.fsType == "cgroup" && mountPoint == "") {
			mountPoint = m.mountPoint
		}
		if m.fsType == "cgroup2" {
			break
		}
	}
	if mountPoint == "" {
		t.Fatal("no cgroup hierarchy is mounted")
	}
	dir = filepath.Join(mountPoint, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("failed to create cgroup %q: %v", dir, err)
	}
	undo.push(func() error { return ignoreNotExist(os.Remove(dir)) })
	return mountPoint, dir
}

// startSleep starts a long sleep, moved into cgroupDir unless it is empty,
// and returns its PID; the undo kills and reaps it.
func startSleep(t *testing.T, undo *undoStack, cgroupDir string) int {
	t.Helper()
	cmd := exec.Command("sleep", "1000")
	if err := cmd.Start(); err != nil {
		t.Fatalf("failed to start sleep: %v", err)
	}
	undo.push(func() error {
		if cmd.ProcessState != nil {
			return nil
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait() // killed on purpose: its exit status says so
		return nil
	})
	if cgroupDir != "" {
		procs := filepath.Join(cgroupDir, "cgroup.procs")
		if err := os.WriteFile(procs, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
			t.Fatalf("failed to move sleep into %q: %v", procs, err)
		}
	}
	return cmd.Process.Pid
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// runIgnoring runs a removal command; output containing notFound means it
// was already gone.
func runIgnoring(notFound, name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil && !strings.Contains(string(out), notFound) {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func ignoreNotExist(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func hasLinePrefix(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}
