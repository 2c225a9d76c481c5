package main

import (
	"fmt"
	"os"

	"github.com/peapod/peapod/internal/ktrace"
)

// setupDebug turns on the kernel-operation trace for --debug (or
// PEAPOD_DEBUG=1), in the chosen format; the supervisor and init stages a
// command starts inherit it (ktrace.PassExtraFiles).
func (g *globals) setupDebug() error {
	if g.logFormat != "text" && g.logFormat != "json" {
		return fmt.Errorf("invalid --log-format %q: use text or json", g.logFormat)
	}
	if g.debug {
		ktrace.Enable(os.Stderr, g.logFormat)
	}
	return nil
}
