package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testdata/awk holds what the awk code of scripts/bench.sh and
// scripts/bench/lib.sh printed for the inputs in testdata/samples,
// testdata/cpu and testdata/metrics before that code moved here (commit
// f25760f); the tests hold benchtool to the same output.

// bt runs a benchtool command line and returns its output.
func bt(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	if err := dispatch(&out, args); err != nil {
		t.Fatalf("benchtool %s: %v", strings.Join(args, " "), err)
	}
	return out.String()
}

// want reads testdata/awk/NAME.
func want(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "awk", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTableMatchesAwk(t *testing.T) {
	got := bt(t, "table", "-samples", "testdata/samples/s4", "-cpu", "testdata/cpu/s4",
		"Scenario 4: exec POD -- /bin/true", "peapod", "crun", "nsenter", "podman", "empty")
	if w := want(t, "table-s4.md"); got != w {
		t.Errorf("table:\n%s\nwant (awk):\n%s", got, w)
	}
}

// TestSumThenTableMatchesAwk: scenario 1 sums the start and removal halves
// of each cycle, samples and CPU, then tables the whole cycle.
func TestSumThenTableMatchesAwk(t *testing.T) {
	dir := t.TempDir()
	samples, cpu := filepath.Join(dir, "samples"), filepath.Join(dir, "cpu")
	for _, d := range []string{samples, cpu} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"peapod-run", "peapod-rm", "floor"} {
		copyFile(t, filepath.Join("testdata/samples/s1", f), filepath.Join(samples, f))
	}
	ms := bt(t, "sum", filepath.Join(samples, "peapod-run"), filepath.Join(samples, "peapod-rm"))
	if w := want(t, "sum-ms.txt"); ms != w {
		t.Errorf("sum:\n%s\nwant (awk):\n%s", ms, w)
	}
	us := bt(t, "sum", "-int", "testdata/cpu/s1/peapod-run", "testdata/cpu/s1/peapod-rm")
	if w := want(t, "sum-cpu.txt"); us != w {
		t.Errorf("sum -int:\n%s\nwant (awk):\n%s", us, w)
	}
	writeFile(t, filepath.Join(samples, "peapod"), ms)
	writeFile(t, filepath.Join(cpu, "peapod"), us)
	got := bt(t, "table", "-samples", samples, "-cpu", cpu, "Scenario 1: pod cycle", "peapod", "floor")
	if w := want(t, "table-s1.md"); got != w {
		t.Errorf("table:\n%s\nwant (awk):\n%s", got, w)
	}
}

func TestRatioMatchesAwk(t *testing.T) {
	got := bt(t, "ratio", "testdata/samples/s4/peapod", "testdata/samples/s4/crun")
	if w := want(t, "ratio.txt"); got != w {
		t.Errorf("ratio: %q, want (awk) %q", got, w)
	}
}

func TestMemRowsMatchAwk(t *testing.T) {
	got := bt(t, "mem-row", "peapod (supervisor)", "20", "98765", "34567") +
		bt(t, "mem-ratio", "peapod ÷ podman", "98765", "301234", "34567", "123456") +
		bt(t, "mib-per-pod", "24000000", "23890000", "100")
	if w := want(t, "mem.txt"); got != w {
		t.Errorf("memory rows:\n%s\nwant (awk):\n%s", got, w)
	}
}

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want summary
	}{
		{[]float64{3}, summary{n: 1, min: 3, median: 3, max: 3}},
		{[]float64{4, 1, 3}, summary{n: 3, min: 1, median: 3, max: 4}},
		{[]float64{4, 1, 3, 2}, summary{n: 4, min: 1, median: 2.5, max: 4}},
	} {
		in := slices.Clone(tc.in)
		if got := summarize(in); got != tc.want {
			t.Errorf("summarize(%v) = %+v, want %+v", tc.in, got, tc.want)
		}
		if !slices.Equal(in, tc.in) {
			t.Errorf("summarize sorted its input in place: %v", in)
		}
	}
}

func TestPairRatios(t *testing.T) {
	// Run by run, up to the shorter file; a zero divisor (a failed
	// measurement) drops that run rather than dividing by it.
	got := pairRatios([]float64{2, 3, 4, 9}, []float64{1, 0, 8})
	if want := []float64{2, 0.5}; !slices.Equal(got, want) {
		t.Errorf("pairRatios = %v, want %v", got, want)
	}
	if got := formatRatio(nil); got != "-" {
		t.Errorf("formatRatio(nil) = %q, want -", got)
	}
	if got := formatRatio([]float64{2, 0.5, 1}); got != "1.000 (0.500–2.000)" {
		t.Errorf("formatRatio = %q", got)
	}
}

func TestTableLeavesOutMissingVariants(t *testing.T) {
	got := bt(t, "table", "-samples", "testdata/samples/s4", "T", "nosuch", "crun")
	// No reference samples: no ratio; no -cpu: no CPU column figures.
	if !strings.Contains(got, "| crun | 6 | 5.6 | 18.1 | 32.1 | — | — |\n") || strings.Contains(got, "nosuch") {
		t.Errorf("table without reference samples:\n%s", got)
	}
}

func TestErrorsNameTheInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	writeFile(t, bad, "1.5\nfast\n")
	three := filepath.Join(dir, "three")
	writeFile(t, three, "1\n2\n3\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no subcommand"},
		{[]string{"frobnicate"}, `unknown subcommand "frobnicate"`},
		{[]string{"ratio", bad, three}, bad + ":2"},
		{[]string{"sum", "testdata/samples/s4/peapod", three}, "must pair up"},
		{[]string{"mem-row", "x", "0", "1", "1"}, "PODS must be positive"},
		{[]string{"mem-row", "x", "20", "many", "1"}, `"many" is not a number`},
		{[]string{"table", "-samples", dir}, "want -samples DIR"},
		{[]string{"probe-ms", "testdata/awk/idle-m0", "nosuch", "ex/Liveness"}, "nosuch"},
	} {
		err := dispatch(&bytes.Buffer{}, tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("benchtool %q: error %v, want one containing %q", tc.args, err, tc.want)
		}
	}
}

func TestProbeMetricsMatchAwk(t *testing.T) {
	for _, tc := range []struct{ file, prefix string }{
		{"load-m0", "s6f"}, {"load-m1", "s6f"}, {"idle-m0", "s6"}, {"idle-m1", "s6"}, {"web-m0", "s6w"}, {"web-m1", "s6w"},
	} {
		f, err := os.Open(filepath.Join("testdata/metrics", tc.file+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		err = cmdProbeMetrics(&out, f, []string{tc.prefix})
		f.Close()
		if err != nil {
			t.Fatalf("probe-metrics %s: %v", tc.file, err)
		}
		got := filepath.Join(t.TempDir(), tc.file)
		writeFile(t, got, out.String())
		gotT, err := readProbeTotals(got)
		if err != nil {
			t.Fatal(err)
		}
		// awk printed sums with 6 significant digits; benchtool keeps them all.
		wantT, err := readProbeTotals(filepath.Join("testdata/awk", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		if len(gotT) != len(wantT) {
			t.Errorf("%s: keys %v, want (awk) %v", tc.file, gotT, wantT)
		}
		for k, w := range wantT {
			g := gotT[k]
			if g.count != w.count || math.Abs(g.seconds-w.seconds) > 1e-9 {
				t.Errorf("%s %s: %+v, want (awk) %+v", tc.file, k, g, w)
			}
		}
	}
}

func TestProbeFiguresMatchAwk(t *testing.T) {
	m := func(n string) string { return filepath.Join("testdata/awk", n) }
	if got, w := bt(t, "probe-ms", m("idle-m0"), m("idle-m1"), "ex/Liveness"), want(t, "probe-ms-idle.txt"); got != w {
		t.Errorf("probe-ms: %q, want (awk) %q", got, w)
	}
	rows := bt(t, "probe-row", "-label", "HTTP readiness + TCP liveness", "-pods", "2", "-helpers", "0",
		"-ticks", "123", "-hz", "100", "-window-us", "60012345", m("web-m0"), m("web-m1")) +
		bt(t, "probe-row", "-label", "HTTP + TCP + exec liveness", "-pods", "2", "-helpers", "1",
			"-ticks", "456", "-hz", "100", "-window-us", "60500000", m("load-m0"), m("load-m1"))
	if w := want(t, "probe-rows.md"); rows != w {
		t.Errorf("probe rows:\n%s\nwant (awk):\n%s", rows, w)
	}
	got := bt(t, "exec-latency", m("idle-m0"), m("idle-m1"), m("load-m0"), m("load-m1"),
		"testdata/samples/crun-idle", "testdata/samples/crun-load", "testdata/samples/crun-paced")
	if w := want(t, "exec-latency.md"); got != w {
		t.Errorf("exec latency:\n%s\nwant (awk):\n%s", got, w)
	}
}

func TestProbeMSWithoutProbes(t *testing.T) {
	// The same snapshot twice: no probe ran in between.
	m := "testdata/awk/idle-m0"
	if got := bt(t, "probe-ms", m, m, "ex/Liveness"); got != "- 0\n" {
		t.Errorf("probe-ms without new probes: %q, want \"- 0\\n\"", got)
	}
	if got := bt(t, "probe-ms", m, "testdata/awk/idle-m1", "web/Readiness"); got != "- 0\n" {
		t.Errorf("probe-ms of a key not there: %q, want \"- 0\\n\"", got)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dst, string(b))
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
