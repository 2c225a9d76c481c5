package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// probeMetric is the probe-duration histogram `peapod metrics` prints, one
// series per pod, container and probe type.
const probeMetric = "prober_probe_duration_seconds"

// probeTotals are a metrics snapshot's probe durations summed over pods, by
// "container/probe_type".
type probeTotals map[string]probeTotal

// probeTotal is one key's summed histogram.
type probeTotal struct {
	seconds float64 // sum of the probes' durations
	count   float64 // number of probes
}

// parseProbeMetrics reads `peapod metrics` output and sums the probe
// durations of the pods whose name starts with podPrefix + "-".
func parseProbeMetrics(r io.Reader, podPrefix string) (probeTotals, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("failed to parse metrics: %w", err)
	}
	t := probeTotals{}
	for _, m := range families[probeMetric].GetMetric() {
		l := map[string]string{}
		for _, lp := range m.GetLabel() {
			l[lp.GetName()] = lp.GetValue()
		}
		if !strings.HasPrefix(l["pod"], podPrefix+"-") {
			continue
		}
		h := m.GetHistogram()
		if h == nil {
			return nil, fmt.Errorf("%s of pod %q is not a histogram", probeMetric, l["pod"])
		}
		k := l["container"] + "/" + l["probe_type"]
		p := t[k]
		p.seconds += h.GetSampleSum()
		p.count += float64(h.GetSampleCount())
		t[k] = p
	}
	return t, nil
}

// write prints the totals as "key seconds count" lines sorted by key, the
// file format probe-ms reads back.
func (t probeTotals) write(w io.Writer) error {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, err := fmt.Fprintf(w, "%s %s %s\n", k, strconv.FormatFloat(t[k].seconds, 'g', -1, 64),
			strconv.FormatFloat(t[k].count, 'f', -1, 64)); err != nil {
			return err
		}
	}
	return nil
}

// readProbeTotals reads a file written by probeTotals.write.
func readProbeTotals(path string) (probeTotals, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read probe totals: %w", err)
	}
	t := probeTotals{}
	for i, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("%s:%d: want \"key seconds count\", got %q", path, i+1, line)
		}
		v, err := parseNumbers(f[1:])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, i+1, err)
		}
		t[f[0]] = probeTotal{seconds: v[0], count: v[1]}
	}
	return t, nil
}

// probeMean is the mean duration of the probes of one key between two
// snapshots; ok is false when none ran.
func probeMean(before, after probeTotals, key string) (ms float64, n int, ok bool) {
	a, okA := before[key]
	b, okB := after[key]
	if !okA || !okB || b.count <= a.count {
		return 0, 0, false
	}
	return (b.seconds - a.seconds) * 1000 / (b.count - a.count), int(b.count - a.count), true
}

// formatMean prints a probeMean as "ms count", "- 0" when none ran.
func formatMean(ms float64, n int, ok bool) (string, int) {
	if !ok {
		return "-", 0
	}
	return fmt.Sprintf("%.2f", ms), n
}

// readSnapshots reads two probe totals files.
func readSnapshots(m0, m1 string) (probeTotals, probeTotals, error) {
	before, err := readProbeTotals(m0)
	if err != nil {
		return nil, nil, err
	}
	after, err := readProbeTotals(m1)
	return before, after, err
}

// cmdProbeMetrics: `probe-metrics POD_PREFIX` reads `peapod metrics` on
// stdin and prints the probe totals of the pods POD_PREFIX-*.
func cmdProbeMetrics(w io.Writer, r io.Reader, args []string) error {
	if err := wantArgs(args, 1, "POD_PREFIX"); err != nil {
		return err
	}
	t, err := parseProbeMetrics(r, args[0])
	if err != nil {
		return err
	}
	return t.write(w)
}

// cmdProbeMS: `probe-ms M0 M1 KEY` prints "mean_ms count" of KEY's probes
// between two snapshots, "- 0" when none ran.
func cmdProbeMS(w io.Writer, args []string) error {
	if err := wantArgs(args, 3, "M0 M1 CONTAINER/PROBE_TYPE"); err != nil {
		return err
	}
	before, after, err := readSnapshots(args[0], args[1])
	if err != nil {
		return err
	}
	ms, n := formatMean(probeMean(before, after, args[2]))
	_, err = fmt.Fprintf(w, "%s %d\n", ms, n)
	return err
}

// loadRow is one row of scenario 6's load table.
type loadRow struct {
	label    string  // what the pods probe
	pods     int     // pods probing
	helpers  int     // peapod helpers the supervisors started
	ticks    float64 // CPU clock ticks of supervisors and helpers in the window
	hz       float64 // clock ticks per second
	windowUS float64 // the window, µs
}

// The keys of scenario 6's probes, in the table's column order: HTTP
// readiness and TCP liveness of container web, exec liveness of ex.
var loadKeys = []string{"web/Readiness", "web/Liveness", "ex/Liveness"}

// write prints the row from the metrics snapshots around the window.
func (r loadRow) write(w io.Writer, before, after probeTotals) error {
	var cells []string
	probes := 0
	for _, k := range loadKeys {
		ms, n := formatMean(probeMean(before, after, k))
		cells = append(cells, ms)
		probes += n
	}
	cpu, sec := r.ticks/r.hz, r.windowUS/1e6
	perProbe := "-"
	if probes > 0 {
		perProbe = fmt.Sprintf("%.0f", cpu*1e6/float64(probes))
	}
	_, err := fmt.Fprintf(w, "| %s | %d | %d | %.1f | %.2f | %.2f %% | %s | %s | %s | %s |\n",
		r.label, r.pods, r.helpers, float64(probes)/sec, cpu, cpu/sec*100, perProbe, cells[0], cells[1], cells[2])
	return err
}

// cmdProbeRow: `probe-row -label L -pods N -helpers H -ticks T -hz HZ
// -window-us W M0 M1` prints one row of scenario 6's load table.
func cmdProbeRow(w io.Writer, args []string) error {
	var r loadRow
	fl := flag.NewFlagSet("probe-row", flag.ContinueOnError)
	fl.StringVar(&r.label, "label", "", "the row's label")
	fl.IntVar(&r.pods, "pods", 0, "pods probing")
	fl.IntVar(&r.helpers, "helpers", 0, "peapod helpers the supervisors started")
	fl.Float64Var(&r.ticks, "ticks", 0, "CPU clock ticks in the window")
	fl.Float64Var(&r.hz, "hz", 0, "clock ticks per second (getconf CLK_TCK)")
	fl.Float64Var(&r.windowUS, "window-us", 0, "the window's length in µs")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if err := wantArgs(fl.Args(), 2, "flags M0 M1"); err != nil {
		return err
	}
	if r.hz <= 0 || r.windowUS <= 0 {
		return fmt.Errorf("-hz and -window-us must be positive, got %v and %v", r.hz, r.windowUS)
	}
	before, after, err := readSnapshots(fl.Arg(0), fl.Arg(1))
	if err != nil {
		return err
	}
	return r.write(w, before, after)
}

// cmdExecLatency: `exec-latency IDLE_M0 IDLE_M1 LOAD_M0 LOAD_M1 CRUN_IDLE
// CRUN_LOAD CRUN_PACED` prints scenario 6's closing sentence: the exec
// probe's mean latency from the supervisor's metrics, idle and under load,
// each divided by the median of the matching `crun exec` samples.
func cmdExecLatency(w io.Writer, args []string) error {
	if err := wantArgs(args, 7, "IDLE_M0 IDLE_M1 LOAD_M0 LOAD_M1 CRUN_IDLE CRUN_LOAD CRUN_PACED"); err != nil {
		return err
	}
	const key = "ex/Liveness"
	var means [2]struct {
		ms float64
		n  int
		ok bool
	}
	for i := range means {
		before, after, err := readSnapshots(args[2*i], args[2*i+1])
		if err != nil {
			return err
		}
		means[i].ms, means[i].n, means[i].ok = probeMean(before, after, key)
	}
	// Each ratio divides the figures as printed, so a reader who divides
	// them gets the ratio the sentence states.
	var crun [3]float64
	for i := range crun {
		s, err := readSamples(args[4+i])
		if err != nil {
			return err
		}
		if len(s) == 0 {
			return fmt.Errorf("no samples in %s", args[4+i])
		}
		crun[i] = rounded(summarize(s).median, 1)
	}
	idle, idleN := formatMean(means[0].ms, means[0].n, means[0].ok)
	load, loadN := formatMean(means[1].ms, means[1].n, means[1].ok)
	ratio := func(i, c int) string {
		if !means[i].ok {
			return "-"
		}
		return fmt.Sprintf("%.2f", rounded(means[i].ms, 2)/crun[c])
	}
	_, err := fmt.Fprintf(w, "\nExec probe latency from the supervisor (prober_probe_duration_seconds sum ÷ count): "+
		"idle %s ms (%d probes) = %s × crun exec once a second (%.1f ms), %s × crun exec interleaved (%.1f ms); "+
		"under load %s ms (%d probes) = %s × crun exec (%.1f ms).\n",
		idle, idleN, ratio(0, 2), crun[2], ratio(0, 0), crun[0], load, loadN, ratio(1, 1), crun[1])
	return err
}

// rounded is x as printed with the given decimals.
func rounded(x float64, decimals int) float64 {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'f', decimals, 64), 64)
	return r
}
