// Command benchtool is scripts/bench.sh's Go half: the bash script drives
// the tools under test and records raw samples (milliseconds, one per line,
// in a file per variant); benchtool turns them into the figures and markdown
// tables of the results file, and times scenario 5's pod networks itself.
//
//	benchtool table -samples DIR [-cpu DIR] TITLE REF VARIANT...
//	benchtool ratio A B
//	benchtool sum [-int] A B
//	benchtool mem-row LABEL PODS RSS_KIB PSS_KIB
//	benchtool mem-ratio LABEL RSS_A RSS_B PSS_A PSS_B
//	benchtool mib-per-pod BEFORE_KIB AFTER_KIB PODS
//	benchtool probe-metrics POD_PREFIX <METRICS
//	benchtool probe-ms M0 M1 CONTAINER/PROBE_TYPE
//	benchtool probe-row -label L -pods N -helpers H -ticks T -hz HZ -window-us W M0 M1
//	benchtool exec-latency IDLE_M0 IDLE_M1 LOAD_M0 LOAD_M1 CRUN_IDLE CRUN_LOAD CRUN_PACED
//	benchtool net [flags]
//	benchtool push-image REF LAYERS MIB
//
// Each subcommand is described at the function that runs it.
package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
)

// errUsage marks a command line benchtool cannot run; main prints the
// usage after it.
var errUsage = errors.New("usage")

// subcommands maps each subcommand to the function that runs it with the
// remaining arguments, writing its result to w.
var subcommands = map[string]func(w io.Writer, args []string) error{
	"table":         cmdTable,
	"ratio":         cmdRatio,
	"sum":           cmdSum,
	"mem-row":       cmdMemRow,
	"mem-ratio":     cmdMemRatio,
	"mib-per-pod":   cmdMiBPerPod,
	"probe-metrics": func(w io.Writer, args []string) error { return cmdProbeMetrics(w, os.Stdin, args) },
	"probe-ms":      cmdProbeMS,
	"probe-row":     cmdProbeRow,
	"exec-latency":  cmdExecLatency,
	"net":           func(_ io.Writer, args []string) error { return runNet(args) },
	"push-image":    cmdPushImage,
}

func main() {
	if err := dispatch(os.Stdout, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		if errors.Is(err, errUsage) {
			fmt.Fprintf(os.Stderr, "subcommands: %s (see the package doc in scripts/bench/benchtool/main.go)\n", strings.Join(names(), ", "))
		}
		os.Exit(1)
	}
}

// dispatch runs the subcommand args[0] with the rest of args.
func dispatch(w io.Writer, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: no subcommand", errUsage)
	}
	run, ok := subcommands[args[0]]
	if !ok {
		return fmt.Errorf("%w: unknown subcommand %q", errUsage, args[0])
	}
	if err := run(w, args[1:]); err != nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	return nil
}

// names lists the subcommands, sorted.
func names() []string { return slices.Sorted(maps.Keys(subcommands)) }

// wantArgs checks that args has exactly n elements, named in usage.
func wantArgs(args []string, n int, usage string) error {
	if len(args) != n {
		return fmt.Errorf("%w: want %s, got %d argument(s)", errUsage, usage, len(args))
	}
	return nil
}
