package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
)

// Stats are the figures of one cgroup that `peapod top`, `stats` and
// `metrics` show. A figure whose controller the hierarchy lacks (memory on
// a controller-less cgroup2 tree, block I/O on v1, where peapod joins no
// blkio hierarchy) is reported as absent through Has, never as a zero that
// could be read as "uses nothing".
type Stats struct {
	// CPUUsageUsec is the CPU time consumed, in µs.
	CPUUsageUsec int64
	// MemoryUsage is what the memory controller charges the cgroup
	// (memory.usage_in_bytes on v1, memory.current on v2), page cache
	// included.
	MemoryUsage int64
	// MemoryWorkingSet is cAdvisor's working set: usage minus inactive
	// file pages (the page cache the kernel reclaims first), floored at 0.
	// The kubelet evicts on it, and `kubectl top` shows it.
	MemoryWorkingSet int64
	// MemoryLimit is the hard limit in bytes; 0 means none.
	MemoryLimit int64
	// PidsCurrent and PidsLimit are pids.current and pids.max (0 = max).
	PidsCurrent, PidsLimit int64
	// IOReadBytes and IOWriteBytes sum io.stat's rbytes/wbytes over devices.
	IOReadBytes, IOWriteBytes int64
	// OOMKills counts processes the OOM killer killed in the cgroup.
	OOMKills int64
	// Has records which groups of figures were read: StatCPU, StatMemory,
	// StatPids, StatIO, StatOOM.
	Has map[string]bool
}

// Keys of Stats.Has.
const (
	StatCPU    = "cpu"
	StatMemory = "memory"
	StatPids   = "pids"
	StatIO     = "io"
	StatOOM    = "oom"
)

// unlimitedV1 is the smallest memory.limit_in_bytes value that means "no
// limit": the kernel reports PAGE_COUNTER_MAX rounded down to a page
// (9223372036854771712 on 4 KiB pages), not a marker word as v2's "max".
const unlimitedV1 = int64(1) << 62

// ReadStats reads the figures of the cgroup at path. It fails only when the
// cgroup itself is unreadable (gone, or a bad path); figures of controllers
// the hierarchy does not carry are left out of Has.
func ReadStats(d Driver, path string) (Stats, error) {
	p, err := cleanPath(path)
	if err != nil {
		return Stats{}, err
	}
	s := Stats{Has: map[string]bool{}}
	usage, err := d.CPUStat(p)
	switch {
	case err == nil:
		s.CPUUsageUsec, s.Has[StatCPU] = usage, true
	case errors.Is(err, fs.ErrNotExist):
		return Stats{}, fmt.Errorf("cgroup %q: %w", p, err)
	}
	switch v := d.(type) {
	case *v1Driver:
		v.readStats(p, &s)
	case *v2Driver:
		v.readStats(p, &s)
	default:
		return Stats{}, fmt.Errorf("stats of cgroup %q: driver %s: %w", p, d.Name(), ErrUnsupported)
	}
	return s, nil
}

func (v *v1Driver) readStats(p string, s *Stats) {
	if dir, err := v.Dir("memory", p); err == nil {
		usage, uerr := readInt(v.fs, filepath.Join(dir, "memory.usage_in_bytes"))
		limit, lerr := readInt(v.fs, filepath.Join(dir, "memory.limit_in_bytes"))
		// total_inactive_file includes the cgroup's descendants, as
		// usage_in_bytes does (v1 charges hierarchically).
		inactive, ierr := readKey(v.fs, filepath.Join(dir, "memory.stat"), "total_inactive_file")
		if uerr == nil && lerr == nil && ierr == nil {
			s.MemoryUsage, s.MemoryWorkingSet = usage, max(usage-inactive, 0)
			if limit < unlimitedV1 {
				s.MemoryLimit = limit
			}
			s.Has[StatMemory] = true
		}
		if n, err := readKey(v.fs, filepath.Join(dir, "memory.oom_control"), "oom_kill"); err == nil {
			s.OOMKills, s.Has[StatOOM] = n, true
		}
	}
	if dir, err := v.Dir("pids", p); err == nil {
		readPids(v.fs, dir, s)
	}
}

func (v *v2Driver) readStats(p string, s *Stats) {
	dir, err := v.dir(p)
	if err != nil {
		return
	}
	// memory.current and memory.stat exist only where the memory
	// controller is enabled in the parent's subtree_control.
	usage, uerr := readInt(v.fs, filepath.Join(dir, "memory.current"))
	limit, lerr := readMax(v.fs, filepath.Join(dir, "memory.max"))
	inactive, ierr := readKey(v.fs, filepath.Join(dir, "memory.stat"), "inactive_file")
	if uerr == nil && lerr == nil && ierr == nil {
		s.MemoryUsage, s.MemoryWorkingSet, s.MemoryLimit = usage, max(usage-inactive, 0), limit
		s.Has[StatMemory] = true
	}
	if n, err := readKey(v.fs, filepath.Join(dir, "memory.events"), "oom_kill"); err == nil {
		s.OOMKills, s.Has[StatOOM] = n, true
	}
	readPids(v.fs, dir, s)
	if data, err := v.fs.ReadFile(filepath.Join(dir, "io.stat")); err == nil {
		s.IOReadBytes, s.IOWriteBytes = parseIOStat(string(data))
		s.Has[StatIO] = true
	}
}

func readPids(fsys cgroupFS, dir string, s *Stats) {
	cur, cerr := readInt(fsys, filepath.Join(dir, "pids.current"))
	limit, lerr := readMax(fsys, filepath.Join(dir, "pids.max"))
	if cerr == nil && lerr == nil {
		s.PidsCurrent, s.PidsLimit, s.Has[StatPids] = cur, limit, true
	}
}

// parseIOStat sums rbytes and wbytes of io.stat's per-device lines
// ("8:0 rbytes=… wbytes=… rios=… …").
func parseIOStat(data string) (read, write int64) {
	for _, line := range strings.Split(data, "\n") {
		fields := strings.Fields(line)
		for _, f := range fields[min(1, len(fields)):] {
			k, val, ok := strings.Cut(f, "=")
			if !ok {
				continue
			}
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				continue
			}
			switch k {
			case "rbytes":
				read += n
			case "wbytes":
				write += n
			}
		}
	}
	return read, write
}

// readInt reads a control file holding one integer.
func readInt(fsys cgroupFS, file string) (int64, error) {
	data, err := fsys.ReadFile(file)
	if err != nil {
		return 0, fmt.Errorf("failed to read %q: %w", file, err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("failed to parse %q: %w", file, err)
	}
	return n, nil
}

// readMax reads a v2-style limit file: an integer, or "max" for none (0).
func readMax(fsys cgroupFS, file string) (int64, error) {
	data, err := fsys.ReadFile(file)
	if err != nil {
		return 0, fmt.Errorf("failed to read %q: %w", file, err)
	}
	if strings.TrimSpace(string(data)) == "max" {
		return 0, nil
	}
	return readInt(fsys, file)
}

// Resize writes r into an existing cgroup that may already hold limits.
// Set's order suits a fresh cgroup; on v1 a raised memory limit must go
// after memory.memsw.limit_in_bytes, which the kernel keeps at or above
// memory.limit_in_bytes at every write (EINVAL otherwise).
func Resize(d Driver, path string, r Resources) error {
	v, ok := d.(*v1Driver)
	if !ok || r.MemoryLimit == 0 {
		return d.Set(path, r)
	}
	p, err := cleanPath(path)
	if err != nil {
		return err
	}
	dir, err := v.Dir("memory", p)
	if err != nil {
		return err
	}
	cur, err := readInt(v.fs, filepath.Join(dir, "memory.limit_in_bytes"))
	if err != nil {
		return err
	}
	writes := v1Writes(r)
	if r.MemoryLimit > cur {
		for i := range writes {
			if writes[i].file == "memory.limit_in_bytes" && i+1 < len(writes) && writes[i+1].file == "memory.memsw.limit_in_bytes" {
				writes[i], writes[i+1] = writes[i+1], writes[i]
			}
		}
	}
	return apply(v.fs, writes, func(c string) (string, error) { return v.Dir(c, p) })
}
