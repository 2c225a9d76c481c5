package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/peapod/peapod/cgroups"
	"github.com/peapod/peapod/internal/procfs"
	"github.com/peapod/peapod/probes"
	"github.com/peapod/peapod/runtime/pod"
	"github.com/peapod/peapod/runtime/supervisor"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
)

// Help texts and names of the kubelet's probe metrics (/metrics/probes).
const (
	probeTotalName    = "prober_probe_total"
	probeTotalHelp    = "[BETA] Cumulative number of a liveness, readiness or startup probe for a container by result."
	probeDurationName = "prober_probe_duration_seconds"
	probeDurationHelp = "[ALPHA] Duration in seconds for a probe response."
)

func newMetricsCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "metrics [POD]",
		Short:   "Print the probe metrics and the cAdvisor container metrics of one pod or of all pods of the namespace, in the Prometheus text format",
		Example: "  sudo peapod metrics web\n  sudo peapod metrics -n default",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return executeMetrics(g, args, cmd.OutOrStdout())
		},
	}
}

func executeMetrics(g *globals, args []string, out io.Writer) error {
	m, err := g.manager()
	if err != nil {
		return err
	}
	names, err := metricsPods(m, g.namespace, args)
	if err != nil {
		return err
	}
	var series []probes.SeriesSnapshot
	var usage []*pod.PodStats
	var mem []podMemory
	for _, name := range names {
		in, err := m.Inspect(g.namespace, name)
		if err != nil {
			return err
		}
		if in.SupervisorPID == 0 {
			continue // a finished pod has no series, as in the kubelet
		}
		s, goMem, err := supervisor.Metrics(in.RunDir)
		if err != nil {
			return fmt.Errorf("failed to read probe metrics of pod %s/%s: %w", g.namespace, name, err)
		}
		series = append(series, s...)
		mem = append(mem, readPodMemory(in, goMem))
		st, err := m.Stats(g.namespace, name)
		if errors.Is(err, pod.ErrNotRunning) || errors.Is(err, pod.ErrNotFound) {
			continue // stopped meanwhile
		}
		if err != nil {
			return err
		}
		usage = append(usage, st)
	}
	if err := writeProbeMetrics(out, series); err != nil {
		return err
	}
	if err := writeContainerMetrics(out, usage); err != nil {
		return err
	}
	return writeMemoryMetrics(out, mem)
}

// podMemory is what a pod's own processes (not its containers) use: the
// supervisor, the reaper of a shared PID namespace and the peapod helpers
// the supervisor started (peapod-prober), each as the kernel accounts it,
// and the supervisor's Go runtime classes.
type podMemory struct {
	namespace, pod string
	// procs maps a process's role (procSupervisor, procReaper, or a
	// helper's command name) to its memory; helpers of one name add up.
	procs map[string]procfs.Memory
	// goMemory is supervisor.GoMemory of the supervisor.
	goMemory map[string]uint64
}

// The process label of the supervisor and of the reaper: both run the
// peapod-supervisor binary, so their command names are the same.
const (
	procSupervisor = "peapod-supervisor"
	procReaper     = "peapod-reaper"
)

// readPodMemory reads the memory of a running pod's supervisor, its reaper
// and the supervisor's children that are peapod helpers. The containers'
// processes are the supervisor's children too and are left out by pid (a
// workload may give itself any command name); so is a process that exits
// meanwhile.
func readPodMemory(in *pod.Inspect, goMem map[string]uint64) podMemory {
	pm := podMemory{namespace: in.Namespace, pod: in.Name, procs: map[string]procfs.Memory{}, goMemory: goMem}
	skip := map[int]bool{in.SupervisorPID: true, in.ReaperPID: true}
	for _, c := range in.Containers {
		skip[c.PID] = true
	}
	read := func(pid int, label string) {
		m, err := procfs.ReadMemory(pid)
		if err != nil {
			return
		}
		pm.procs[label] = pm.procs[label].Add(m)
	}
	read(in.SupervisorPID, procSupervisor)
	if in.ReaperPID != 0 {
		read(in.ReaperPID, procReaper)
	}
	for _, pid := range supervisor.Children(in.SupervisorPID) {
		if skip[pid] {
			continue
		}
		if st, err := procfs.ReadStat(pid); err == nil && !st.Gone() && strings.HasPrefix(st.Comm, "peapod-") {
			read(pid, st.Comm)
		}
	}
	return pm
}

// The families of writeMemoryMetrics.
const (
	procMemoryName = "peapod_pod_process_memory_bytes"
	procMemoryHelp = "Memory of a pod's peapod processes (its supervisor, its reaper with a shared PID namespace, and peapod-prober where it has one; not its containers) " +
		"by kind: rss, pss, and pss split into anon (heap, stacks, runtime metadata), file (the binary's text, shared by every pod) " +
		"and shmem, from /proc/PID/smaps_rollup; page_tables (VmPTE, not in pss) from /proc/PID/status."
	procThreadsName   = "peapod_pod_process_threads"
	procThreadsHelp   = "Threads of a pod's peapod processes."
	goMemoryName      = "peapod_supervisor_go_memory_bytes"
	goMemoryHelp      = "The pod supervisor's memory as its Go runtime classes it (runtime/metrics /memory/classes/..., e.g. heap/objects, heap/unused, heap/stacks, os-stacks, metadata/other)."
	goGoroutinesName  = "peapod_supervisor_goroutines"
	goGoroutinesHelp  = "Goroutines of the pod's supervisor."
	goroutinesClass   = "goroutines"
	memoryKindRss     = "rss"
	memoryKindPss     = "pss"
	memoryKindAnon    = "pss_anon"
	memoryKindFile    = "pss_file"
	memoryKindShmem   = "pss_shmem"
	memoryKindPTables = "page_tables"
)

// writeMemoryMetrics renders the memory of each pod's peapod processes.
func writeMemoryMetrics(out io.Writer, pods []podMemory) error {
	procMem := &dto.MetricFamily{Name: proto.String(procMemoryName), Help: proto.String(procMemoryHelp), Type: dto.MetricType_GAUGE.Enum()}
	threads := &dto.MetricFamily{Name: proto.String(procThreadsName), Help: proto.String(procThreadsHelp), Type: dto.MetricType_GAUGE.Enum()}
	goMem := &dto.MetricFamily{Name: proto.String(goMemoryName), Help: proto.String(goMemoryHelp), Type: dto.MetricType_GAUGE.Enum()}
	goroutines := &dto.MetricFamily{Name: proto.String(goGoroutinesName), Help: proto.String(goGoroutinesHelp), Type: dto.MetricType_GAUGE.Enum()}
	gauge := func(v float64, labels ...*dto.LabelPair) *dto.Metric {
		return &dto.Metric{Label: sortedLabels(labels), Gauge: &dto.Gauge{Value: proto.Float64(v)}}
	}
	for _, p := range pods {
		for _, comm := range slices.Sorted(maps.Keys(p.procs)) {
			m := p.procs[comm]
			for _, k := range []struct {
				kind string
				v    uint64
			}{{memoryKindRss, m.Rss}, {memoryKindPss, m.Pss}, {memoryKindAnon, m.PssAnon}, {memoryKindFile, m.PssFile},
				{memoryKindShmem, m.PssShmem}, {memoryKindPTables, m.PageTables}} {
				procMem.Metric = append(procMem.Metric, gauge(float64(k.v),
					label("kind", k.kind), label("namespace", p.namespace), label("pod", p.pod), label("process", comm)))
			}
			threads.Metric = append(threads.Metric, gauge(float64(m.Threads),
				label("namespace", p.namespace), label("pod", p.pod), label("process", comm)))
		}
		for _, class := range slices.Sorted(maps.Keys(p.goMemory)) {
			v := float64(p.goMemory[class])
			if class == goroutinesClass {
				goroutines.Metric = append(goroutines.Metric, gauge(v, label("namespace", p.namespace), label("pod", p.pod)))
				continue
			}
			goMem.Metric = append(goMem.Metric, gauge(v, label("class", class), label("namespace", p.namespace), label("pod", p.pod)))
		}
	}
	enc := expfmt.NewEncoder(out, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range []*dto.MetricFamily{procMem, threads, goMem, goroutines} {
		if len(mf.Metric) == 0 {
			continue
		}
		if err := enc.Encode(mf); err != nil {
			return fmt.Errorf("failed to encode %s: %w", mf.GetName(), err)
		}
	}
	return nil
}

// cAdvisor's series (the kubelet's /metrics/cadvisor) for each container,
// with cAdvisor's help texts; a limit of 0 means none, as cAdvisor reports.
var containerFamilies = []struct {
	name, help string
	typ        dto.MetricType
	value      func(cgroups.Stats) (float64, bool)
}{
	{"container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", dto.MetricType_COUNTER,
		func(s cgroups.Stats) (float64, bool) { return float64(s.CPUUsageUsec) / 1e6, s.Has[cgroups.StatCPU] }},
	{"container_memory_working_set_bytes", "Current working set in bytes.", dto.MetricType_GAUGE,
		func(s cgroups.Stats) (float64, bool) { return float64(s.MemoryWorkingSet), s.Has[cgroups.StatMemory] }},
	{"container_oom_events_total", "Count of out of memory events observed for the container", dto.MetricType_COUNTER,
		func(s cgroups.Stats) (float64, bool) { return float64(s.OOMKills), s.Has[cgroups.StatOOM] }},
	{"container_spec_memory_limit_bytes", "Memory limit for the container.", dto.MetricType_GAUGE,
		func(s cgroups.Stats) (float64, bool) { return float64(s.MemoryLimit), s.Has[cgroups.StatMemory] }},
}

// writeContainerMetrics renders cAdvisor's container series, labelled by
// namespace, pod and container as the kubelet labels them.
func writeContainerMetrics(out io.Writer, pods []*pod.PodStats) error {
	enc := expfmt.NewEncoder(out, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range containerFamilies {
		mf := &dto.MetricFamily{Name: proto.String(f.name), Help: proto.String(f.help), Type: f.typ.Enum()}
		for _, p := range pods {
			for _, c := range p.Containers {
				v, ok := f.value(c.Stats)
				if !ok {
					continue
				}
				m := &dto.Metric{Label: []*dto.LabelPair{label("container", c.Name), label("namespace", p.Namespace), label("pod", p.Name)}}
				if f.typ == dto.MetricType_COUNTER {
					m.Counter = &dto.Counter{Value: proto.Float64(v)}
				} else {
					m.Gauge = &dto.Gauge{Value: proto.Float64(v)}
				}
				mf.Metric = append(mf.Metric, m)
			}
		}
		if len(mf.Metric) == 0 {
			continue
		}
		if err := enc.Encode(mf); err != nil {
			return fmt.Errorf("failed to encode %s: %w", f.name, err)
		}
	}
	return nil
}

// metricsPods returns the named pod, or every pod of ns.
func metricsPods(m *pod.Manager, ns string, args []string) ([]string, error) {
	if len(args) == 1 {
		return args, nil
	}
	views, err := m.List(ns)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(views))
	for _, v := range views {
		names = append(names, v.Record.Name)
	}
	return names, nil
}

// writeProbeMetrics renders the series as the kubelet's two metric families.
func writeProbeMetrics(out io.Writer, series []probes.SeriesSnapshot) error {
	total := &dto.MetricFamily{Name: proto.String(probeTotalName), Help: proto.String(probeTotalHelp), Type: dto.MetricType_COUNTER.Enum()}
	dur := &dto.MetricFamily{Name: proto.String(probeDurationName), Help: proto.String(probeDurationHelp), Type: dto.MetricType_HISTOGRAM.Enum()}
	for _, s := range series {
		for _, r := range []struct {
			result string
			n      uint64
		}{{"failed", s.Failed}, {"successful", s.Successful}, {"unknown", s.Unknown}} {
			total.Metric = append(total.Metric, &dto.Metric{
				Label:   sortedLabels(append(durationLabels(s.Labels), label("pod_uid", s.Labels.PodUID), label("result", r.result))),
				Counter: &dto.Counter{Value: proto.Float64(float64(r.n))},
			})
		}
		dur.Metric = append(dur.Metric, &dto.Metric{Label: durationLabels(s.Labels), Histogram: histogram(s)})
	}
	enc := expfmt.NewEncoder(out, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range []*dto.MetricFamily{total, dur} {
		if len(mf.Metric) == 0 {
			continue
		}
		if err := enc.Encode(mf); err != nil {
			return fmt.Errorf("failed to encode %s: %w", mf.GetName(), err)
		}
	}
	return nil
}

// durationLabels are prober_probe_duration_seconds' labels (no pod_uid).
func durationLabels(l probes.SeriesLabels) []*dto.LabelPair {
	return []*dto.LabelPair{
		label("container", l.Container), label("namespace", l.Namespace),
		label("pod", l.Pod), label("probe_type", l.ProbeType),
	}
}

// sortedLabels orders label pairs by name, as Prometheus exposes them.
func sortedLabels(l []*dto.LabelPair) []*dto.LabelPair {
	sort.Slice(l, func(i, j int) bool { return l[i].GetName() < l[j].GetName() })
	return l
}

func label(name, value string) *dto.LabelPair {
	return &dto.LabelPair{Name: proto.String(name), Value: proto.String(value)}
}

// histogram converts a series' duration histogram (cumulative buckets).
func histogram(s probes.SeriesSnapshot) *dto.Histogram {
	h := &dto.Histogram{SampleCount: proto.Uint64(s.DurationCount), SampleSum: proto.Float64(s.DurationSum)}
	for i, ub := range probes.DurationBuckets {
		h.Bucket = append(h.Bucket, &dto.Bucket{UpperBound: proto.Float64(ub), CumulativeCount: proto.Uint64(s.DurationBuckets[i])})
	}
	return h
}
