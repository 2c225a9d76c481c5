package state

import (
	"fmt"
	"os"
	"syscall"

	"github.com/peapod/peapod/internal/procfs"
)

// StartTime returns a process's start time in clock ticks since boot, the
// 22nd field of /proc/PID/stat.
func StartTime(pid int) (uint64, error) {
	st, err := procfs.ReadStat(pid)
	if err != nil {
		return 0, err
	}
	return st.StartTime, nil
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
	st, err := procfs.ReadStat(p.PID)
	return err == nil && !st.Gone() && st.StartTime == p.Start
}

// IDs is p's uid, gid and supplementary groups as /proc/PID/status shows
// them, if p is still the process recorded (read before its start time is
// checked, so a pid reused in between is not taken for it).
func (p Proc) IDs() (procfs.IDs, bool) {
	if p.PID <= 0 {
		return procfs.IDs{}, false
	}
	ids, err := procfs.ReadIDs(p.PID)
	return ids, err == nil && p.Alive()
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
