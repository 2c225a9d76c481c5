package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// v2Controllers are enabled down to peapod's cgroups on a pure unified host
// when the parent delegates them, so resource limits can be set later.
var v2Controllers = []string{"cpu", "memory", "pids"}

// v2Driver manages cgroups in a unified (cgroup2) hierarchy.
type v2Driver struct {
	// root is the hierarchy's mount point.
	root string
	// mode says whether root is the host's only hierarchy (unified) or the
	// controller-less tree of a hybrid host.
	mode Mode
	// fs performs the file operations.
	fs cgroupFS
}

var _ Driver = (*v2Driver)(nil)

func newV2(root string, mode Mode, fsys cgroupFS) *v2Driver {
	return &v2Driver{root: root, mode: mode, fs: fsys}
}

func (v *v2Driver) Name() string { return DriverV2 }

func (v *v2Driver) dir(p string) (string, error) {
	p, err := cleanPath(p)
	if err != nil {
		return "", err
	}
	return filepath.Join(v.root, p), nil
}

// Create makes the cgroup, enabling the delegated controllers in every
// parent on the way down on a pure unified host. Only the leaf ever gets
// processes, which keeps the "no internal processes" rule.
func (v *v2Driver) Create(p string) error {
	p, err := cleanPath(p)
	if err != nil {
		return err
	}
	var before func(string) error
	if v.mode == ModeUnified {
		before = v.enableControllers
	}
	return mkdirAll(v.fs, v.root, p, before)
}

// enableControllers turns on, in dir's cgroup.subtree_control, each wanted
// controller that dir's own parent delegated to it.
func (v *v2Driver) enableControllers(dir string) error {
	avail, err := fields(v.fs, filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return fmt.Errorf("failed to read controllers of cgroup %q: %w", dir, err)
	}
	control := filepath.Join(dir, "cgroup.subtree_control")
	enabled, err := fields(v.fs, control)
	if err != nil {
		return fmt.Errorf("failed to read subtree controllers of cgroup %q: %w", dir, err)
	}
	for _, c := range v2Controllers {
		if !avail[c] || enabled[c] {
			continue
		}
		// One controller per write: a refused one must not block the rest
		// from being reported precisely.
		if err := v.fs.WriteFile(control, "+"+c); err != nil {
			return fmt.Errorf("failed to enable controller %s in cgroup %q: %w", c, dir, err)
		}
	}
	return nil
}

// Join moves pid into the cgroup, unless it is there already: a child
// cloned into it (clone3's CLONE_INTO_CGROUP, see CloneTarget) needs no
// move, and the write would still take the kernel's threadgroup rwsem for
// writing, whose first taker after a quiet spell waits for an RCU grace
// period (10–15 ms measured on these machines).
func (v *v2Driver) Join(p string, pid int) error {
	dir, err := v.dir(p)
	if err != nil {
		return err
	}
	if inCgroup(pid, "/"+p) {
		return nil
	}
	if err := v.fs.WriteFile(filepath.Join(dir, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
		return fmt.Errorf("failed to move pid %d into cgroup %q: %w", pid, dir, err)
	}
	return nil
}

func (v *v2Driver) ProcsFiles(p string) []string {
	dir, err := v.dir(p)
	if err != nil {
		return nil
	}
	return []string{filepath.Join(dir, "cgroup.procs")}
}

// Dir ignores controller: every controller shares the unified directory.
func (v *v2Driver) Dir(_, p string) (string, error) { return v.dir(p) }

func (v *v2Driver) Pids(p string) ([]int, error) {
	dir, err := v.dir(p)
	if err != nil {
		return nil, err
	}
	return treePids(v.fs, dir)
}

// Kill writes cgroup.kill, which SIGKILLs the whole subtree and makes the
// kernel refuse forks in it meanwhile. It does not wait: Destroy does.
func (v *v2Driver) Kill(p string) error {
	dir, err := v.dir(p)
	if err != nil {
		return err
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	err = v.fs.WriteFile(filepath.Join(dir, "cgroup.kill"), "1")
	if err == nil {
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("failed to kill cgroup %q: %w", dir, err)
	}
	// Linux before 5.14 has no cgroup.kill: kill in rounds until empty.
	k := killer{dir: dir, list: func() ([]int, error) { return treePids(v.fs, dir) }}
	return k.run(time.Now().Add(drainTimeout))
}

func (v *v2Driver) Destroy(p string) error {
	dir, err := v.dir(p)
	if err != nil {
		return err
	}
	if err := v.Kill(p); err != nil {
		return err
	}
	if err := v.waitEmpty(dir, time.Now().Add(drainTimeout)); err != nil {
		return err
	}
	return removeTree(v.fs, dir)
}

func (v *v2Driver) DestroyTree(p string) error {
	if err := v.Destroy(p); err != nil {
		return err
	}
	return removeEmptyParents(v.fs, v.root, p)
}

// waitEmpty waits for "populated 0" in dir's cgroup.events, woken by
// inotify (the kernel signals IN_MODIFY on each change of that file).
func (v *v2Driver) waitEmpty(dir string, deadline time.Time) error {
	events := filepath.Join(dir, "cgroup.events")
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return fmt.Errorf("failed to create inotify instance: %w", err)
	}
	defer unix.Close(fd)
	// Watch before reading, so a change between the read and the poll
	// still wakes us.
	if _, err := unix.InotifyAddWatch(fd, events, unix.IN_MODIFY); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("failed to watch %q: %w", events, err)
	}
	buf := make([]byte, 4096)
	for {
		populated, err := v.populated(events)
		if err != nil || !populated {
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("failed to drain cgroup %q: %w", dir, ErrNotEmpty)
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(pfd, int(left.Milliseconds())+1); err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("failed to wait for cgroup %q to empty: %w", dir, err)
		}
		// Drain the queue; EAGAIN after a timeout is expected.
		_, _ = unix.Read(fd, buf)
	}
}

// populated reads the populated key of a cgroup.events file; a cgroup that
// no longer exists is not populated.
func (v *v2Driver) populated(events string) (bool, error) {
	val, err := readKey(v.fs, events, "populated")
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return val != 0, nil
}

// CPUStat reads usage_usec from cpu.stat, which cgroup2 keeps for every
// cgroup even where the cpu controller is not enabled.
func (v *v2Driver) CPUStat(p string) (int64, error) {
	dir, err := v.dir(p)
	if err != nil {
		return 0, err
	}
	return readKey(v.fs, filepath.Join(dir, "cpu.stat"), "usage_usec")
}

// readKey returns the integer value of key in a flat-keyed file such as
// cpu.stat or cgroup.events ("key value" per line).
func readKey(fsys cgroupFS, file, key string) (int64, error) {
	data, err := fsys.ReadFile(file)
	if err != nil {
		return 0, fmt.Errorf("failed to read %q: %w", file, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, val, ok := strings.Cut(line, " ")
		if !ok || k != key {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("failed to parse %s in %q: %w", key, file, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("no %s in %q: %w", key, file, ErrUnsupported)
}

// inCgroup reports whether /proc/PID/cgroup puts pid in the unified
// hierarchy's cgroup at path (relative to our cgroup namespace's root). An
// unreadable file says no: the caller then writes, which is always right.
func inCgroup(pid int, path string) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			return rest == path
		}
	}
	return false
}

// CloneTarget opens the cgroup at path for clone3's CLONE_INTO_CGROUP, so a
// child is born in it instead of being moved there (see v2Driver.Join): on
// the unified hierarchy only, the v1 hierarchies have no such thing, and
// for them it returns nil and no error. The caller closes the file.
func CloneTarget(d Driver, path string) (*os.File, error) {
	v, ok := d.(*v2Driver)
	if !ok {
		return nil, nil
	}
	dir, err := v.dir(path)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("failed to open cgroup %q to clone into: %w", dir, err)
	}
	return os.NewFile(uintptr(fd), dir), nil
}
