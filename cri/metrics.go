package cri

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/peapod/peapod/cgroups"
	"github.com/peapod/peapod/runtime/pod"
	"github.com/peapod/peapod/runtime/state"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The metrics calls serve the cAdvisor-style metrics the kubelet exposes
// on /metrics/cadvisor when it takes its stats from the CRI
// (PodAndContainerStatsFromCRI): ListMetricDescriptors names them once,
// ListPodSandboxMetrics reports them for the ready sandboxes. The figures
// are the ones the stats calls read (pod.Manager.Stats: the cgroups, the
// host end of the veth), with cgroups.Detail's finer ones, the container's
// processes and its writable layer's filesystem. A figure the hierarchy
// does not carry is left out, as in the stats.

// baseLabels label every metric as cAdvisor's do on the kubelet's
// endpoint: the container's name, id, image, runtime name, and its pod's
// namespace and name. A sandbox's own (network) metrics have an empty
// container and image.
var baseLabels = []string{"container", "id", "image", "name", "namespace", "pod"}

// metricDesc is one metric: its help, type and the labels beyond
// baseLabels.
type metricDesc struct {
	name, help string
	typ        runtimeapi.MetricType
	extra      []string
}

const (
	counter = runtimeapi.MetricType_COUNTER
	gauge   = runtimeapi.MetricType_GAUGE
)

// metricDescs are the metrics served, in cAdvisor's names and words.
var metricDescs = []metricDesc{
	{"container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", counter, nil},
	{"container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", counter, nil},
	{"container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", counter, nil},
	{"container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", counter, nil},
	{"container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", counter, nil},
	{"container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.", counter, nil},
	{"container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.", gauge, nil},
	{"container_memory_working_set_bytes", "Current working set in bytes.", gauge, nil},
	{"container_memory_cache", "Number of bytes of page cache memory.", gauge, nil},
	{"container_memory_rss", "Size of RSS in bytes.", gauge, nil},
	{"container_memory_mapped_file", "Size of memory mapped files in bytes.", gauge, nil},
	{"container_memory_swap", "Container swap usage in bytes.", gauge, nil},
	{"container_memory_kernel_usage", "Size of kernel memory allocated in bytes.", gauge, nil},
	{"container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes.", gauge, nil},
	{"container_memory_failcnt", "Number of memory usage hits limits.", counter, nil},
	{"container_memory_failures_total", "Cumulative count of memory allocation failures.", counter, []string{"failure_type", "scope"}},
	{"container_oom_events_total", "Count of out of memory events observed for the container.", counter, nil},
	{"container_processes", "Number of processes running inside the container.", gauge, nil},
	{"container_threads", "Number of threads running inside the container.", gauge, nil},
	{"container_threads_max", "Maximum number of threads allowed inside the container, infinity if value is zero.", gauge, nil},
	{"container_file_descriptors", "Number of open file descriptors for the container.", gauge, nil},
	{"container_sockets", "Number of open sockets for the container.", gauge, nil},
	{"container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem.", gauge, []string{"device"}},
	{"container_fs_limit_bytes", "Number of bytes that can be consumed by the container on this filesystem.", gauge, []string{"device"}},
	{"container_fs_inodes_total", "Number of Inodes.", gauge, []string{"device"}},
	{"container_fs_inodes_free", "Number of available Inodes.", gauge, []string{"device"}},
	{"container_fs_reads_bytes_total", "Cumulative count of bytes read.", counter, []string{"device"}},
	{"container_fs_writes_bytes_total", "Cumulative count of bytes written.", counter, []string{"device"}},
	{"container_fs_reads_total", "Cumulative count of reads completed.", counter, []string{"device"}},
	{"container_fs_writes_total", "Cumulative count of writes completed.", counter, []string{"device"}},
	{"container_blkio_device_usage_total", "Blkio Device bytes usage.", counter, []string{"device", "major", "minor", "operation"}},
	{"container_start_time_seconds", "Start time of the container since unix epoch in seconds.", gauge, nil},
	{"container_last_seen", "Last time a container was seen by the exporter.", gauge, nil},
	{"container_spec_cpu_period", "CPU period of the container.", gauge, nil},
	{"container_spec_cpu_shares", "CPU share of the container.", gauge, nil},
	{"container_spec_memory_limit_bytes", "Memory limit for the container.", gauge, nil},
	{"container_spec_memory_swap_limit_bytes", "Memory swap limit for the container.", gauge, nil},
	{"container_network_receive_bytes_total", "Cumulative count of bytes received.", counter, []string{"interface"}},
	{"container_network_transmit_bytes_total", "Cumulative count of bytes transmitted.", counter, []string{"interface"}},
	{"container_network_receive_packets_total", "Cumulative count of packets received.", counter, []string{"interface"}},
	{"container_network_transmit_packets_total", "Cumulative count of packets transmitted.", counter, []string{"interface"}},
	{"container_network_receive_errors_total", "Cumulative count of errors encountered while receiving.", counter, []string{"interface"}},
	{"container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting.", counter, []string{"interface"}},
	{"container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving.", counter, []string{"interface"}},
	{"container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting.", counter, []string{"interface"}},
}

// metricIndex finds a descriptor by name.
var metricIndex = func() map[string]*metricDesc {
	m := map[string]*metricDesc{}
	for i := range metricDescs {
		m[metricDescs[i].name] = &metricDescs[i]
	}
	return m
}()

// ListMetricDescriptors names the metrics ListPodSandboxMetrics reports,
// with their help and label keys.
func (s *Server) ListMetricDescriptors(context.Context, *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	resp := &runtimeapi.ListMetricDescriptorsResponse{}
	for _, d := range metricDescs {
		resp.Descriptors = append(resp.Descriptors, &runtimeapi.MetricDescriptor{
			Name: d.name, Help: d.help, LabelKeys: append(append([]string{}, baseLabels...), d.extra...),
		})
	}
	return resp, nil
}

// ListPodSandboxMetrics reports the metrics of every ready sandbox and of
// its containers that have a cgroup; stopped sandboxes, whose cgroups are
// gone, are left out.
func (s *Server) ListPodSandboxMetrics(ctx context.Context, req *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	sbs, err := s.list()
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ListPodSandboxMetricsResponse{}
	for _, sb := range sbs {
		ps, err := s.podStats(sb)
		if err != nil {
			return nil, err
		}
		if ps == nil {
			continue // not ready, or stopped since it was listed
		}
		var figs []containerFigures
		for _, c := range s.containersOf(sb) {
			f, err := s.figuresOf(c, ps)
			if err != nil {
				return nil, err
			}
			if f != nil {
				figs = append(figs, *f)
			}
		}
		resp.PodMetrics = append(resp.PodMetrics, sandboxMetrics(sb, ps, figs, time.Now()))
	}
	return resp, nil
}

// containerFigures are what a container's metrics are made of.
type containerFigures struct {
	c *ctr
	// st are its cgroup's figures.
	st cgroups.Stats
	// layer is its writable layer's usage; fs the filesystem holding it
	// (nil when unreadable).
	layer *runtimeapi.FilesystemUsage
	fs    *fsFigures
	// procs are its processes' figures (nil when it runs none).
	procs *procFigures
}

// fsFigures are a filesystem's size and inodes, and its device
// ("major:minor").
type fsFigures struct {
	device                             string
	sizeBytes, inodesTotal, inodesFree uint64
}

// procFigures sum the threads, open descriptors and sockets of a
// container's processes.
type procFigures struct {
	processes, threads, fds, sockets uint64
}

// figuresOf gathers the figures of c, whose pod's are ps; nil when c has
// no cgroup figures (created, or gone).
func (s *Server) figuresOf(c *ctr, ps *pod.PodStats) (*containerFigures, error) {
	var cs *pod.ContainerStats
	for i := range ps.Containers {
		if ps.Containers[i].Name == c.spec.Name {
			cs = &ps.Containers[i]
		}
	}
	if cs == nil {
		return nil, nil
	}
	layer, err := usage(c.spec.Rootfs.Upper)
	if err != nil {
		return nil, grpcError(err, "failed to measure the writable layer of container %s", c.id())
	}
	f := &containerFigures{c: c, st: cs.Stats, layer: layer, fs: statFS(c.spec.Rootfs.Upper)}
	if cs.Running {
		if pids, err := s.m.CgroupPids(c.sb.view, c.spec.Cgroup); err == nil {
			f.procs = readProcs(pids)
		}
	}
	return f, nil
}

// statFS reads the size and inodes of the filesystem holding dir; nil
// when it cannot.
func statFS(dir string) *fsFigures {
	var sfs unix.Statfs_t
	var st unix.Stat_t
	if unix.Statfs(dir, &sfs) != nil || unix.Stat(dir, &st) != nil {
		return nil
	}
	return &fsFigures{
		device:    fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev)),
		sizeBytes: sfs.Blocks * uint64(sfs.Bsize), inodesTotal: sfs.Files, inodesFree: sfs.Ffree,
	}
}

// readProcs counts the threads, descriptors and sockets of pids; a
// process that exits meanwhile counts for nothing.
func readProcs(pids []int) *procFigures {
	p := &procFigures{}
	for _, pid := range pids {
		dir := "/proc/" + strconv.Itoa(pid)
		b, err := os.ReadFile(dir + "/status")
		if err != nil {
			continue
		}
		p.processes++
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Threads:"); ok {
				n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
				p.threads += n
			}
		}
		fds, err := os.ReadDir(dir + "/fd")
		if err != nil {
			continue
		}
		for _, fd := range fds {
			p.fds++
			if l, err := os.Readlink(dir + "/fd/" + fd.Name()); err == nil && strings.HasPrefix(l, "socket:") {
				p.sockets++
			}
		}
	}
	return p
}

// metricSet collects metrics, each checked against its descriptor.
type metricSet struct {
	at   int64
	base []string
	out  []*runtimeapi.Metric
}

// add appends metric name with value and the values of its extra labels.
// A name without a descriptor, or the wrong number of labels, is a bug
// of this file: it panics (the tests run every path).
func (m *metricSet) add(name string, value uint64, extra ...string) {
	d := metricIndex[name]
	if d == nil || len(extra) != len(d.extra) {
		panic(fmt.Sprintf("metric %s: no descriptor, or %d extra labels", name, len(extra)))
	}
	m.out = append(m.out, &runtimeapi.Metric{
		Name: name, Timestamp: m.at, MetricType: d.typ,
		LabelValues: append(append([]string{}, m.base...), extra...), Value: &runtimeapi.UInt64Value{Value: value},
	})
}

// usecToSec is whole seconds of µs (the CRI's values are integers).
func usecToSec(us int64) uint64 { return uint64(max(us, 0)) / 1e6 }

// sandboxMetrics builds the metrics of sb from its pod's figures and its
// containers', read at now.
func sandboxMetrics(sb *sandbox, ps *pod.PodStats, figs []containerFigures, now time.Time) *runtimeapi.PodSandboxMetrics {
	md := sb.cfg.GetMetadata()
	out := &runtimeapi.PodSandboxMetrics{PodSandboxId: sb.id()}
	if ps.HasNet {
		m := &metricSet{at: ps.At.UnixNano(), base: []string{"", sb.id(), "", sb.id(), md.GetNamespace(), md.GetName()}}
		for _, n := range []struct {
			name string
			v    int64
		}{
			{"container_network_receive_bytes_total", ps.NetRxBytes}, {"container_network_transmit_bytes_total", ps.NetTxBytes},
			{"container_network_receive_packets_total", ps.NetRxPackets}, {"container_network_transmit_packets_total", ps.NetTxPackets},
			{"container_network_receive_errors_total", ps.NetRxErrors}, {"container_network_transmit_errors_total", ps.NetTxErrors},
			{"container_network_receive_packets_dropped_total", ps.NetRxDropped}, {"container_network_transmit_packets_dropped_total", ps.NetTxDropped},
		} {
			m.add(n.name, uint64(max(n.v, 0)), "eth0")
		}
		out.Metrics = m.out
	}
	for _, f := range figs {
		out.ContainerMetrics = append(out.ContainerMetrics, containerMetrics(sb, f, ps.At, now))
	}
	return out
}

// containerMetrics builds one container's metrics.
func containerMetrics(sb *sandbox, f containerFigures, at, now time.Time) *runtimeapi.ContainerMetrics {
	c, st, d := f.c, f.st, f.st.Detail
	md := sb.cfg.GetMetadata()
	m := &metricSet{at: at.UnixNano(), base: []string{c.cfg.GetMetadata().GetName(), c.id(), c.cfg.GetImage().GetImage(), c.id(), md.GetNamespace(), md.GetName()}}
	if st.Has[cgroups.StatCPU] {
		m.add("container_cpu_usage_seconds_total", usecToSec(st.CPUUsageUsec))
	}
	if st.Has[cgroups.StatCPUSplit] {
		m.add("container_cpu_user_seconds_total", usecToSec(d.CPUUserUsec))
		m.add("container_cpu_system_seconds_total", usecToSec(d.CPUSystemUsec))
	}
	if st.Has[cgroups.StatCFS] {
		m.add("container_cpu_cfs_periods_total", uint64(d.CFSPeriods))
		m.add("container_cpu_cfs_throttled_periods_total", uint64(d.CFSThrottledPeriods))
		m.add("container_cpu_cfs_throttled_seconds_total", usecToSec(d.CFSThrottledUsec))
	}
	if st.Has[cgroups.StatMemory] {
		m.add("container_memory_usage_bytes", uint64(st.MemoryUsage))
		m.add("container_memory_working_set_bytes", uint64(st.MemoryWorkingSet))
	}
	if st.Has[cgroups.StatMemoryDetail] {
		m.add("container_memory_cache", uint64(d.MemoryCache))
		m.add("container_memory_rss", uint64(d.MemoryRSS))
		m.add("container_memory_mapped_file", uint64(d.MemoryMappedFile))
		m.add("container_memory_swap", uint64(d.MemorySwap))
		m.add("container_memory_kernel_usage", uint64(d.MemoryKernel))
		m.add("container_memory_max_usage_bytes", uint64(d.MemoryMaxUsage))
		m.add("container_memory_failcnt", uint64(d.MemoryFailcnt))
		// memory.stat's counts include the cgroup's descendants.
		m.add("container_memory_failures_total", uint64(d.PgFault), "pgfault", "hierarchy")
		m.add("container_memory_failures_total", uint64(d.PgMajFault), "pgmajfault", "hierarchy")
	}
	if st.Has[cgroups.StatOOM] {
		m.add("container_oom_events_total", uint64(st.OOMKills))
	}
	if st.Has[cgroups.StatPids] {
		m.add("container_threads_max", uint64(st.PidsLimit))
	}
	if p := f.procs; p != nil {
		m.add("container_processes", p.processes)
		m.add("container_threads", p.threads)
		m.add("container_file_descriptors", p.fds)
		m.add("container_sockets", p.sockets)
	}
	if fs := f.fs; fs != nil {
		if l := f.layer; l != nil {
			m.add("container_fs_usage_bytes", l.GetUsedBytes().GetValue(), fs.device)
		}
		m.add("container_fs_limit_bytes", fs.sizeBytes, fs.device)
		m.add("container_fs_inodes_total", fs.inodesTotal, fs.device)
		m.add("container_fs_inodes_free", fs.inodesFree, fs.device)
	}
	if st.Has[cgroups.StatIO] {
		// io.stat's bytes, summed over devices.
		m.add("container_fs_reads_bytes_total", uint64(st.IOReadBytes), "")
		m.add("container_fs_writes_bytes_total", uint64(st.IOWriteBytes), "")
	}
	if s := c.st; s != nil && !s.StartedAt.IsZero() && s.State == state.StateRunning {
		m.add("container_start_time_seconds", uint64(s.StartedAt.Unix()))
	}
	m.add("container_last_seen", uint64(now.Unix()))
	// The spec's values, with the kernel's defaults for what it leaves
	// unset (cAdvisor reads them from the cgroup).
	period, shares, limit := uint64(100000), uint64(1024), int64(0)
	if l := c.spec.OCI.Linux; l != nil && l.Resources != nil {
		if cpu := l.Resources.CPU; cpu != nil {
			if cpu.Period != nil {
				period = *cpu.Period
			}
			if cpu.Shares != nil {
				shares = *cpu.Shares
			}
		}
		if mem := l.Resources.Memory; mem != nil && mem.Limit != nil {
			limit = *mem.Limit
		}
	}
	m.add("container_spec_cpu_period", period)
	m.add("container_spec_cpu_shares", shares)
	m.add("container_spec_memory_limit_bytes", uint64(max(limit, 0)))
	// peapod's containers get no swap: memory and swap together are
	// held to the memory limit.
	m.add("container_spec_memory_swap_limit_bytes", uint64(max(limit, 0)))
	return &runtimeapi.ContainerMetrics{ContainerId: c.id(), Metrics: m.out}
}
