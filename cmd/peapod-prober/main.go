// Command peapod-prober runs a pod's HTTP and gRPC probes for its
// supervisor, so that the binary running once per pod links neither
// net/http, crypto/tls nor gRPC. The supervisor starts it (through its
// reaper) only for a pod that declares such a probe, writes requests on its
// stdin and reads answers on its stdout, in the line protocol of
// probes/wire.go; it exits when its stdin closes, that is when the
// supervisor closes it or dies.
//
//	peapod-prober            serve requests on stdin (started by the supervisor)
package main

import (
	"fmt"
	"os"
	"runtime/debug"
)

// gcPercent is the prober's GOGC: every HTTP probe leaves a few KiB of
// garbage, and at the default the heap would grow to GC's 4 MiB minimum
// before the first cycle; 10 collects at 0.4 MiB: with an HTTP probe a
// second, one cycle (~0.1 ms) every half minute or so.
const gcPercent = 10

func main() {
	if len(os.Args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: peapod-prober (started by peapod-supervisor, not by hand)")
		os.Exit(2)
	}
	debug.SetGCPercent(gcPercent)
	if err := serve(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "peapod-prober:", err)
		os.Exit(1)
	}
}
