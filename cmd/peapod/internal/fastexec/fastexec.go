// Package fastexec runs `peapod exec POD [-c CONTAINER] -- COMMAND...`
// without starting the CLI's Go runtime: a gcc constructor, run when the
// peapod binary starts, recognises that command line and execve's the
// read-only peapod-init helper (namespaces/nsenter) in place, with the
// container's exec profile — the file its supervisor wrote when the
// instance started (namespaces.WriteExecProfile) — and the command.
//
// Why: the CLI's start (Go runtime, 222 package inits of a 29 MB binary),
// the manager's reads and the spec's decoding were most of an exec's time;
// `crun exec` does its whole job in about the time `peapod version` takes.
//
// It handles only the plain case and returns, leaving the command to Go,
// for anything else: -i, -t, --debug, PEAPOD_TRACE, PEAPOD_DEBUG or
// PEAPOD_NO_FASTEXEC set, not root, an unknown flag, a pod or container it
// cannot find, no profile or one of an instance that is gone (another
// boot, a dead or reused pid). Go then runs the same exec, or reports the
// error in its own words. The output travels through pipes the helper
// relays (pipes=1), as Go's exec.Cmd does: no descriptor of the caller's —
// a terminal — reaches the container.
//
// Importing it (for its side effect only) makes the binary cgo-linked.
package fastexec

/*
#cgo CFLAGS: -Wall -Wextra -std=gnu11 -O2
*/
import "C"
