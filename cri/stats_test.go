package cri

import (
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/peapod/peapod/cgroups"
	"github.com/peapod/peapod/runtime/pod"
	"github.com/peapod/peapod/runtime/spec"
	"github.com/peapod/peapod/runtime/state"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func u64(v *runtimeapi.UInt64Value) any {
	if v == nil {
		return nil
	}
	return v.Value
}

// TestMemoryStats: the CRI figures of a cgroup's memory, a missing
// controller left out rather than zero.
func TestMemoryStats(t *testing.T) {
	at := time.Unix(100, 5)
	for _, tc := range []struct {
		name             string
		st               cgroups.Stats
		nilOut           bool
		ws, usage, avail any
	}{
		{"no memory controller", cgroups.Stats{Has: map[string]bool{cgroups.StatCPU: true}, MemoryUsage: 7}, true, nil, nil, nil},
		{"no limit", cgroups.Stats{Has: map[string]bool{cgroups.StatMemory: true}, MemoryUsage: 300, MemoryWorkingSet: 200}, false, uint64(200), uint64(300), nil},
		{"limit", cgroups.Stats{Has: map[string]bool{cgroups.StatMemory: true}, MemoryUsage: 300, MemoryWorkingSet: 200, MemoryLimit: 1000}, false, uint64(200), uint64(300), uint64(800)},
		{"working set above limit floors at 0", cgroups.Stats{Has: map[string]bool{cgroups.StatMemory: true}, MemoryUsage: 1200, MemoryWorkingSet: 1100, MemoryLimit: 1000}, false, uint64(1100), uint64(1200), uint64(0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := memoryStats(tc.st, at)
			if tc.nilOut {
				if m != nil {
					t.Fatalf("memoryStats = %v, want nil", m)
				}
				return
			}
			if m.Timestamp != at.UnixNano() || u64(m.WorkingSetBytes) != tc.ws || u64(m.UsageBytes) != tc.usage || u64(m.AvailableBytes) != tc.avail {
				t.Fatalf("memoryStats = %v, want ws %v usage %v available %v at %d", m, tc.ws, tc.usage, tc.avail, at.UnixNano())
			}
		})
	}
}

// TestCPUStats: cumulative µs become ns; the rate needs a previous
// reading, and a counter that went back (a new cgroup) or an older
// reading gives none.
func TestCPUStats(t *testing.T) {
	var c cpuSamples
	t0 := time.Unix(1000, 0)
	has := map[string]bool{cgroups.StatCPU: true}
	if got := c.cpuStats("a", cgroups.Stats{Has: map[string]bool{}}, t0); got != nil {
		t.Fatalf("no cpu accounting: %v, want nil", got)
	}
	steps := []struct {
		usec     int64
		at       time.Time
		nanocore any
	}{
		{1000, t0, nil}, // first reading
		{501000, t0.Add(time.Second), uint64(500_000_000)},    // 0.5 s of CPU in 1 s
		{2501000, t0.Add(3 * time.Second), uint64(1e9)},       // 2 s in 2 s: one core
		{2400000, t0.Add(2 * time.Second), nil},               // older reading
		{100, t0.Add(4 * time.Second), nil},                   // counter went back
		{100 + 250000, t0.Add(5 * time.Second), uint64(25e7)}, // from the new base
	}
	for i, s := range steps {
		got := c.cpuStats("a", cgroups.Stats{CPUUsageUsec: s.usec, Has: has}, s.at)
		if got.UsageCoreNanoSeconds.Value != uint64(s.usec)*1000 || got.Timestamp != s.at.UnixNano() {
			t.Fatalf("step %d: %v, want %d ns at %d", i, got, s.usec*1000, s.at.UnixNano())
		}
		if u64(got.UsageNanoCores) != s.nanocore {
			t.Fatalf("step %d: usage_nano_cores %v, want %v", i, u64(got.UsageNanoCores), s.nanocore)
		}
	}
	// Another id has its own history; a stale one is dropped.
	if got := c.cpuStats("b", cgroups.Stats{CPUUsageUsec: 1, Has: has}, t0.Add(sampleMaxAge+10*time.Second)); got.UsageNanoCores != nil {
		t.Fatalf("first reading of b has a rate: %v", got)
	}
	if _, ok := c.last["a"]; ok {
		t.Fatalf("the stale reading of a was kept")
	}
}

// fakeSandbox is a ready-looking sandbox with one container named app.
func fakeSandbox() (*sandbox, *ctr) {
	sb := &sandbox{
		view: &pod.View{Record: &state.Record{UID: "sb1", Namespace: "ns", Name: "p"}},
		cfg: &runtimeapi.PodSandboxConfig{
			Metadata: &runtimeapi.PodSandboxMetadata{Name: "p", Uid: "u", Namespace: "ns"},
			Labels:   map[string]string{"app": "x"},
		},
	}
	c := &ctr{sb: sb, spec: &spec.Container{ID: "c1", Name: "app-c1"}, cfg: &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "app"}, Labels: map[string]string{"tier": "web"},
	}}
	return sb, c
}

// TestSandboxStatsOf: the pod cgroup's figures, eth0's bytes and the
// containers' stats land in their CRI fields; a stopped pod has none.
func TestSandboxStatsOf(t *testing.T) {
	s := &Server{}
	sb, c := fakeSandbox()
	at := time.Unix(50, 0)
	full := map[string]bool{cgroups.StatCPU: true, cgroups.StatMemory: true, cgroups.StatPids: true}
	ps := &pod.PodStats{
		At:  at,
		Pod: cgroups.Stats{CPUUsageUsec: 7, MemoryUsage: 4096, MemoryWorkingSet: 2048, MemoryLimit: 8192, PidsCurrent: 3, Has: full},
		Containers: []pod.ContainerStats{
			{Name: "other", Stats: cgroups.Stats{CPUUsageUsec: 99, Has: full}},
			{Name: "app-c1", Stats: cgroups.Stats{CPUUsageUsec: 5, MemoryUsage: 100, MemoryWorkingSet: 60, Has: full}},
		},
		NetRxBytes: 11, NetTxBytes: 22, HasNet: true,
	}
	layer := &runtimeapi.FilesystemUsage{UsedBytes: &runtimeapi.UInt64Value{Value: 4096}}
	cs := []*runtimeapi.ContainerStats{s.containerStatsOf(c, &ps.Containers[1], at, layer)}
	got := s.sandboxStatsOf(sb, ps, cs)
	l := got.Linux
	switch {
	case got.Attributes.Id != "sb1" || got.Attributes.Labels["app"] != "x" || got.Attributes.Metadata.Name != "p":
		t.Fatalf("attributes %v", got.Attributes)
	case l.Cpu.UsageCoreNanoSeconds.Value != 7000:
		t.Fatalf("pod cpu %v, want 7000 ns", l.Cpu)
	case l.Memory.WorkingSetBytes.Value != 2048 || l.Memory.AvailableBytes.Value != 6144:
		t.Fatalf("pod memory %v", l.Memory)
	case l.Process.ProcessCount.Value != 3:
		t.Fatalf("process %v", l.Process)
	case l.Network.DefaultInterface.Name != "eth0" || l.Network.DefaultInterface.RxBytes.Value != 11 || l.Network.DefaultInterface.TxBytes.Value != 22:
		t.Fatalf("network %v", l.Network)
	case len(l.Containers) != 1:
		t.Fatalf("containers %v", l.Containers)
	}
	cst := l.Containers[0]
	if cst.Attributes.Id != "c1" || cst.Attributes.Labels["tier"] != "web" || cst.Cpu.UsageCoreNanoSeconds.Value != 5000 ||
		cst.Memory.UsageBytes.Value != 100 || cst.Memory.AvailableBytes != nil || cst.WritableLayer.UsedBytes.Value != 4096 {
		t.Fatalf("container stats %v", cst)
	}
	// hostNetwork: no network figures; a stopped pod: attributes only.
	ps.HasNet = false
	if got := s.sandboxStatsOf(sb, ps, nil); got.Linux.Network != nil {
		t.Fatalf("host-network pod has network stats %v", got.Linux.Network)
	}
	if got := s.sandboxStatsOf(sb, nil, nil); got.Linux.Cpu != nil || got.Linux.Memory != nil || got.Attributes.Id != "sb1" {
		t.Fatalf("stopped pod stats %v", got)
	}
	if got := s.containerStatsOf(c, nil, time.Time{}, layer); got.Cpu != nil || got.Memory != nil || got.WritableLayer == nil {
		t.Fatalf("stopped container stats %v", got)
	}
}

// TestUpdatedResources: the CRI values replace the old ones, what peapod
// cannot honour is refused naming the field, and the old spec is left as
// it was.
func TestUpdatedResources(t *testing.T) {
	quota, period, shares, mem, pids := int64(50000), uint64(100000), uint64(512), int64(64<<20), int64(100)
	old := func() *specs.LinuxResources {
		return &specs.LinuxResources{
			CPU:    &specs.LinuxCPU{Quota: &quota, Period: &period, Shares: &shares},
			Memory: &specs.LinuxMemory{Limit: &mem},
			Pids:   &specs.LinuxPids{Limit: &pids},
		}
	}
	for _, tc := range []struct {
		name  string
		old   *specs.LinuxResources
		r     *runtimeapi.LinuxContainerResources
		field string
		check func(*specs.LinuxResources) bool
	}{
		{"grow all", old(), &runtimeapi.LinuxContainerResources{CpuShares: 1024, CpuQuota: 200000, CpuPeriod: 100000, MemoryLimitInBytes: 128 << 20},
			"", func(r *specs.LinuxResources) bool {
				return *r.CPU.Shares == 1024 && *r.CPU.Quota == 200000 && *r.CPU.Period == 100000 && *r.Memory.Limit == 128<<20 && *r.Pids.Limit == 100
			}},
		{"default period", nil, &runtimeapi.LinuxContainerResources{CpuQuota: 30000, MemoryLimitInBytes: 1 << 30},
			"", func(r *specs.LinuxResources) bool {
				return *r.CPU.Period == 100000 && *r.CPU.Quota == 30000 && *r.Memory.Limit == 1<<30
			}},
		{"oom_score_adj ignored", nil, &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1 << 30, OomScoreAdj: 1000},
			"", func(r *specs.LinuxResources) bool { return *r.Memory.Limit == 1<<30 }},
		{"cpuset", nil, &runtimeapi.LinuxContainerResources{CpusetCpus: "0"}, "linux.cpuset_cpus", nil},
		{"hugepages", nil, &runtimeapi.LinuxContainerResources{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 1 << 21}}}, "linux.hugepage_limits[0]", nil},
		{"unified", nil, &runtimeapi.LinuxContainerResources{Unified: map[string]string{"memory.high": "1"}}, "linux.unified", nil},
		{"swap", nil, &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1 << 20, MemorySwapLimitInBytes: 1 << 21}, "linux.memory_swap_limit_in_bytes", nil},
		{"negative", nil, &runtimeapi.LinuxContainerResources{CpuQuota: -5}, "linux.cpu_quota", nil},
		{"quota removed", old(), &runtimeapi.LinuxContainerResources{CpuShares: 2, MemoryLimitInBytes: mem}, "linux.cpu_quota", nil},
		{"memory limit removed", old(), &runtimeapi.LinuxContainerResources{CpuQuota: quota, CpuPeriod: int64(period)}, "linux.memory_limit_in_bytes", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before int64
			if tc.old != nil {
				before = *tc.old.Memory.Limit + *tc.old.CPU.Quota
			}
			got, err := updatedResources(tc.old, tc.r)
			if tc.field != "" {
				if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.field) {
					t.Fatalf("err = %v, want InvalidArgument naming %s", err, tc.field)
				}
				return
			}
			if err != nil || !tc.check(got) {
				t.Fatalf("updatedResources = %+v, %v", got, err)
			}
			if tc.old != nil && *tc.old.Memory.Limit+*tc.old.CPU.Quota != before {
				t.Fatalf("the old resources were changed")
			}
		})
	}
}
