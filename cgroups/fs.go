package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/ktrace"
)

// cgroupFS is the file operations the drivers make on cgroupfs. Tests swap
// in a fake whose files behave like the kernel's (mkdir populates the
// control files, subtree_control takes +/- tokens, rmdir drops them).
type cgroupFS interface {
	ReadFile(name string) ([]byte, error)
	// WriteFile writes data with one write(2) to an existing file.
	WriteFile(name, data string) error
	Mkdir(name string) error
	Rmdir(name string) error
}

// hostFS is the real cgroupfs.
type hostFS struct{}

func (hostFS) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }

func (hostFS) WriteFile(name, data string) error {
	return ktrace.Do("cgroup write", name+" <- "+strings.TrimSpace(data), func() error { return writeFile(name, data) })
}

// writeFile is hostFS.WriteFile untraced.
func writeFile(name, data string) error {
	// No O_CREAT: cgroupfs refuses to create files, and a missing control
	// file must surface as ENOENT (e.g. cgroup.kill before Linux 5.14).
	f, err := os.OpenFile(name, os.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	// cgroupfs parses each write(2) as one command: write it whole.
	_, werr := f.WriteString(data)
	cerr := f.Close()
	return errors.Join(werr, cerr)
}

func (hostFS) Mkdir(name string) error {
	return ktrace.DoUnless("cgroup mkdir", name, func() error { return os.Mkdir(name, 0o755) }, os.ErrExist)
}

func (hostFS) Rmdir(name string) error {
	return ktrace.Do("cgroup rmdir", name, func() error { return unix.Rmdir(name) })
}

// mkdirAttempts bounds mkdirAll's restarts.
const mkdirAttempts = 5

// mkdirAll creates dir and its missing parents below root, calling before
// on each existing or created parent before creating its child.
//
// A shared parent (the root's peapod-<id>, a QoS class's cgroup) is removed
// by whoever removes its last child (removeEmptyParents), without a lock:
// between our mkdir of the parent and that of its child the parent may be
// gone, and mkdir answers ENOENT. Walking down again from the root makes it
// anew; a child in it stops the next removal (EBUSY).
func mkdirAll(fsys cgroupFS, root, rel string, before func(parent string) error) error {
	var err error
	for range mkdirAttempts {
		if err = mkdirOnce(fsys, root, rel, before); !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return err
}

func mkdirOnce(fsys cgroupFS, root, rel string, before func(parent string) error) error {
	cur := root
	for _, c := range strings.Split(rel, "/") {
		if before != nil {
			if err := before(cur); err != nil {
				return err
			}
		}
		cur = filepath.Join(cur, c)
		if err := fsys.Mkdir(cur); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("failed to create cgroup %q: %w", cur, err)
		}
	}
	return nil
}

// readProcs parses one cgroup.procs file.
func readProcs(fsys cgroupFS, file string) ([]int, error) {
	data, err := fsys.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("failed to parse pid %q in %q: %w", f, file, err)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// treePids lists the pids in dir and every cgroup below it. A missing dir
// is reported as fs.ErrNotExist; descendants vanishing meanwhile are not.
func treePids(fsys cgroupFS, dir string) ([]int, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("failed to list processes of cgroup %q: %w", dir, err)
	}
	seen := map[int]bool{}
	err := walkDirs(dir, func(d string) error {
		pids, err := readProcs(fsys, filepath.Join(d, "cgroup.procs"))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("failed to list processes of cgroup %q: %w", d, err)
		}
		for _, p := range pids {
			seen[p] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	pids := make([]int, 0, len(seen))
	for p := range seen {
		pids = append(pids, p)
	}
	sort.Ints(pids)
	return pids, nil
}

// walkDirs calls fn on dir and every directory below it, parents first.
func walkDirs(dir string, fn func(string) error) error {
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			// A child cgroup removed while walking is not an error.
			if errors.Is(err, fs.ErrNotExist) && p != dir {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		return fn(p)
	})
	return err
}

// removeTree removes dir and every cgroup below it, leaf first. A missing
// dir is success, so teardown can run any number of times.
func removeTree(fsys cgroupFS, dir string) error {
	var dirs []string
	err := walkDirs(dir, func(d string) error {
		dirs = append(dirs, d)
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to list cgroup %q: %w", dir, err)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := rmdirRetry(fsys, dirs[i]); err != nil {
			return err
		}
	}
	return nil
}

// rmdirRetry removes a cgroup directory, retrying EBUSY for a moment: a
// process that just died can still pin its cgroup until the kernel has
// finished its exit (or its parent has reaped it), and there is no event
// for that on v1.
func rmdirRetry(fsys cgroupFS, dir string) error {
	deadline := time.Now().Add(rmdirBusyTimeout)
	delay := 100 * time.Microsecond
	for {
		err := fsys.Rmdir(dir)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("failed to remove cgroup %q: %w", dir, err)
		}
		time.Sleep(delay)
		delay = min(2*delay, pollInterval)
	}
}

// rmdirBusyTimeout bounds rmdirRetry.
const rmdirBusyTimeout = 2 * time.Second

// removeEmptyParents removes the parents of rel below root that are left
// empty, deepest first, stopping at the first one still in use.
func removeEmptyParents(fsys cgroupFS, root, rel string) error {
	for p := filepath.Dir(rel); p != "."; p = filepath.Dir(p) {
		dir := filepath.Join(root, p)
		err := fsys.Rmdir(dir)
		switch {
		case err == nil, errors.Is(err, fs.ErrNotExist):
		// cgroupfs answers EBUSY for a cgroup with children or processes.
		case errors.Is(err, unix.EBUSY), errors.Is(err, unix.ENOTEMPTY):
			return nil
		default:
			return fmt.Errorf("failed to remove cgroup %q: %w", dir, err)
		}
	}
	return nil
}

// fields reads a space-separated control file such as cgroup.controllers.
func fields(fsys cgroupFS, file string) (map[string]bool, error) {
	data, err := fsys.ReadFile(file)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, f := range strings.Fields(string(data)) {
		set[f] = true
	}
	return set, nil
}
