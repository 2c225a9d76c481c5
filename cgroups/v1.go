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
)

// v1Controllers are the controllers peapod uses on v1. Every other
// hierarchy (hugetlb, blkio, net_cls, one mounted later by a benchmark) is
// left alone, so extra or absent hierarchies do not matter.
var v1Controllers = []string{"freezer", "devices", "pids", "memory", "cpu", "cpuacct", "name=systemd"}

// freezeTimeout bounds the wait for FREEZING to become FROZEN; a task in
// uninterruptible sleep can hold a cgroup in FREEZING indefinitely.
const freezeTimeout = time.Second

// hierarchy is one mounted v1 hierarchy peapod uses.
type hierarchy struct {
	// mountpoint is the hierarchy's root directory.
	mountpoint string
	// controllers are the used controllers it carries (cpu,cpuacct are
	// often co-mounted).
	controllers []string
}

// v1Driver manages a cgroup as one directory in each used hierarchy.
type v1Driver struct {
	// fs performs the file operations.
	fs cgroupFS
	// hierarchies are the used hierarchies, each once.
	hierarchies []hierarchy
	// byController maps a controller to its hierarchy's mountpoint.
	byController map[string]string
}

var _ Driver = (*v1Driver)(nil)

func newV1(mountRoot string, e env) (*v1Driver, error) {
	mounts, err := e.mounts()
	if err != nil {
		return nil, err
	}
	v := &v1Driver{fs: e.fs, byController: map[string]string{}}
	seen := map[string]bool{}
	for _, m := range mounts {
		if m.fstype != "cgroup" || !under(m.mountpoint, mountRoot) || seen[m.dev] {
			continue
		}
		h := hierarchy{mountpoint: m.mountpoint}
		for _, c := range v1Controllers {
			if contains(m.superOpts, c) && v.byController[c] == "" {
				h.controllers = append(h.controllers, c)
				v.byController[c] = m.mountpoint
			}
		}
		if len(h.controllers) == 0 {
			continue
		}
		seen[m.dev] = true
		v.hierarchies = append(v.hierarchies, h)
	}
	// Without the freezer a process could fork between the listing of a
	// cgroup and the SIGKILL, escaping Kill.
	if v.byController["freezer"] == "" {
		return nil, fmt.Errorf("cgroup v1 freezer under %q: %w", mountRoot, ErrNoController)
	}
	return v, nil
}

func under(p, root string) bool {
	root = filepath.Clean(root)
	return p == root || strings.HasPrefix(p, root+"/")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (v *v1Driver) Name() string { return DriverV1 }

func (v *v1Driver) Create(p string) error {
	p, err := cleanPath(p)
	if err != nil {
		return err
	}
	for _, h := range v.hierarchies {
		if err := mkdirAll(v.fs, h.mountpoint, p, nil); err != nil {
			return err
		}
	}
	return nil
}

func (v *v1Driver) Join(p string, pid int) error {
	files := v.ProcsFiles(p)
	if files == nil {
		_, err := cleanPath(p)
		return err
	}
	for _, f := range files {
		if err := v.fs.WriteFile(f, strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("failed to move pid %d into cgroup %q: %w", pid, filepath.Dir(f), err)
		}
	}
	return nil
}

func (v *v1Driver) ProcsFiles(p string) []string {
	p, err := cleanPath(p)
	if err != nil {
		return nil
	}
	files := make([]string, 0, len(v.hierarchies))
	for _, h := range v.hierarchies {
		files = append(files, filepath.Join(h.mountpoint, p, "cgroup.procs"))
	}
	return files
}

func (v *v1Driver) Dir(controller, p string) (string, error) {
	p, err := cleanPath(p)
	if err != nil {
		return "", err
	}
	mp := v.byController[controller]
	if mp == "" {
		return "", fmt.Errorf("cgroup v1 controller %q: %w", controller, ErrNoController)
	}
	return filepath.Join(mp, p), nil
}

// Pids reads the freezer hierarchy: every process peapod puts in a cgroup
// joins all hierarchies, and the freezer is the one Kill works on.
func (v *v1Driver) Pids(p string) ([]int, error) {
	dir, err := v.Dir("freezer", p)
	if err != nil {
		return nil, err
	}
	return treePids(v.fs, dir)
}

// Kill freezes the cgroup so nothing forks, SIGKILLs every process, thaws
// it so the signals are delivered, and repeats until it is empty.
func (v *v1Driver) Kill(p string) error {
	dir, err := v.Dir("freezer", p)
	if err != nil {
		return err
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	k := killer{
		dir:    dir,
		list:   func() ([]int, error) { return treePids(v.fs, dir) },
		freeze: func() error { return v.freeze(dir) },
		thaw:   func() error { return v.setFreezer(dir, "THAWED") },
	}
	return k.run(time.Now().Add(drainTimeout))
}

// freeze asks for FROZEN and waits for it; the kernel offers no event for
// the FREEZING → FROZEN transition on v1, so it polls.
func (v *v1Driver) freeze(dir string) error {
	if err := v.setFreezer(dir, "FROZEN"); err != nil {
		return err
	}
	deadline := time.Now().Add(freezeTimeout)
	for {
		state, err := v.fs.ReadFile(filepath.Join(dir, "freezer.state"))
		if err != nil {
			return fmt.Errorf("failed to read freezer state of cgroup %q: %w", dir, err)
		}
		// Past the deadline kill anyway: the signals are still queued and
		// the next round catches anything forked meanwhile.
		if strings.TrimSpace(string(state)) == "FROZEN" || time.Now().After(deadline) {
			return nil
		}
		time.Sleep(pollInterval / 10)
	}
}

func (v *v1Driver) setFreezer(dir, state string) error {
	if err := v.fs.WriteFile(filepath.Join(dir, "freezer.state"), state); err != nil {
		return fmt.Errorf("failed to set cgroup %q to %s: %w", dir, state, err)
	}
	return nil
}

// Destroy kills (which on v1 already waits until the cgroup is empty) and
// removes the cgroup from every hierarchy.
func (v *v1Driver) Destroy(p string) error {
	p, err := cleanPath(p)
	if err != nil {
		return err
	}
	if err := v.Kill(p); err != nil {
		return err
	}
	var errs []error
	for _, h := range v.hierarchies {
		errs = append(errs, removeTree(v.fs, filepath.Join(h.mountpoint, p)))
	}
	return errors.Join(errs...)
}

func (v *v1Driver) DestroyTree(p string) error {
	if err := v.Destroy(p); err != nil {
		return err
	}
	var errs []error
	for _, h := range v.hierarchies {
		errs = append(errs, removeEmptyParents(v.fs, h.mountpoint, p))
	}
	return errors.Join(errs...)
}

// CPUStat reads cpuacct.usage (nanoseconds) and converts it to µs.
func (v *v1Driver) CPUStat(p string) (int64, error) {
	dir, err := v.Dir("cpuacct", p)
	if err != nil {
		return 0, err
	}
	file := filepath.Join(dir, "cpuacct.usage")
	data, err := v.fs.ReadFile(file)
	if err != nil {
		return 0, fmt.Errorf("failed to read %q: %w", file, err)
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("failed to parse %q: %w", file, err)
	}
	return ns / 1000, nil
}
