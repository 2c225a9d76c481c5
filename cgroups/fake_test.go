package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeFS is a temp-dir cgroupfs whose files behave like the kernel's where
// the drivers depend on it: mkdir populates the control files (a v2 child's
// cgroup.controllers is its parent's subtree_control), subtree_control
// takes +/- tokens for delegated controllers only, rmdir refuses a cgroup
// with children or processes and drops its control files.
type fakeFS struct {
	// v1 makes mkdir populate v1 control files instead of v2 ones.
	v1 bool
	// writes records every write as "<file relative to root>=<data>".
	writes []string
	// root is the temp dir the fake lives in.
	root string
	// noSwap makes mkdir leave out the swap files, as a kernel without
	// swap accounting does.
	noSwap bool
}

func newFakeFS(t *testing.T, v1 bool) *fakeFS {
	return &fakeFS{v1: v1, root: t.TempDir()}
}

func (f *fakeFS) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }

func (f *fakeFS) WriteFile(name, data string) error {
	rel, _ := filepath.Rel(f.root, name)
	f.writes = append(f.writes, rel+"="+data)
	switch filepath.Base(name) {
	case "cgroup.subtree_control":
		return f.writeSubtreeControl(name, data)
	case "cgroup.procs":
		file, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return err
		}
		defer file.Close()
		_, err = fmt.Fprintln(file, data)
		return err
	}
	file, err := os.OpenFile(name, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	defer file.Close()
	_, err = file.WriteString(data + "\n")
	return err
}

func (f *fakeFS) writeSubtreeControl(name, data string) error {
	avail, err := fields(f, filepath.Join(filepath.Dir(name), "cgroup.controllers"))
	if err != nil {
		return err
	}
	enabled, err := fields(f, name)
	if err != nil {
		return err
	}
	for _, tok := range strings.Fields(data) {
		c := tok[1:]
		if !avail[c] {
			return unix.ENOENT // what the kernel answers for an undelegated controller
		}
		enabled[c] = tok[0] == '+'
	}
	var on []string
	for c, ok := range enabled {
		if ok {
			on = append(on, c)
		}
	}
	sort.Strings(on)
	return os.WriteFile(name, []byte(strings.Join(on, " ")), 0o644)
}

func (f *fakeFS) Mkdir(name string) error {
	if err := os.Mkdir(name, 0o755); err != nil {
		return err
	}
	files := map[string]string{"cgroup.procs": ""}
	if f.v1 {
		files["freezer.state"] = "THAWED\n"
		files["cpuacct.usage"] = "0\n"
		// Every hierarchy gets every file: which hierarchy a write goes
		// to is checked by path.
		files["cpu.shares"] = "1024\n"
		files["cpu.cfs_period_us"] = "100000\n"
		files["cpu.cfs_quota_us"] = "-1\n"
		files["memory.limit_in_bytes"] = "9223372036854771712\n"
		files["pids.max"] = "max\n"
		files["memory.oom_control"] = "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"
		if !f.noSwap {
			files["memory.memsw.limit_in_bytes"] = "9223372036854771712\n"
		}
	} else {
		ctrl, err := os.ReadFile(filepath.Join(filepath.Dir(name), "cgroup.subtree_control"))
		if err != nil {
			return err
		}
		files["cgroup.controllers"] = string(ctrl)
		files["cgroup.subtree_control"] = ""
		files["cgroup.events"] = "populated 0\nfrozen 0\n"
		files["cgroup.kill"] = ""
		files["cpu.stat"] = "usage_usec 0\n"
		// A controller's files exist where the parent enabled it.
		enabled := strings.Fields(string(ctrl))
		if slices.Contains(enabled, "cpu") {
			files["cpu.weight"] = "100\n"
			files["cpu.max"] = "max 100000\n"
		}
		if slices.Contains(enabled, "memory") {
			files["memory.max"] = "max\n"
			files["memory.events"] = "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"
			if !f.noSwap {
				files["memory.swap.max"] = "max\n"
			}
		}
		if slices.Contains(enabled, "pids") {
			files["pids.max"] = "max\n"
		}
	}
	for n, content := range files {
		if err := os.WriteFile(filepath.Join(name, n), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeFS) Rmdir(name string) error {
	entries, err := os.ReadDir(name)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			return unix.EBUSY
		}
	}
	if pids, _ := readProcs(f, filepath.Join(name, "cgroup.procs")); len(pids) > 0 {
		return unix.EBUSY
	}
	for _, e := range entries {
		if err := os.Remove(filepath.Join(name, e.Name())); err != nil {
			return err
		}
	}
	return unix.Rmdir(name)
}

// initRoot writes a hierarchy root's control files.
func (f *fakeFS) initRoot(t *testing.T, dir, controllers string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for n, content := range map[string]string{
		"cgroup.controllers":     controllers,
		"cgroup.subtree_control": "",
		"cgroup.procs":           "",
	} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// fakeStatfs answers statfs from a table; a missing path is ENOENT.
type fakeStatfs map[string]int64

func (f fakeStatfs) FSType(p string) (int64, error) {
	t, ok := f[p]
	if !ok {
		return 0, fmt.Errorf("statfs %q: %w", p, fs.ErrNotExist)
	}
	return t, nil
}

// readString reads a file or fails the test.
func readString(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

func exists(name string) bool {
	_, err := os.Stat(name)
	return !errors.Is(err, fs.ErrNotExist)
}
