// Package procfs reads the few /proc files peapod's processes need, once
// each: /proc/PID/stat for a process's state, parent and start time (the
// start time with the PID names a process, so a reused PID is never taken
// for the one recorded). It links nothing beyond the standard library, so
// the per-pod supervisor can use it (prometheus/procfs would not pass the
// supervisor's lean test).
package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// ErrMalformed marks a stat line that does not parse.
var ErrMalformed = errors.New("malformed /proc stat")

// Stat is what peapod uses of /proc/PID/stat (proc_pid_stat(5)).
type Stat struct {
	// PID is field 1.
	PID int
	// Comm is field 2 without its parentheses: the command name, at most
	// 15 bytes, which may itself hold spaces and parentheses.
	Comm string
	// State is field 3: 'R', 'S', 'D', 'Z' (zombie), 'X' (dead), ...
	State byte
	// PPID is field 4, the parent's PID.
	PPID int
	// StartTime is field 22, in clock ticks after boot.
	StartTime uint64
}

// Gone reports whether the process has exited: a zombie not yet reaped, or
// dead.
func (s Stat) Gone() bool {
	return s.State == 'Z' || s.State == 'X'
}

// ReadStat reads and parses /proc/<pid>/stat. A process that does not
// exist is an error that errors.Is fs.ErrNotExist (or ESRCH, when it exits
// during the read).
func ReadStat(pid int) (Stat, error) { return readParsed(pid, "stat", ParseStat) }

// readParsed reads /proc/<pid>/<file> and parses it; errors name the file
// and the pid.
func readParsed[T any](pid int, file string, parse func([]byte) (T, error)) (T, error) {
	var zero T
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + file)
	if err != nil {
		return zero, fmt.Errorf("failed to read %s of pid %d: %w", file, pid, err)
	}
	v, err := parse(b)
	if err != nil {
		return zero, fmt.Errorf("failed to parse %s of pid %d: %w", file, pid, err)
	}
	return v, nil
}

// ParseStat parses one /proc/PID/stat line. The command name may contain
// anything, ')' and spaces included, so the fields after it are counted
// from the last ')'.
func ParseStat(b []byte) (Stat, error) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 1 || end < open {
		return Stat{}, fmt.Errorf("%w: no (comm) in %q", ErrMalformed, b)
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil {
		return Stat{}, fmt.Errorf("%w: pid in %q: %w", ErrMalformed, b, err)
	}
	// rest[0] is field 3 (state), rest[1] field 4 (ppid), rest[19] field 22
	// (starttime).
	rest := bytes.Fields(b[end+1:])
	if len(rest) < 20 || len(rest[0]) != 1 {
		return Stat{}, fmt.Errorf("%w: short %q", ErrMalformed, b)
	}
	ppid, err := strconv.Atoi(string(rest[1]))
	if err != nil {
		return Stat{}, fmt.Errorf("%w: ppid in %q: %w", ErrMalformed, b, err)
	}
	start, err := strconv.ParseUint(string(rest[19]), 10, 64)
	if err != nil {
		return Stat{}, fmt.Errorf("%w: start time in %q: %w", ErrMalformed, b, err)
	}
	return Stat{PID: pid, Comm: string(b[open+1 : end]), State: rest[0][0], PPID: ppid, StartTime: start}, nil
}
