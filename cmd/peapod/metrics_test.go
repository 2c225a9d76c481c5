package main

import (
	"bytes"
	"strings"
	"testing"

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
