package cri

import (
	"context"
	"slices"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/peapod/peapod/cgroups"
	"github.com/peapod/peapod/runtime/pod"
	"github.com/peapod/peapod/runtime/spec"
	"github.com/peapod/peapod/runtime/state"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// critestMetrics are the metrics critest v1.37.0 expects values of for a
// running container in a pod with a network (its expected list without
// the ones it lists as not implemented by all runtimes, or as optional
// where block I/O is not accounted).
var critestMetrics = []string{
	"container_cpu_cfs_periods_total", "container_cpu_cfs_throttled_periods_total", "container_cpu_cfs_throttled_seconds_total",
	"container_cpu_system_seconds_total", "container_cpu_usage_seconds_total", "container_cpu_user_seconds_total",
	"container_file_descriptors", "container_fs_inodes_free", "container_fs_inodes_total", "container_fs_limit_bytes",
	"container_fs_usage_bytes", "container_last_seen", "container_memory_cache", "container_memory_failcnt",
	"container_memory_failures_total", "container_memory_kernel_usage", "container_memory_mapped_file",
	"container_memory_max_usage_bytes", "container_memory_rss", "container_memory_swap", "container_memory_usage_bytes",
	"container_memory_working_set_bytes", "container_network_receive_bytes_total", "container_network_receive_errors_total",
	"container_network_receive_packets_dropped_total", "container_network_receive_packets_total",
	"container_network_transmit_bytes_total", "container_network_transmit_errors_total",
	"container_network_transmit_packets_dropped_total", "container_network_transmit_packets_total",
	"container_oom_events_total", "container_processes", "container_sockets", "container_spec_cpu_period",
	"container_spec_cpu_shares", "container_spec_memory_limit_bytes", "container_spec_memory_swap_limit_bytes",
	"container_start_time_seconds", "container_threads", "container_threads_max",
}

// TestListMetricDescriptors: every descriptor has help and label keys (the
// base ones first), and names are unique.
func TestListMetricDescriptors(t *testing.T) {
	resp, err := (&Server{}).ListMetricDescriptors(context.Background(), &runtimeapi.ListMetricDescriptorsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, d := range resp.Descriptors {
		if d.Help == "" || !slices.Equal(d.LabelKeys[:len(baseLabels)], baseLabels) || seen[d.Name] {
			t.Errorf("descriptor %v: want help, the base labels first, a unique name", d)
		}
		seen[d.Name] = true
	}
	for _, n := range append(critestMetrics, "container_fs_reads_total", "container_blkio_device_usage_total") {
		if !seen[n] {
			t.Errorf("no descriptor for %s", n)
		}
	}
}

// metricsFixture is a sandbox with one running container whose figures
// are all there.
func metricsFixture() (*sandbox, *pod.PodStats, containerFigures) {
	sb := &sandbox{
		view: &pod.View{Record: &state.Record{UID: "sb1", Namespace: "ns", Name: "p"}},
		cfg:  &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "prod"}},
	}
	shares, period, quota, limit := uint64(512), uint64(50000), int64(20000), int64(64<<20)
	c := &ctr{sb: sb, cfg: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "app"}, Image: &runtimeapi.ImageSpec{Image: "busybox"}},
		spec: &spec.Container{ID: "c1", Name: "app-c1", OCI: specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{
			CPU: &specs.LinuxCPU{Shares: &shares, Period: &period, Quota: &quota}, Memory: &specs.LinuxMemory{Limit: &limit}}}}},
		st: &state.ContainerStatus{State: state.StateRunning, StartedAt: time.Unix(1000, 0)},
	}
	all := map[string]bool{}
	for _, h := range []string{cgroups.StatCPU, cgroups.StatCPUSplit, cgroups.StatCFS, cgroups.StatMemory, cgroups.StatMemoryDetail, cgroups.StatOOM, cgroups.StatPids} {
		all[h] = true
	}
	st := cgroups.Stats{CPUUsageUsec: 3_500_000, MemoryUsage: 900, MemoryWorkingSet: 800, PidsCurrent: 2, PidsLimit: 4096, OOMKills: 1, Has: all,
		Detail: cgroups.Detail{CPUUserUsec: 2_000_000, CPUSystemUsec: 1_500_000, CFSPeriods: 10, CFSThrottledPeriods: 4, CFSThrottledUsec: 7_000_000,
			MemoryCache: 100, MemoryRSS: 700, MemoryMappedFile: 50, MemoryKernel: 30, MemoryMaxUsage: 1000, MemoryFailcnt: 2, PgFault: 99, PgMajFault: 3}}
	ps := &pod.PodStats{At: time.Unix(2000, 0), HasNet: true, NetRxBytes: 10, NetTxBytes: 20, NetRxPackets: 1, NetTxPackets: 2, NetRxDropped: 5}
	f := containerFigures{c: c, st: st, layer: &runtimeapi.FilesystemUsage{UsedBytes: &runtimeapi.UInt64Value{Value: 4096}},
		fs: &fsFigures{device: "8:1", sizeBytes: 1 << 30, inodesTotal: 1000, inodesFree: 600}, procs: &procFigures{processes: 2, threads: 3, fds: 9, sockets: 1}}
	return sb, ps, f
}

// byName indexes a sandbox's metrics (its own and its containers') by
// name, checking each has as many label values as its descriptor's keys.
func byName(t *testing.T, m *runtimeapi.PodSandboxMetrics) map[string][]*runtimeapi.Metric {
	t.Helper()
	out := map[string][]*runtimeapi.Metric{}
	all := m.Metrics
	for _, c := range m.ContainerMetrics {
		all = append(all, c.Metrics...)
	}
	for _, x := range all {
		d := metricIndex[x.Name]
		if d == nil || len(x.LabelValues) != len(baseLabels)+len(d.extra) || x.MetricType != d.typ || x.Timestamp != time.Unix(2000, 0).UnixNano() {
			t.Errorf("metric %v does not match its descriptor %v", x, d)
		}
		out[x.Name] = append(out[x.Name], x)
	}
	return out
}

// TestSandboxMetrics is the shape of ListPodSandboxMetrics' answer: every
// metric critest expects, the labels as described, the figures converted
// (µs to whole seconds, the spec's values), and a group of figures the
// hierarchy lacks left out rather than reported as zero.
func TestSandboxMetrics(t *testing.T) {
	sb, ps, f := metricsFixture()
	m := sandboxMetrics(sb, ps, []containerFigures{f}, time.Unix(3000, 0))
	if m.PodSandboxId != "sb1" || len(m.ContainerMetrics) != 1 || m.ContainerMetrics[0].ContainerId != "c1" {
		t.Fatalf("metrics of %s / %v", m.PodSandboxId, m.ContainerMetrics)
	}
	got := byName(t, m)
	for _, n := range critestMetrics {
		if len(got[n]) == 0 {
			t.Errorf("no %s", n)
		}
	}
	for _, tc := range []struct {
		name   string
		value  uint64
		labels []string
	}{
		{"container_cpu_usage_seconds_total", 3, []string{"app", "c1", "busybox", "c1", "prod", "web"}},
		{"container_cpu_cfs_throttled_seconds_total", 7, nil},
		{"container_network_receive_bytes_total", 10, []string{"", "sb1", "", "sb1", "prod", "web", "eth0"}},
		{"container_network_transmit_bytes_total", 20, nil},
		{"container_network_receive_packets_dropped_total", 5, nil},
		{"container_memory_failures_total", 99, []string{"app", "c1", "busybox", "c1", "prod", "web", "pgfault", "hierarchy"}},
		{"container_fs_usage_bytes", 4096, []string{"app", "c1", "busybox", "c1", "prod", "web", "8:1"}},
		{"container_spec_cpu_period", 50000, nil},
		{"container_spec_cpu_shares", 512, nil},
		{"container_spec_memory_swap_limit_bytes", 64 << 20, nil},
		{"container_start_time_seconds", 1000, nil},
		{"container_last_seen", 3000, nil},
		{"container_threads_max", 4096, nil},
		{"container_sockets", 1, nil},
	} {
		ms := got[tc.name]
		if len(ms) == 0 || ms[0].Value.GetValue() != tc.value || tc.labels != nil && !slices.Equal(ms[0].LabelValues, tc.labels) {
			t.Errorf("%s = %v, want %d %q", tc.name, ms, tc.value, tc.labels)
		}
	}

	// A hybrid host's controller-less cgroup2 tree: CPU time only; a
	// host-network pod; a container that no longer runs.
	f.st.Has = map[string]bool{cgroups.StatCPU: true}
	f.procs, f.fs, f.c.st = nil, nil, &state.ContainerStatus{State: state.StateTerminated, StartedAt: time.Unix(1000, 0)}
	ps.HasNet = false
	got = byName(t, sandboxMetrics(sb, ps, []containerFigures{f}, time.Unix(3000, 0)))
	var names []string
	for n := range got {
		names = append(names, n)
	}
	slices.Sort(names)
	want := []string{"container_cpu_usage_seconds_total", "container_last_seen", "container_spec_cpu_period", "container_spec_cpu_shares",
		"container_spec_memory_limit_bytes", "container_spec_memory_swap_limit_bytes"}
	if !slices.Equal(names, want) {
		t.Errorf("with CPU figures only: %q, want %q", names, want)
	}
}
