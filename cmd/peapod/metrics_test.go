package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/peapod/peapod/internal/procfs"
	"github.com/peapod/peapod/probes"
)

// TestWriteProbeMetrics renders one series in the kubelet's families:
// prober_probe_total by result with pod_uid, the histogram without it.
func TestWriteProbeMetrics(t *testing.T) {
	s := probes.SeriesSnapshot{
		Labels:     probes.SeriesLabels{ProbeType: "Liveness", Container: "c", Pod: "p", Namespace: "ns", PodUID: "u"},
		Successful: 4, Failed: 2, DurationCount: 4, DurationSum: 0.5,
		DurationBuckets: []uint64{1, 2, 3, 4, 4, 4, 4, 4, 4, 4, 4},
	}
	var out bytes.Buffer
	if err := writeProbeMetrics(&out, []probes.SeriesSnapshot{s}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# TYPE prober_probe_total counter",
		`prober_probe_total{container="c",namespace="ns",pod="p",pod_uid="u",probe_type="Liveness",result="failed"} 2`,
		`prober_probe_total{container="c",namespace="ns",pod="p",pod_uid="u",probe_type="Liveness",result="successful"} 4`,
		"# TYPE prober_probe_duration_seconds histogram",
		`prober_probe_duration_seconds_bucket{container="c",namespace="ns",pod="p",probe_type="Liveness",le="0.01"} 2`,
		`prober_probe_duration_seconds_bucket{container="c",namespace="ns",pod="p",probe_type="Liveness",le="+Inf"} 4`,
		`prober_probe_duration_seconds_sum{container="c",namespace="ns",pod="p",probe_type="Liveness"} 0.5`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := writeProbeMetrics(&out, nil); err != nil || out.Len() != 0 {
		t.Errorf("no series: %q, %v; want empty output", out.String(), err)
	}
}

// TestWriteMemoryMetrics renders a pod's processes by kind and its
// supervisor's Go classes, goroutines apart.
func TestWriteMemoryMetrics(t *testing.T) {
	p := podMemory{namespace: "ns", pod: "p",
		procs: map[string]procfs.Memory{
			"peapod-supervisor": {Rss: 5 << 20, Pss: 1 << 20, PssAnon: 900 << 10, PssFile: 124 << 10, PageTables: 60 << 10, Threads: 7},
		},
		goMemory: map[string]uint64{"heap/objects": 350000, "heap/stacks": 460000, "goroutines": 10},
	}
	var out bytes.Buffer
	if err := writeMemoryMetrics(&out, []podMemory{p}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# TYPE peapod_pod_process_memory_bytes gauge",
		`peapod_pod_process_memory_bytes{kind="pss",namespace="ns",pod="p",process="peapod-supervisor"} 1.048576e+06`,
		`peapod_pod_process_memory_bytes{kind="pss_anon",namespace="ns",pod="p",process="peapod-supervisor"} 921600`,
		`peapod_pod_process_memory_bytes{kind="page_tables",namespace="ns",pod="p",process="peapod-supervisor"} 61440`,
		`peapod_pod_process_threads{namespace="ns",pod="p",process="peapod-supervisor"} 7`,
		`peapod_supervisor_go_memory_bytes{class="heap/stacks",namespace="ns",pod="p"} 460000`,
		`peapod_supervisor_goroutines{namespace="ns",pod="p"} 10`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), `class="goroutines"`) {
		t.Errorf("goroutines rendered as a memory class:\n%s", out.String())
	}
	out.Reset()
	if err := writeMemoryMetrics(&out, nil); err != nil || out.Len() != 0 {
		t.Errorf("no pods: %q, %v; want empty output", out.String(), err)
	}
}
