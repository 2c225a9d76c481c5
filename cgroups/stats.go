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
	// StatPids, StatIO, StatOOM, and Detail's.
	Has map[string]bool
	// Detail are the finer figures the CRI's metrics report (cAdvisor's).
	Detail Detail
}

// Detail are the figures of a cgroup beyond `peapod stats`', for the CRI's
// metrics, each group present only where the hierarchy has it.
type Detail struct {
	// CPUUserUsec and CPUSystemUsec split the CPU time (StatCPUSplit).
	CPUUserUsec, CPUSystemUsec int64
	// CFSPeriods, CFSThrottledPeriods and CFSThrottledUsec are the CFS
	// bandwidth control's counts (StatCFS).
	CFSPeriods, CFSThrottledPeriods, CFSThrottledUsec int64
	// MemoryCache, MemoryRSS, MemoryMappedFile and MemorySwap are memory.stat's
	// page cache, anonymous memory, mapped files and swap; MemoryKernel the
	// kernel's own allocations charged to the cgroup; MemoryMaxUsage its
	// peak usage, MemoryFailcnt how often it hit its limit; PgFault and
	// PgMajFault its page faults (StatMemoryDetail).
	MemoryCache, MemoryRSS, MemoryMappedFile, MemorySwap, MemoryKernel int64
	MemoryMaxUsage, MemoryFailcnt, PgFault, PgMajFault                 int64
}

// Keys of Stats.Has.
const (
	StatCPU    = "cpu"
	StatMemory = "memory"
	StatPids   = "pids"
	StatIO     = "io"
	StatOOM    = "oom"
	// StatCPUSplit, StatCFS and StatMemoryDetail are Detail's groups.
	StatCPUSplit     = "cpu-split"
	StatCFS          = "cfs"
	StatMemoryDetail = "memory-detail"
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
		// The total_ keys include the descendants', as usage_in_bytes.
		st, serr := readKeys(v.fs, filepath.Join(dir, "memory.stat"))
		kernel, kerr := readInt(v.fs, filepath.Join(dir, "memory.kmem.usage_in_bytes"))
		peak, perr := readInt(v.fs, filepath.Join(dir, "memory.max_usage_in_bytes"))
		failcnt, ferr := readInt(v.fs, filepath.Join(dir, "memory.failcnt"))
		if serr == nil && kerr == nil && perr == nil && ferr == nil &&
			hasKeys(st, "total_cache", "total_rss", "total_mapped_file", "total_pgfault", "total_pgmajfault") {
			d := &s.Detail
			// total_swap is there only with swap accounting: none is 0.
			d.MemoryCache, d.MemoryRSS, d.MemoryMappedFile, d.MemorySwap = st["total_cache"], st["total_rss"], st["total_mapped_file"], st["total_swap"]
			d.MemoryKernel, d.MemoryMaxUsage, d.MemoryFailcnt = kernel, peak, failcnt
			d.PgFault, d.PgMajFault = st["total_pgfault"], st["total_pgmajfault"]
			s.Has[StatMemoryDetail] = true
		}
	}
	if dir, err := v.Dir("pids", p); err == nil {
		readPids(v.fs, dir, s)
	}
	if dir, err := v.Dir("cpuacct", p); err == nil {
		user, uerr := readInt(v.fs, filepath.Join(dir, "cpuacct.usage_user"))
		sys, serr := readInt(v.fs, filepath.Join(dir, "cpuacct.usage_sys"))
		if uerr == nil && serr == nil {
			s.Detail.CPUUserUsec, s.Detail.CPUSystemUsec, s.Has[StatCPUSplit] = user/1000, sys/1000, true
		}
	}
	if dir, err := v.Dir("cpu", p); err == nil {
		st, err := readKeys(v.fs, filepath.Join(dir, "cpu.stat"))
		if err == nil && hasKeys(st, "nr_periods", "nr_throttled", "throttled_time") {
			d := &s.Detail
			d.CFSPeriods, d.CFSThrottledPeriods, d.CFSThrottledUsec = st["nr_periods"], st["nr_throttled"], st["throttled_time"]/1000
			s.Has[StatCFS] = true
		}
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
	v.readDetail(dir, s)
	if data, err := v.fs.ReadFile(filepath.Join(dir, "io.stat")); err == nil {
		s.IOReadBytes, s.IOWriteBytes = parseIOStat(string(data))
		s.Has[StatIO] = true
	}
}

// readDetail reads the v2 figures of Detail: cpu.stat is there in every
// cgroup (its nr_periods only where the cpu controller is enabled), the
// memory files where the memory controller is.
func (v *v2Driver) readDetail(dir string, s *Stats) {
	d := &s.Detail
	if st, err := readKeys(v.fs, filepath.Join(dir, "cpu.stat")); err == nil {
		if hasKeys(st, "user_usec", "system_usec") {
			d.CPUUserUsec, d.CPUSystemUsec, s.Has[StatCPUSplit] = st["user_usec"], st["system_usec"], true
		}
		if hasKeys(st, "nr_periods", "nr_throttled", "throttled_usec") {
			d.CFSPeriods, d.CFSThrottledPeriods, d.CFSThrottledUsec = st["nr_periods"], st["nr_throttled"], st["throttled_usec"]
			s.Has[StatCFS] = true
		}
	}
	st, serr := readKeys(v.fs, filepath.Join(dir, "memory.stat"))
	events, eerr := readKeys(v.fs, filepath.Join(dir, "memory.events"))
	if serr != nil || eerr != nil || !hasKeys(st, "file", "anon", "file_mapped", "pgfault", "pgmajfault") {
		return
	}
	kernel, ok := st["kernel"] // Linux 5.18 and later
	if !ok {
		kernel = st["kernel_stack"] + st["pagetables"] + st["percpu"] + st["sock"] + st["slab"]
	}
	// memory.swap.current is there only with swap accounting (none is
	// 0); memory.peak from Linux 5.19 (before, usage stands in).
	swap, _ := readInt(v.fs, filepath.Join(dir, "memory.swap.current"))
	peak, err := readInt(v.fs, filepath.Join(dir, "memory.peak"))
	if err != nil {
		peak = s.MemoryUsage
	}
	d.MemoryCache, d.MemoryRSS, d.MemoryMappedFile, d.MemorySwap = st["file"], st["anon"], st["file_mapped"], swap
	d.MemoryKernel, d.MemoryMaxUsage, d.MemoryFailcnt = kernel, peak, events["max"]
	d.PgFault, d.PgMajFault = st["pgfault"], st["pgmajfault"]
	s.Has[StatMemoryDetail] = true
}

// readKeys reads a flat-keyed file ("key value" per line) into a map,
// skipping lines whose value is not an integer.
func readKeys(fsys cgroupFS, file string) (map[string]int64, error) {
	data, err := fsys.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("failed to read %q: %w", file, err)
	}
	out := map[string]int64{}
	for _, line := range strings.Split(string(data), "\n") {
		k, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64); err == nil {
			out[k] = n
		}
	}
	return out, nil
}

// hasKeys reports that m has every key.
func hasKeys(m map[string]int64, keys ...string) bool {
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			return false
		}
	}
	return true
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
