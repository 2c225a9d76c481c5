package cgroups_test

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/peapod/peapod/cgroups"
	"github.com/peapod/peapod/internal/procfs"
	"github.com/peapod/peapod/internal/testutil"
)

// drivers are the drivers this hybrid host serves; v2 uses its
// controller-less /sys/fs/cgroup/unified tree.
var drivers = []string{cgroups.DriverV1, cgroups.DriverV2}

// testParent returns a unique parent name so parallel runs never collide.
func testParent(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "peapod-test-" + hex.EncodeToString(b)
}

// newTestCgroup creates <unique parent>/pod/ctr and removes the whole tree
// in t.Cleanup, killing whatever is left in it.
func newTestCgroup(t *testing.T, driver string) (cgroups.Driver, string) {
	t.Helper()
	d, err := cgroups.New(driver, cgroups.DefaultMountRoot)
	if err != nil {
		t.Fatalf("New(%q): %v", driver, err)
	}
	if d.Name() != driver {
		t.Fatalf("New(%q).Name() = %q", driver, d.Name())
	}
	parent := testParent(t)
	path := parent + "/pod/ctr"
	t.Cleanup(func() {
		if err := d.DestroyTree(path); err != nil {
			t.Errorf("cleanup: DestroyTree(%q): %v", path, err)
		}
	})
	if err := d.Create(path); err != nil {
		t.Fatalf("Create(%q): %v", path, err)
	}
	return d, path
}

// procIdentity is a pid plus its start time, so a reused pid is never
// mistaken for the process it replaced.
type procIdentity struct {
	pid   int
	start uint64
}

// dead reports whether the process is gone: no /proc entry, a zombie, or
// its pid reused by another process.
func (p procIdentity) dead() bool {
	st, err := procfs.ReadStat(p.pid)
	return errors.Is(err, fs.ErrNotExist) || st.State == 'Z' || st.StartTime != p.start
}

// comm reads a process's command name.
func comm(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(data))
}

// startEscapee starts a shell that waits on stdin, so the test can put it
// in the cgroup before it forks, then spawns a TERM-immune sleep in a new
// session (the double-fork a container uses to escape its parent) and a
// second sleep of its own.
func startEscapee(t *testing.T, d cgroups.Driver, path string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sh", "-c", `read _; i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; setsid sh -c "trap '' TERM; sleep 1000" & sleep 1000`)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("failed to start shell: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	if err := d.Join(path, cmd.Process.Pid); err != nil {
		t.Fatalf("Join(%q, %d): %v", path, cmd.Process.Pid, err)
	}
	if _, err := stdin.Write([]byte("\n")); err != nil {
		t.Fatalf("failed to release shell: %v", err)
	}
	return cmd
}

// waitSleeps polls (no event exists for "a process joined") until both
// sleeps are in the cgroup and returns every process found there.
func waitSleeps(t *testing.T, d cgroups.Driver, path string) []procIdentity {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids, err := d.Pids(path)
		if err != nil {
			t.Fatalf("Pids(%q): %v", path, err)
		}
		var procs []procIdentity
		sleeps := 0
		for _, pid := range pids {
			if comm(pid) == "sleep" {
				sleeps++
			}
			if st, err := procfs.ReadStat(pid); err == nil {
				procs = append(procs, procIdentity{pid: pid, start: st.StartTime})
			}
		}
		if sleeps == 2 {
			return procs
		}
		if time.Now().After(deadline) {
			t.Fatalf("want 2 sleeps in cgroup %q, have pids %v", path, pids)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestKillReachesEscapedProcesses(t *testing.T) {
	testutil.RequireRoot(t)
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			d, path := newTestCgroup(t, driver)
			cmd := startEscapee(t, d, path)
			procs := waitSleeps(t, d, path)

			usec, err := d.CPUStat(path)
			if err != nil {
				t.Fatalf("CPUStat(%q): %v", path, err)
			}
			if usec <= 0 {
				t.Errorf("CPUStat(%q) = %d after a busy loop, want > 0", path, usec)
			}

			if err := d.Kill(path); err != nil {
				t.Fatalf("Kill(%q): %v", path, err)
			}
			err = cmd.Wait()
			var exitErr *exec.ExitError
			if !errors.As(err, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Errorf("shell ended with %v, want SIGKILL", err)
			}
			// Orphans are reaped by init on its own schedule: poll.
			deadline := time.Now().Add(5 * time.Second)
			for _, p := range procs {
				for !p.dead() {
					if time.Now().After(deadline) {
						t.Fatalf("pid %d (%s) survived Kill", p.pid, comm(p.pid))
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
		})
	}
}

func TestDestroyRemovesAndIsIdempotent(t *testing.T) {
	testutil.RequireRoot(t)
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			d, path := newTestCgroup(t, driver)
			cmd := startEscapee(t, d, path)
			procs := waitSleeps(t, d, path)
			dirs := procsDirs(d.ProcsFiles(path))

			if err := d.Destroy(path); err != nil {
				t.Fatalf("Destroy(%q): %v", path, err)
			}
			_ = cmd.Wait()
			for _, p := range procs {
				if !p.dead() {
					// Destroy waited for the cgroup to empty; only a zombie
					// awaiting its reaper may remain, which dead() accepts.
					t.Errorf("pid %d (%s) alive after Destroy", p.pid, comm(p.pid))
				}
			}
			for _, dir := range dirs {
				if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("cgroup %q still there after Destroy (stat: %v)", dir, err)
				}
			}
			if err := d.Destroy(path); err != nil {
				t.Errorf("second Destroy(%q) = %v, want nil", path, err)
			}
			if err := d.Kill(path); err != nil {
				t.Errorf("Kill of removed cgroup %q = %v, want nil", path, err)
			}
			if err := d.DestroyTree(path); err != nil {
				t.Fatalf("DestroyTree(%q): %v", path, err)
			}
			for _, dir := range dirs {
				top := filepath.Dir(filepath.Dir(dir))
				if _, err := os.Stat(top); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("parent %q still there after DestroyTree (stat: %v)", top, err)
				}
			}
		})
	}
}

// procsDirs returns the cgroup directories of cgroup.procs files.
func procsDirs(files []string) []string {
	dirs := make([]string, len(files))
	for i, f := range files {
		dirs[i] = filepath.Dir(f)
	}
	return dirs
}

func TestJoinPutsProcessInEveryHierarchy(t *testing.T) {
	testutil.RequireRoot(t)
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			d, path := newTestCgroup(t, driver)
			startEscapee(t, d, path)
			procs := waitSleeps(t, d, path)
			files := d.ProcsFiles(path)
			if driver == cgroups.DriverV1 && len(files) < 2 {
				t.Fatalf("v1 ProcsFiles = %v, want one per used hierarchy", files)
			}
			for _, f := range files {
				if !fileHasPid(t, f, procs[0].pid) {
					t.Errorf("pid %d not in %q", procs[0].pid, f)
				}
			}
		})
	}
}

func fileHasPid(t *testing.T, file string, pid int) bool {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if sc.Text() == fmt.Sprint(pid) {
			return true
		}
	}
	return false
}

// TestSetLimitsLand writes a Burstable container's limits and reads them
// back from the kernel's files: on v1 each controller's hierarchy; on this
// hybrid host's controller-less cgroup2 tree, a clear refusal.
func TestSetLimitsLand(t *testing.T) {
	testutil.RequireRoot(t)
	res := cgroups.Resources{CPUShares: 256, CPUQuota: 50000, CPUPeriod: 100000, MemoryLimit: 64 << 20, PidsLimit: 100}
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			d, path := newTestCgroup(t, driver)
			err := d.Set(path, res)
			if driver == cgroups.DriverV2 {
				if mode, _ := cgroups.Detect(cgroups.DefaultMountRoot); mode == cgroups.ModeHybrid {
					if !errors.Is(err, cgroups.ErrNoController) {
						t.Fatalf("Set on the hybrid cgroup2 tree: err %v, want ErrNoController", err)
					}
					// The BestEffort minimum is no error there.
					if err := d.Set(path, cgroups.Resources{CPUShares: 2}); err != nil {
						t.Fatalf("Set(best effort): %v", err)
					}
					return
				}
			}
			if err != nil {
				t.Fatalf("Set: %v", err)
			}
			want := map[string]map[string]string{
				cgroups.DriverV1: {"cpu/cpu.shares": "256", "cpu/cpu.cfs_period_us": "100000", "cpu/cpu.cfs_quota_us": "50000",
					"memory/memory.limit_in_bytes": "67108864", "pids/pids.max": "100"},
				cgroups.DriverV2: {"cpu/cpu.weight": "10", "cpu/cpu.max": "50000 100000", "memory/memory.max": "67108864", "pids/pids.max": "100"},
			}[driver]
			for key, val := range want {
				ctrl, file, _ := strings.Cut(key, "/")
				dir, err := d.Dir(ctrl, path)
				if err != nil {
					t.Fatal(err)
				}
				data, err := os.ReadFile(filepath.Join(dir, file))
				if err != nil {
					t.Fatal(err)
				}
				if got := strings.TrimSpace(string(data)); got != val {
					t.Errorf("%s = %q, want %q", file, got, val)
				}
			}
			// memsw exists only with swap accounting; where it does, swap
			// must not stretch the limit.
			if driver == cgroups.DriverV1 {
				dir, _ := d.Dir("memory", path)
				if data, err := os.ReadFile(filepath.Join(dir, "memory.memsw.limit_in_bytes")); err == nil && strings.TrimSpace(string(data)) != "67108864" {
					t.Errorf("memory.memsw.limit_in_bytes = %s, want the memory limit", data)
				}
			}
		})
	}
}

// BenchmarkCreateSetDestroy is a container cgroup's life with and without
// a Burstable container's limits: what limits add to a pod cycle.
func BenchmarkCreateSetDestroy(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	res := cgroups.Resources{CPUShares: 256, CPUQuota: 50000, CPUPeriod: 100000, MemoryLimit: 64 << 20}
	for _, tt := range []struct {
		name string
		res  *cgroups.Resources
	}{{"no-limits", nil}, {"limits", &res}} {
		b.Run(tt.name, func(b *testing.B) {
			d, err := cgroups.New(cgroups.DriverV1, cgroups.DefaultMountRoot)
			if err != nil {
				b.Skip(err)
			}
			parent := "peapod-bench-" + strconv.Itoa(os.Getpid())
			for i := 0; i < b.N; i++ {
				path := parent + "/pod/ctr"
				if err := d.Create(path); err != nil {
					b.Fatal(err)
				}
				if tt.res != nil {
					if err := d.Set(path, *tt.res); err != nil {
						b.Fatal(err)
					}
				}
				if err := d.DestroyTree(path); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
