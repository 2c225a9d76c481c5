package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// readSamples reads a sample file: one number per line. A missing file is
// no samples, as a variant that was not run.
func readSamples(path string) ([]float64, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to open samples: %w", err)
	}
	defer f.Close()
	var v []float64
	s := bufio.NewScanner(f)
	for line := 1; s.Scan(); line++ {
		t := strings.TrimSpace(s.Text())
		if t == "" {
			continue
		}
		x, err := strconv.ParseFloat(t, 64)
		if err != nil {
			return nil, fmt.Errorf("failed to parse sample at %s:%d: %w", path, line, err)
		}
		v = append(v, x)
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("failed to read samples %q: %w", path, err)
	}
	return v, nil
}

// summary is what a table row says of one variant's samples.
type summary struct {
	n                int     // number of samples
	min, median, max float64 // of the samples
}

// summarize sorts a copy of v and summarizes it; v must not be empty.
func summarize(v []float64) summary {
	s := slices.Clone(v)
	slices.Sort(s)
	return summary{n: len(s), min: s[0], median: median(s), max: s[len(s)-1]}
}

// median of sorted, non-empty values; an even count takes the mean of the
// middle two.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// pairRatios returns a[i] ÷ b[i] for each run i both have and b[i] > 0:
// run i of two variants ran back to back, so their ratio cancels most of
// the machine's drift, which the ratio of two medians would not.
func pairRatios(a, b []float64) []float64 {
	var r []float64
	for i := range min(len(a), len(b)) {
		if b[i] > 0 {
			r = append(r, a[i]/b[i])
		}
	}
	return r
}

// formatRatio prints "median (min–max)" of ratios, or "-" without any.
func formatRatio(r []float64) string {
	if len(r) == 0 {
		return "-"
	}
	s := summarize(r)
	return fmt.Sprintf("%.3f (%.3f–%.3f)", s.median, s.min, s.max)
}

// writeTable writes the markdown table of one scenario: a row per variant
// with samples in samplesDir/<variant> (others are left out), with the CPU
// per operation when cpuDir/<variant> holds one CPU µs figure per counted
// run, and each variant's pair ratio to the first one, ref.
func writeTable(w io.Writer, samplesDir, cpuDir, title string, variants []string) error {
	fmt.Fprintf(w, "\n### %s\n\n", title)
	fmt.Fprintf(w, "| variant | runs | min ms | median ms | max ms | CPU ms/op | peapod ÷ variant (median of pairs, min–max) |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|\n")
	ref, err := readSamples(filepath.Join(samplesDir, variants[0]))
	if err != nil {
		return err
	}
	for i, v := range variants {
		samples, err := readSamples(filepath.Join(samplesDir, v))
		if err != nil {
			return err
		}
		if len(samples) == 0 {
			continue
		}
		s := summarize(samples)
		ratio := "—"
		if i > 0 && len(ref) > 0 {
			ratio = formatRatio(pairRatios(ref, samples))
		}
		cpu := "—"
		if cpuDir != "" {
			us, err := readSamples(filepath.Join(cpuDir, v))
			if err != nil {
				return err
			}
			if len(us) > 0 {
				// Per counted run: the CPU file may lack a run the samples
				// have, never the other way round.
				cpu = fmt.Sprintf("%.1f", sum(us)/1000/float64(s.n))
			}
		}
		fmt.Fprintf(w, "| %s | %d | %.1f | %.1f | %.1f | %s | %s |\n", v, s.n, s.min, s.median, s.max, cpu, ratio)
	}
	return nil
}

func sum(v []float64) float64 {
	var t float64
	for _, x := range v {
		t += x
	}
	return t
}

// cmdTable: `table -samples DIR [-cpu DIR] TITLE REF VARIANT...` prints a
// scenario's table; REF is the peapod variant every other is divided by.
func cmdTable(w io.Writer, args []string) error {
	fl := flag.NewFlagSet("table", flag.ContinueOnError)
	samples := fl.String("samples", "", "directory of sample files, one per variant")
	cpu := fl.String("cpu", "", "directory of CPU µs files, one per variant (optional)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *samples == "" || fl.NArg() < 2 {
		return fmt.Errorf("%w: want -samples DIR [-cpu DIR] TITLE REF [VARIANT...]", errUsage)
	}
	return writeTable(w, *samples, *cpu, fl.Arg(0), fl.Args()[1:])
}

// cmdRatio: `ratio A B` prints the median (min–max) of A[i] ÷ B[i].
func cmdRatio(w io.Writer, args []string) error {
	if err := wantArgs(args, 2, "A B"); err != nil {
		return err
	}
	a, err := readSamples(args[0])
	if err != nil {
		return err
	}
	b, err := readSamples(args[1])
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, formatRatio(pairRatios(a, b)))
	return err
}

// cmdSum: `sum [-int] A B` prints A[i] + B[i] per line: the two halves of a
// cycle timed apart make the whole cycle's sample. -int prints integers
// (CPU µs), else milliseconds with three decimals.
func cmdSum(w io.Writer, args []string) error {
	fl := flag.NewFlagSet("sum", flag.ContinueOnError)
	asInt := fl.Bool("int", false, "print integers")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if err := wantArgs(fl.Args(), 2, "[-int] A B"); err != nil {
		return err
	}
	a, err := readSamples(fl.Arg(0))
	if err != nil {
		return err
	}
	b, err := readSamples(fl.Arg(1))
	if err != nil {
		return err
	}
	if len(a) != len(b) {
		return fmt.Errorf("%s has %d samples, %s has %d: the halves of a cycle must pair up", fl.Arg(0), len(a), fl.Arg(1), len(b))
	}
	for i := range a {
		if *asInt {
			fmt.Fprintf(w, "%d\n", int64(math.Round(a[i]+b[i])))
		} else {
			fmt.Fprintf(w, "%.3f\n", a[i]+b[i])
		}
	}
	return nil
}

// parseNumbers parses args as numbers, naming the one that is not.
func parseNumbers(args []string) ([]float64, error) {
	v := make([]float64, len(args))
	for i, a := range args {
		x, err := strconv.ParseFloat(a, 64)
		if err != nil {
			return nil, fmt.Errorf("argument %d %q is not a number", i+1, a)
		}
		v[i] = x
	}
	return v, nil
}

// cmdMemRow: `mem-row LABEL PODS RSS_KIB PSS_KIB` prints scenario 3's row of
// MiB per pod from the sums over PODS pods.
func cmdMemRow(w io.Writer, args []string) error {
	if err := wantArgs(args, 4, "LABEL PODS RSS_KIB PSS_KIB"); err != nil {
		return err
	}
	v, err := parseNumbers(args[1:])
	if err != nil {
		return err
	}
	n, rss, pss := v[0], v[1], v[2]
	if n <= 0 {
		return fmt.Errorf("PODS must be positive, got %v", n)
	}
	_, err = fmt.Fprintf(w, "| %s | %d | %.2f | %.2f |\n", args[0], int(n), rss/n/1024, pss/n/1024)
	return err
}

// cmdMemRatio: `mem-ratio LABEL RSS_A RSS_B PSS_A PSS_B` prints scenario
// 3's row of A ÷ B.
func cmdMemRatio(w io.Writer, args []string) error {
	if err := wantArgs(args, 5, "LABEL RSS_A RSS_B PSS_A PSS_B"); err != nil {
		return err
	}
	v, err := parseNumbers(args[1:])
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "| %s | | %.3f | %.3f |\n", args[0], v[0]/v[1], v[2]/v[3])
	return err
}

// cmdMiBPerPod: `mib-per-pod BEFORE_KIB AFTER_KIB PODS` prints the drop of
// MemAvailable per pod in MiB.
func cmdMiBPerPod(w io.Writer, args []string) error {
	if err := wantArgs(args, 3, "BEFORE_KIB AFTER_KIB PODS"); err != nil {
		return err
	}
	v, err := parseNumbers(args)
	if err != nil {
		return err
	}
	if v[2] <= 0 {
		return fmt.Errorf("PODS must be positive, got %v", v[2])
	}
	_, err = fmt.Fprintf(w, "%.2f\n", (v[0]-v[1])/v[2]/1024)
	return err
}
