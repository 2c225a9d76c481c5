package cgroups

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestSharesToWeight(t *testing.T) {
	// runc's conversion: 2 → 1, 1024 (one CPU) → 39, 262144 → 10000.
	for _, tt := range []struct{ shares, weight uint64 }{
		{0, 0}, {1, 1}, {2, 1}, {102, 4}, {256, 10}, {1024, 39}, {262144, 10000}, {1 << 30, 10000},
	} {
		if got := SharesToWeight(tt.shares); got != tt.weight {
			t.Errorf("SharesToWeight(%d) = %d, want %d", tt.shares, got, tt.weight)
		}
	}
}

// limits is a Burstable container: 250m request, 500m limit, 64Mi.
var limits = Resources{CPUShares: 256, CPUQuota: 50000, CPUPeriod: 100000, MemoryLimit: 64 << 20}

func TestV1Set(t *testing.T) {
	for _, noSwap := range []bool{false, true} {
		t.Run(map[bool]string{false: "swap accounting", true: "no swap accounting"}[noSwap], func(t *testing.T) {
			fsys := newFakeFS(t, true)
			fsys.noSwap = noSwap
			root := fsys.root
			d, err := newDriver("v1", root, hybridEnv(t, root, fsys, v1Mounts(root)))
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range []string{"cpu,cpuacct", "freezer", "devices", "hugetlb", "memory", "systemd"} {
				fsys.initRoot(t, filepath.Join(root, h), "")
			}
			const path = "peapod-r1/pod/ctr"
			if err := d.Create(path); err != nil {
				t.Fatal(err)
			}
			fsys.writes = nil
			if err := d.Set(path, limits); err != nil {
				t.Fatalf("Set: %v", err)
			}
			want := []string{
				"cpu,cpuacct/" + path + "/cpu.shares=256",
				"cpu,cpuacct/" + path + "/cpu.cfs_period_us=100000",
				"cpu,cpuacct/" + path + "/cpu.cfs_quota_us=50000",
				"memory/" + path + "/memory.limit_in_bytes=67108864",
				"memory/" + path + "/memory.memsw.limit_in_bytes=67108864",
			}
			if got := strings.Join(fsys.writes, "\n"); got != strings.Join(want, "\n") {
				t.Errorf("writes =\n%s\nwant\n%s", got, strings.Join(want, "\n"))
			}
			mem := filepath.Join(root, "memory", path)
			if got := readString(t, filepath.Join(mem, "memory.limit_in_bytes")); got != "67108864" {
				t.Errorf("memory.limit_in_bytes = %s", got)
			}
			if !noSwap && readString(t, filepath.Join(mem, "memory.memsw.limit_in_bytes")) != "67108864" {
				t.Errorf("memsw not set to the memory limit: swap would be allowed")
			}
			// pids is mounted outside the root in v1Mounts: a pids limit
			// must fail naming the controller, not be dropped.
			err = d.Set(path, Resources{PidsLimit: 100})
			if !errors.Is(err, ErrNoController) || !strings.Contains(err.Error(), "pids.max") {
				t.Errorf("Set(pids) without a pids hierarchy: err %v, want ErrNoController naming pids.max", err)
			}
			// The default pod limit is skipped there instead.
			fsys.writes = nil
			if err := d.Set(path, Resources{CPUShares: 2, PidsLimit: 4096, PidsBestEffort: true}); err != nil {
				t.Errorf("Set(default pids) without a pids hierarchy: %v", err)
			}
			if want := "cpu,cpuacct/" + path + "/cpu.shares=2"; strings.Join(fsys.writes, "\n") != want {
				t.Errorf("writes = %q, want only %q", fsys.writes, want)
			}
		})
	}
}

func TestV2Set(t *testing.T) {
	tests := []struct {
		name      string
		mode      Mode
		rootCtrls string
		noSwap    bool
		res       Resources
		want      []string
		wantErr   string
	}{
		{name: "all delegated", mode: ModeUnified, rootCtrls: "cpu memory pids", res: limits,
			want: []string{"cpu.weight=10", "cpu.max=50000 100000", "memory.max=67108864", "memory.swap.max=0"}},
		{name: "no swap accounting", mode: ModeUnified, rootCtrls: "cpu memory pids", noSwap: true, res: limits,
			// Attempted (the fake records every write), missing, skipped.
			want: []string{"cpu.weight=10", "cpu.max=50000 100000", "memory.max=67108864", "memory.swap.max=0"}},
		{name: "pids", mode: ModeUnified, rootCtrls: "cpu memory pids", res: Resources{CPUShares: 2, PidsLimit: 4096},
			want: []string{"cpu.weight=1", "pids.max=4096"}},
		{name: "pids best effort, delegated", mode: ModeUnified, rootCtrls: "cpu memory pids", res: Resources{CPUShares: 2, PidsLimit: 4096, PidsBestEffort: true},
			want: []string{"cpu.weight=1", "pids.max=4096"}},
		{name: "best effort on a controller-less tree", mode: ModeHybrid, rootCtrls: "", res: Resources{CPUShares: 2}},
		{name: "default pids limit on a controller-less tree", mode: ModeHybrid, rootCtrls: "", res: Resources{CPUShares: 2, PidsLimit: 4096, PidsBestEffort: true}},
		{name: "pids limit asked for on a controller-less tree", mode: ModeHybrid, rootCtrls: "", res: Resources{CPUShares: 2, PidsLimit: 100},
			wantErr: "failed to set pids.max on cgroup"},
		{name: "pids not delegated", mode: ModeUnified, rootCtrls: "cpu memory", res: Resources{CPUShares: 2, PidsLimit: 100},
			wantErr: "controller pids not enabled"},
		{name: "memory limit on a controller-less tree", mode: ModeHybrid, rootCtrls: "", res: limits,
			wantErr: "failed to set cpu.weight on cgroup"},
		{name: "memory not delegated", mode: ModeUnified, rootCtrls: "cpu pids", res: Resources{CPUShares: 2, MemoryLimit: 64 << 20},
			wantErr: "controller memory not enabled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := newFakeFS(t, false)
			fsys.noSwap = tt.noSwap
			fsys.initRoot(t, fsys.root, tt.rootCtrls)
			d := newV2(fsys.root, tt.mode, fsys)
			const path = "peapod-r1/pod/ctr"
			if err := d.Create(path); err != nil {
				t.Fatal(err)
			}
			fsys.writes = nil
			err := d.Set(path, tt.res)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrNoController) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Set: err %v, want ErrNoController containing %q", err, tt.wantErr)
				}
				if len(fsys.writes) != 0 {
					t.Errorf("a refused Set wrote %q", fsys.writes)
				}
				return
			}
			if err != nil {
				t.Fatalf("Set: %v", err)
			}
			var want []string
			for _, w := range tt.want {
				want = append(want, path+"/"+w)
			}
			if got := strings.Join(fsys.writes, "\n"); got != strings.Join(want, "\n") {
				t.Errorf("writes =\n%s\nwant\n%s", got, strings.Join(want, "\n"))
			}
		})
	}
}

func TestOOMKills(t *testing.T) {
	t.Run("v1", func(t *testing.T) {
		fsys := newFakeFS(t, true)
		root := fsys.root
		d, err := newDriver("v1", root, hybridEnv(t, root, fsys, v1Mounts(root)))
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range []string{"cpu,cpuacct", "freezer", "devices", "hugetlb", "memory", "systemd"} {
			fsys.initRoot(t, filepath.Join(root, h), "")
		}
		const path = "peapod-r1/pod/ctr"
		if err := d.Create(path); err != nil {
			t.Fatal(err)
		}
		writeTestFile(t, filepath.Join(root, "memory", path, "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
		if n, err := d.(*v1Driver).OOMKills(path); err != nil || n != 3 {
			t.Errorf("OOMKills = %d, %v; want 3", n, err)
		}
	})
	t.Run("v2", func(t *testing.T) {
		fsys := newFakeFS(t, false)
		fsys.initRoot(t, fsys.root, "cpu memory pids")
		d := newV2(fsys.root, ModeUnified, fsys)
		const path = "peapod-r1/pod/ctr"
		if err := d.Create(path); err != nil {
			t.Fatal(err)
		}
		writeTestFile(t, filepath.Join(fsys.root, path, "memory.events"), "low 0\nhigh 0\nmax 7\noom 2\noom_kill 1\noom_group_kill 0\n")
		if n, err := d.OOMKills(path); err != nil || n != 1 {
			t.Errorf("OOMKills = %d, %v; want 1 (oom_kill, not oom or oom_group_kill)", n, err)
		}
		// No memory controller: an error, never a guess.
		h := newV2(t.TempDir(), ModeHybrid, fsys)
		if _, err := h.OOMKills(path); err == nil {
			t.Errorf("OOMKills without memory.events succeeded")
		}
	})
}
