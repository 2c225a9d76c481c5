package state

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// StartTime returns a process's start time in clock ticks since boot, the
// 22nd field of /proc/PID/stat. The comm field (2nd) may contain spaces and
// parentheses, so parsing starts after its last ')'.
func StartTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("failed to read stat of pid %d: %w", pid, err)
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed stat of pid %d", pid)
	}
	fields := bytes.Fields(b[i+1:])
	// After comm: field 3 (state) is fields[0], so field 22 is fields[19].
	if len(fields) < 20 {
		return 0, fmt.Errorf("short stat of pid %d", pid)
	}
	v, err := strconv.ParseUint(string(fields[19]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad start time in stat of pid %d: %w", pid, err)
	}
	return v, nil
}

// Self returns this process as a Proc.
func Self() Proc {
	st, _ := StartTime(os.Getpid())
	return Proc{PID: os.Getpid(), Start: st}
}

// ProcOf returns pid as a Proc (zero Start when it is already gone).
func ProcOf(pid int) Proc {
	st, _ := StartTime(pid)
	return Proc{PID: pid, Start: st}
}

// Alive reports whether p is still the same running process: the pid exists,
// is not a zombie, and has the recorded start time.
func (p Proc) Alive() bool {
	if p.PID <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.PID) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	if b[i+2] == 'Z' || b[i+2] == 'X' {
		return false
	}
	st, err := StartTime(p.PID)
	return err == nil && st == p.Start
}

// Signal sends sig to p only if p is still the process we recorded.
func (p Proc) Signal(sig syscall.Signal) error {
	if !p.Alive() {
		return nil
	}
	if err := syscall.Kill(p.PID, sig); err != nil && err != syscall.ESRCH {
		return fmt.Errorf("failed to signal pid %d: %w", p.PID, err)
	}
	return nil
}
