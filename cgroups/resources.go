package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
)

// Resources are the limits written to one cgroup. A zero field leaves the
// kernel's default (unlimited, or the default weight).
type Resources struct {
	// CPUShares is the v1 cpu.shares value (2..262144); v2 converts it to
	// cpu.weight as runc does.
	CPUShares uint64
	// CPUQuota is the CFS quota in µs per CPUPeriod; 0 means no quota.
	CPUQuota int64
	// CPUPeriod is the CFS period in µs (the kubelet uses 100000).
	CPUPeriod uint64
	// MemoryLimit is the hard memory limit in bytes; swap is not allowed
	// beyond it, as the kubelet configures a node without swap.
	MemoryLimit int64
	// PidsLimit is pids.max; 0 means unlimited.
	PidsLimit int64
	// PidsBestEffort skips pids.max where the pids controller is not
	// available, instead of failing (a default limit, not one asked for).
	PidsBestEffort bool
}

// Bounds of cpu.shares, which the kernel clamps to.
const (
	minShares = 2
	maxShares = 262144
)

// SharesToWeight converts cpu.shares (2..262144) to cgroup2's cpu.weight
// (1..10000) with runc's linear mapping, so a pod gets the same share of
// the CPU on both drivers. 0 (unset) stays 0.
func SharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	shares = min(max(shares, minShares), maxShares)
	return 1 + ((shares-2)*9999)/262142
}

// write is one control-file write of Set.
type write struct {
	// controller is the one whose file it is (v1 hierarchy, v2 check).
	controller string
	// file is the control file's name.
	file string
	// value is written whole.
	value string
	// optional writes are skipped where the kernel lacks the file (swap
	// accounting off: no memsw / memory.swap.max).
	optional bool
	// bestEffort writes are skipped where their controller is not
	// available (Resources.PidsBestEffort).
	bestEffort bool
}

// v1Writes lists the files Set writes on v1, in an order the kernel accepts
// on a fresh cgroup: the period before the quota, and the memory limit
// before memsw, which must never be below it.
func v1Writes(r Resources) []write {
	var w []write
	if r.CPUShares > 0 {
		w = append(w, write{controller: "cpu", file: "cpu.shares", value: strconv.FormatUint(r.CPUShares, 10)})
	}
	if r.CPUQuota > 0 {
		w = append(w,
			write{controller: "cpu", file: "cpu.cfs_period_us", value: strconv.FormatUint(r.CPUPeriod, 10)},
			write{controller: "cpu", file: "cpu.cfs_quota_us", value: strconv.FormatInt(r.CPUQuota, 10)})
	}
	if r.MemoryLimit > 0 {
		limit := strconv.FormatInt(r.MemoryLimit, 10)
		w = append(w,
			write{controller: "memory", file: "memory.limit_in_bytes", value: limit},
			write{controller: "memory", file: "memory.memsw.limit_in_bytes", value: limit, optional: true})
	}
	if r.PidsLimit > 0 {
		w = append(w, write{controller: "pids", file: "pids.max", value: strconv.FormatInt(r.PidsLimit, 10), bestEffort: r.PidsBestEffort})
	}
	return w
}

// v2Writes lists the files Set writes on v2.
func v2Writes(r Resources) []write {
	var w []write
	if r.CPUShares > 0 {
		w = append(w, write{controller: "cpu", file: "cpu.weight", value: strconv.FormatUint(SharesToWeight(r.CPUShares), 10)})
	}
	if r.CPUQuota > 0 {
		w = append(w, write{controller: "cpu", file: "cpu.max", value: fmt.Sprintf("%d %d", r.CPUQuota, r.CPUPeriod)})
	}
	if r.MemoryLimit > 0 {
		w = append(w,
			write{controller: "memory", file: "memory.max", value: strconv.FormatInt(r.MemoryLimit, 10)},
			// memory.swap.max is the swap on top of memory.max, not the sum.
			write{controller: "memory", file: "memory.swap.max", value: "0", optional: true})
	}
	if r.PidsLimit > 0 {
		w = append(w, write{controller: "pids", file: "pids.max", value: strconv.FormatInt(r.PidsLimit, 10), bestEffort: r.PidsBestEffort})
	}
	return w
}

// apply performs writes, dir giving each controller's directory.
func apply(fsys cgroupFS, writes []write, dir func(controller string) (string, error)) error {
	for _, w := range writes {
		d, err := dir(w.controller)
		if err != nil {
			if w.bestEffort && errors.Is(err, ErrNoController) {
				continue
			}
			return fmt.Errorf("failed to set %s: %w", w.file, err)
		}
		file := filepath.Join(d, w.file)
		if err := fsys.WriteFile(file, w.value); err != nil {
			if w.optional && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return fmt.Errorf("failed to write %s to %q: %w", w.value, file, err)
		}
	}
	return nil
}

// Set writes r into the cgroup's v1 hierarchies. A controller peapod needs
// but the host does not mount is an error naming it.
func (v *v1Driver) Set(p string, r Resources) error {
	return apply(v.fs, v1Writes(r), func(c string) (string, error) { return v.Dir(c, p) })
}

// Set writes r into the unified cgroup. A controller not enabled for the
// cgroup (the controller-less tree of a hybrid host, or one the parent does
// not delegate) is an error naming it, except the minimum CPU weight every
// container without a CPU request gets: where nothing can be weighed, not
// weighing it changes nothing.
func (v *v2Driver) Set(p string, r Resources) error {
	dir, err := v.dir(p)
	if err != nil {
		return err
	}
	avail, err := fields(v.fs, filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return fmt.Errorf("failed to read controllers of cgroup %q: %w", dir, err)
	}
	writes := v2Writes(r)
	for i := 0; i < len(writes); i++ {
		if avail[writes[i].controller] {
			continue
		}
		if (writes[i].file == "cpu.weight" && r.CPUShares <= minShares) || writes[i].bestEffort {
			writes = append(writes[:i], writes[i+1:]...)
			i--
			continue
		}
		hint := ""
		if v.mode == ModeHybrid {
			hint = " (a hybrid host's cgroup2 tree has no controllers: use the v1 driver)"
		}
		return fmt.Errorf("failed to set %s on cgroup %q: controller %s not enabled%s: %w",
			writes[i].file, dir, writes[i].controller, hint, ErrNoController)
	}
	return apply(v.fs, writes, func(string) (string, error) { return dir, nil })
}
