package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/peapod/peapod/cgroups"
	"github.com/peapod/peapod/runtime/pod"
)

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 999: "999B", 1000: "1kB", 67108864: "67.1MB", 25_100_000_000: "25.1GB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func statsAt(at time.Time, cpuUsec, mem int64, containers ...pod.ContainerStats) *pod.PodStats {
	has := map[string]bool{cgroups.StatCPU: true, cgroups.StatMemory: true, cgroups.StatPids: true}
	return &pod.PodStats{Namespace: "default", Name: "web", At: at,
		Pod:        cgroups.Stats{CPUUsageUsec: cpuUsec, MemoryUsage: mem, MemoryWorkingSet: mem / 2, MemoryLimit: 64 << 20, PidsCurrent: 3, Has: has},
		Containers: containers, NetRxBytes: 1500, NetTxBytes: 2_500_000, HasNet: true}
}

func TestWriteTop(t *testing.T) {
	t0 := time.Unix(1000, 0)
	c := func(usec int64) pod.ContainerStats {
		return pod.ContainerStats{Name: "app", Stats: cgroups.Stats{CPUUsageUsec: usec, MemoryWorkingSet: 5 << 20,
			Has: map[string]bool{cgroups.StatCPU: true, cgroups.StatMemory: true}}}
	}
	first := []*pod.PodStats{statsAt(t0, 1_000_000, 40<<20, c(900_000))}
	// 250 ms of CPU in 1 s: 250m; the pod's working set is half of 40Mi.
	second := []*pod.PodStats{statsAt(t0.Add(time.Second), 1_250_000, 40<<20, c(1_100_000)),
		statsAt(t0.Add(time.Second), 0, 0)} // a pod without a first sample is left out
	second[1].Name = "new"
	var out bytes.Buffer
	if err := writeTop(&out, first, second, false, false); err != nil {
		t.Fatal(err)
	}
	want := "NAME   CPU(cores)   MEMORY(bytes)\nweb    250m         20Mi\n"
	if out.String() != want {
		t.Errorf("top:\n%s\nwant:\n%s", out.String(), want)
	}
	out.Reset()
	if err := writeTop(&out, first, second, true, true); err != nil {
		t.Fatal(err)
	}
	want = "NAMESPACE   POD   NAME   CPU(cores)   MEMORY(bytes)\ndefault     web   app    200m         5Mi\n"
	if out.String() != want {
		t.Errorf("top --containers -A:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestWriteStats(t *testing.T) {
	t0 := time.Unix(1000, 0)
	prev := []*pod.PodStats{statsAt(t0, 0, 1<<20)}
	cur := []*pod.PodStats{statsAt(t0.Add(2*time.Second), 1_000_000, 16<<20)}
	var out bytes.Buffer
	if err := writeStats(&out, prev, cur, false, 8<<30); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("stats printed %d lines, want a header and one row:\n%s", len(lines), out.String())
	}
	for _, want := range []string{"web", "50.00%", "16.8MB / 67.1MB", "25.00%", "1.5kB / 2.5MB", "--", " 3"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("stats row %q lacks %q", lines[1], want)
		}
	}
	// No memory limit: the machine's memory is the limit, as podman shows.
	cur[0].Pod.MemoryLimit = 0
	out.Reset()
	if err := writeStats(&out, nil, cur, false, 8<<30); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "16.8MB / 8.59GB") || !strings.Contains(out.String(), "web    --") {
		t.Errorf("stats without a limit or a first reading:\n%s", out.String())
	}
}

func TestQuantityFlag(t *testing.T) {
	for _, bad := range []string{"abc", "-1", "0", "1Zi"} {
		if _, err := quantityFlag("--memory", bad); err == nil || !strings.Contains(err.Error(), "--memory") {
			t.Errorf("quantityFlag(%q) = %v, want an error naming --memory", bad, err)
		}
	}
	if q, err := quantityFlag("--cpu", "250m"); err != nil || q.MilliValue() != 250 {
		t.Errorf("quantityFlag(250m) = %v, %v", q, err)
	}
	if q, err := quantityFlag("--cpu", ""); err != nil || q != nil {
		t.Errorf("quantityFlag(\"\") = %v, %v; want nil, nil", q, err)
	}
}
