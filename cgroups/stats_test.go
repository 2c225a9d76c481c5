package cgroups

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestReadStats(t *testing.T) {
	t.Run("v2", func(t *testing.T) {
		fsys := newFakeFS(t, false)
		fsys.initRoot(t, fsys.root, "cpu memory pids io")
		d := newV2(fsys.root, ModeUnified, fsys)
		if err := d.Create("pod/a"); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(fsys.root, "pod/a")
		for file, content := range map[string]string{
			"cpu.stat":       "usage_usec 1500000\nuser_usec 1000000\n",
			"memory.current": "10485760\n",
			"memory.max":     "67108864\n",
			"memory.stat":    "anon 4096\nactive_file 1048576\ninactive_file 2097152\n",
			"memory.events":  "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n",
			"pids.current":   "7\n",
			"pids.max":       "max\n",
			"io.stat":        "8:0 rbytes=100 wbytes=200 rios=1 wios=2\n253:1 rbytes=1000 wbytes=2000 rios=3 wios=4 dbytes=0\n",
		} {
			writeTestFile(t, filepath.Join(dir, file), content)
		}
		s, err := ReadStats(d, "pod/a")
		if err != nil {
			t.Fatal(err)
		}
		want := Stats{CPUUsageUsec: 1500000, MemoryUsage: 10485760, MemoryWorkingSet: 10485760 - 2097152, MemoryLimit: 67108864,
			PidsCurrent: 7, PidsLimit: 0, IOReadBytes: 1100, IOWriteBytes: 2200, OOMKills: 2}
		checkStats(t, s, want, StatCPU, StatMemory, StatPids, StatIO, StatOOM)
	})
	t.Run("v2-controllerless", func(t *testing.T) {
		// A hybrid host's cgroup2 tree: CPU time only, nothing else
		// reported as a misleading zero.
		fsys := newFakeFS(t, false)
		fsys.initRoot(t, fsys.root, "")
		d := newV2(fsys.root, ModeHybrid, fsys)
		if err := d.Create("a"); err != nil {
			t.Fatal(err)
		}
		writeTestFile(t, filepath.Join(fsys.root, "a/cpu.stat"), "usage_usec 5\n")
		s, err := ReadStats(d, "a")
		if err != nil {
			t.Fatal(err)
		}
		checkStats(t, s, Stats{CPUUsageUsec: 5}, StatCPU)
	})
	t.Run("v1", func(t *testing.T) {
		fsys := newFakeFS(t, true)
		d := v1Fake(t, fsys)
		if err := d.Create("a"); err != nil {
			t.Fatal(err)
		}
		writeTestFile(t, filepath.Join(fsys.root, "cpu,cpuacct/a/cpuacct.usage"), "2000000000\n")
		writeTestFile(t, filepath.Join(fsys.root, "memory/a/memory.usage_in_bytes"), "8388608\n")
		writeTestFile(t, filepath.Join(fsys.root, "memory/a/memory.stat"), "cache 0\ninactive_file 1\ntotal_inactive_file 9000000\n")
		writeTestFile(t, filepath.Join(fsys.root, "pids/a/pids.current"), "3\n")
		writeTestFile(t, filepath.Join(fsys.root, "pids/a/pids.max"), "4096\n")
		s, err := ReadStats(d, "a")
		if err != nil {
			t.Fatal(err)
		}
		// Unlimited memory (PAGE_COUNTER_MAX) is 0; inactive file above
		// usage floors the working set at 0, as cAdvisor does.
		checkStats(t, s, Stats{CPUUsageUsec: 2000000, MemoryUsage: 8388608, PidsCurrent: 3, PidsLimit: 4096}, StatCPU, StatMemory, StatPids, StatOOM)
	})
	t.Run("v2-detail", func(t *testing.T) {
		fsys := newFakeFS(t, false)
		fsys.initRoot(t, fsys.root, "cpu memory pids")
		d := newV2(fsys.root, ModeUnified, fsys)
		if err := d.Create("a"); err != nil {
			t.Fatal(err)
		}
		for file, content := range map[string]string{
			"cpu.stat":            "usage_usec 30\nuser_usec 20\nsystem_usec 10\nnr_periods 7\nnr_throttled 2\nthrottled_usec 500\n",
			"memory.current":      "1000\n",
			"memory.max":          "max\n",
			"memory.stat":         "anon 300\nfile 600\nkernel_stack 8\nslab 16\nsock 0\nfile_mapped 40\ninactive_file 100\npgfault 11\npgmajfault 1\n",
			"memory.events":       "low 0\nhigh 0\nmax 4\noom 0\noom_kill 0\n",
			"memory.swap.current": "5\n",
		} {
			writeTestFile(t, filepath.Join(fsys.root, "a", file), content)
		}
		s, err := ReadStats(d, "a")
		if err != nil {
			t.Fatal(err)
		}
		// No memory.peak (before Linux 5.19): usage stands in; no kernel
		// key (before 5.18): the parts it sums.
		want := Detail{CPUUserUsec: 20, CPUSystemUsec: 10, CFSPeriods: 7, CFSThrottledPeriods: 2, CFSThrottledUsec: 500,
			MemoryCache: 600, MemoryRSS: 300, MemoryMappedFile: 40, MemorySwap: 5, MemoryKernel: 24, MemoryMaxUsage: 1000, MemoryFailcnt: 4, PgFault: 11, PgMajFault: 1}
		if s.Detail != want || !s.Has[StatCPUSplit] || !s.Has[StatCFS] || !s.Has[StatMemoryDetail] {
			t.Errorf("detail = %+v (has %v), want %+v", s.Detail, s.Has, want)
		}
	})
	t.Run("v1-detail", func(t *testing.T) {
		fsys := newFakeFS(t, true)
		d := v1Fake(t, fsys)
		if err := d.Create("a"); err != nil {
			t.Fatal(err)
		}
		for file, content := range map[string]string{
			"cpu,cpuacct/a/cpuacct.usage":              "3000\n",
			"cpu,cpuacct/a/cpuacct.usage_user":         "2000\n",
			"cpu,cpuacct/a/cpuacct.usage_sys":          "1000\n",
			"cpu,cpuacct/a/cpu.stat":                   "nr_periods 9\nnr_throttled 3\nthrottled_time 4000\n",
			"memory/a/memory.usage_in_bytes":           "1000\n",
			"memory/a/memory.stat":                     "cache 1\ntotal_cache 600\ntotal_rss 300\ntotal_mapped_file 40\ntotal_inactive_file 100\ntotal_pgfault 11\ntotal_pgmajfault 1\n",
			"memory/a/memory.kmem.usage_in_bytes":      "24\n",
			"memory/a/memory.max_usage_in_bytes":       "2000\n",
			"memory/a/memory.failcnt":                  "6\n",
			"memory/a/memory.memsw.max_usage_in_bytes": "1\n",
		} {
			writeTestFile(t, filepath.Join(fsys.root, file), content)
		}
		s, err := ReadStats(d, "a")
		if err != nil {
			t.Fatal(err)
		}
		// Nanoseconds become µs; no total_swap (no swap accounting) is 0.
		want := Detail{CPUUserUsec: 2, CPUSystemUsec: 1, CFSPeriods: 9, CFSThrottledPeriods: 3, CFSThrottledUsec: 4,
			MemoryCache: 600, MemoryRSS: 300, MemoryMappedFile: 40, MemoryKernel: 24, MemoryMaxUsage: 2000, MemoryFailcnt: 6, PgFault: 11, PgMajFault: 1}
		if s.Detail != want || !s.Has[StatCPUSplit] || !s.Has[StatCFS] || !s.Has[StatMemoryDetail] {
			t.Errorf("detail = %+v (has %v), want %+v", s.Detail, s.Has, want)
		}
	})
	t.Run("gone", func(t *testing.T) {
		fsys := newFakeFS(t, false)
		fsys.initRoot(t, fsys.root, "cpu")
		d := newV2(fsys.root, ModeUnified, fsys)
		if _, err := ReadStats(d, "missing"); err == nil {
			t.Error("ReadStats of a missing cgroup succeeded")
		}
		if _, err := ReadStats(d, "../escape"); err == nil {
			t.Error("ReadStats of ../escape succeeded")
		}
	})
}

func checkStats(t *testing.T, got, want Stats, has ...string) {
	t.Helper()
	wantHas := map[string]bool{}
	for _, h := range has {
		wantHas[h] = true
	}
	for _, k := range []string{StatCPU, StatMemory, StatPids, StatIO, StatOOM} {
		if got.Has[k] != wantHas[k] {
			t.Errorf("Has[%s] = %v, want %v", k, got.Has[k], wantHas[k])
		}
	}
	got.Has, want.Has = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stats:\n got %+v\nwant %+v", got, want)
	}
}

// v1Fake is a v1 driver over the fake with cpu,cpuacct, memory, pids and
// freezer hierarchies.
func v1Fake(t *testing.T, fsys *fakeFS) Driver {
	t.Helper()
	mounts := []mount{{dev: "0:20", mountpoint: fsys.root, fstype: "tmpfs", superOpts: []string{"rw"}}}
	for i, h := range []string{"cpu,cpuacct", "memory", "pids", "freezer", "devices"} {
		fsys.initRoot(t, filepath.Join(fsys.root, h), "")
		mounts = append(mounts, mount{dev: fmt.Sprintf("0:%d", 30+i), mountpoint: filepath.Join(fsys.root, h), fstype: "cgroup",
			superOpts: append([]string{"rw"}, strings.Split(h, ",")...)})
	}
	d, err := newDriver("v1", fsys.root, hybridEnv(t, fsys.root, fsys, mounts))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestResizeOrdersMemsw: raising a v1 memory limit writes memsw first
// (the kernel keeps memsw >= limit at every write); lowering writes the
// limit first, as on a fresh cgroup.
func TestResizeOrdersMemsw(t *testing.T) {
	for _, tt := range []struct {
		name       string
		from, to   int64
		wantFirst  string
		wantSecond string
	}{
		{"raise", 64 << 20, 96 << 20, "memory.memsw.limit_in_bytes", "memory.limit_in_bytes"},
		{"lower", 64 << 20, 32 << 20, "memory.limit_in_bytes", "memory.memsw.limit_in_bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fsys := newFakeFS(t, true)
			d := v1Fake(t, fsys)
			if err := d.Create("a"); err != nil {
				t.Fatal(err)
			}
			if err := d.Set("a", Resources{MemoryLimit: tt.from}); err != nil {
				t.Fatal(err)
			}
			fsys.writes = nil
			if err := Resize(d, "a", Resources{MemoryLimit: tt.to}); err != nil {
				t.Fatal(err)
			}
			var files []string
			for _, w := range fsys.writes {
				file, _, _ := strings.Cut(filepath.Base(w), "=")
				files = append(files, file)
			}
			if len(files) != 2 || files[0] != tt.wantFirst || files[1] != tt.wantSecond {
				t.Errorf("writes %v, want %s then %s", fsys.writes, tt.wantFirst, tt.wantSecond)
			}
		})
	}
}

func TestParseIOStat(t *testing.T) {
	for _, tt := range []struct {
		in          string
		read, write int64
	}{
		{"", 0, 0},
		{"8:0 rbytes=1 wbytes=2\n", 1, 2},
		{"8:0 rbytes=1 wbytes=2\n8:16 rbytes=10 wbytes=20 dbytes=5\n", 11, 22},
		{"8:0 rbytes=x wbytes=2 junk\n", 0, 2},
	} {
		if r, w := parseIOStat(tt.in); r != tt.read || w != tt.write {
			t.Errorf("parseIOStat(%q) = %d, %d; want %d, %d", tt.in, r, w, tt.read, tt.write)
		}
	}
}
