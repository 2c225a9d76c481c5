package procfs

import (
	"fmt"
	"strconv"
)

// Memory is the kernel's account of a process's memory, in bytes: what
// /proc/PID/smaps_rollup sums over its mappings (proportional shares: a
// page mapped by N processes counts 1/N in each) and what /proc/PID/status
// says of its page tables and threads.
type Memory struct {
	Rss, Pss uint64
	// PssAnon is private and shared anonymous memory (a Go process's heap,
	// goroutine stacks and runtime metadata); PssFile the file pages
	// mapped, mostly the binary's text and rodata, shared by every process
	// of that binary; PssShmem shared memory.
	PssAnon, PssFile, PssShmem uint64
	// PageTables is VmPTE, the process's page tables (not in Pss).
	PageTables uint64
	// Threads is the number of threads.
	Threads int
}

// Add returns the sum of m and o.
func (m Memory) Add(o Memory) Memory {
	return Memory{
		Rss: m.Rss + o.Rss, Pss: m.Pss + o.Pss,
		PssAnon: m.PssAnon + o.PssAnon, PssFile: m.PssFile + o.PssFile, PssShmem: m.PssShmem + o.PssShmem,
		PageTables: m.PageTables + o.PageTables, Threads: m.Threads + o.Threads,
	}
}

// ReadMemory reads pid's smaps_rollup and status.
func ReadMemory(pid int) (Memory, error) {
	m, err := readParsed(pid, "smaps_rollup", ParseSmapsRollup)
	if err != nil {
		return Memory{}, err
	}
	st, err := readParsed(pid, "status", ParseStatusMemory)
	if err != nil {
		return Memory{}, err
	}
	m.PageTables, m.Threads = st.PageTables, st.Threads
	return m, nil
}

// ParseSmapsRollup parses the Rss:, Pss:, Pss_Anon:, Pss_File: and
// Pss_Shmem: lines of a /proc/PID/smaps_rollup (kB); Rss and Pss must be
// there (the split lines came with Linux 5.7).
func ParseSmapsRollup(b []byte) (Memory, error) {
	var m Memory
	var seen int
	err := scanStatus(b, func(key, val string, fields []string) error {
		var dst *uint64
		switch key {
		case "Rss":
			dst, seen = &m.Rss, seen|1
		case "Pss":
			dst, seen = &m.Pss, seen|2
		case "Pss_Anon":
			dst = &m.PssAnon
		case "Pss_File":
			dst = &m.PssFile
		case "Pss_Shmem":
			dst = &m.PssShmem
		default:
			return nil
		}
		v, err := kiB(fields)
		if err != nil {
			return fmt.Errorf("%w: %s: %q", ErrMalformed, key, val)
		}
		*dst = v
		return nil
	})
	if err != nil {
		return Memory{}, err
	}
	if seen != 3 {
		return Memory{}, fmt.Errorf("%w: no Rss or Pss line", ErrMalformed)
	}
	return m, nil
}

// ParseStatusMemory parses the VmPTE: and Threads: lines of a
// /proc/PID/status into a Memory's PageTables and Threads. A kernel thread
// has no VmPTE; Threads must be there.
func ParseStatusMemory(b []byte) (Memory, error) {
	var m Memory
	var seen bool
	err := scanStatus(b, func(key, val string, fields []string) error {
		switch key {
		case "VmPTE":
			v, err := kiB(fields)
			if err != nil {
				return fmt.Errorf("%w: VmPTE: %q", ErrMalformed, val)
			}
			m.PageTables = v
		case "Threads":
			if len(fields) != 1 {
				return fmt.Errorf("%w: Threads: %q", ErrMalformed, val)
			}
			n, err := strconv.Atoi(fields[0])
			if err != nil || n < 0 {
				return fmt.Errorf("%w: Threads: %q", ErrMalformed, val)
			}
			m.Threads, seen = n, true
		}
		return nil
	})
	if err != nil {
		return Memory{}, err
	}
	if !seen {
		return Memory{}, fmt.Errorf("%w: no Threads line", ErrMalformed)
	}
	return m, nil
}

// kiB parses "N kB" into bytes.
func kiB(fields []string) (uint64, error) {
	if len(fields) != 2 || fields[1] != "kB" {
		return 0, ErrMalformed
	}
	v, err := strconv.ParseUint(fields[0], 10, 54)
	if err != nil {
		return 0, err
	}
	return v << 10, nil
}
