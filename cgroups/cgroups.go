// Package cgroups puts each container's processes in a cgroup of its own
// under a peapod parent, so that stop and rm -f reach every process, also
// those that double-forked away from the container's main process.
//
// Two drivers exist: v1 (one directory per mounted legacy hierarchy) and v2
// (one directory in the unified hierarchy). The package is linked by the
// lean supervisor, so it uses only the standard library and x/sys/unix; the
// device filter, which needs a BPF library on v2, lives in cgroups/devices.
package cgroups

import (
	"fmt"
	"path"
	"strings"
	"time"
)

// Driver manages cgroups on one kind of hierarchy. Every path is relative to
// the hierarchy root(s), e.g. "peapod-<rootid>/<poduid>/<ctr>".
type Driver interface {
	// Name is "v1" or "v2".
	Name() string
	// Create makes the cgroup and its missing parents; it is idempotent.
	Create(path string) error
	// Join moves pid into the cgroup (into every used hierarchy on v1).
	Join(path string, pid int) error
	// ProcsFiles lists the cgroup.procs files a process writes its own pid
	// to in order to join the cgroup (exec helpers that join themselves).
	ProcsFiles(path string) []string
	// Dir is the cgroup's directory in the hierarchy holding controller;
	// on v2 every controller lives in the one unified directory.
	Dir(controller, path string) (string, error)
	// Pids lists every process in the cgroup and its descendants.
	Pids(path string) ([]int, error)
	// Kill SIGKILLs everything in the cgroup, including processes that
	// fork meanwhile. A cgroup that does not exist is already dead.
	Kill(path string) error
	// Destroy kills, waits until the cgroup is empty and removes it and its
	// descendants, leaf first. A missing cgroup is success.
	Destroy(path string) error
	// DestroyTree is Destroy followed by the removal of the parents left
	// empty, up to but not including the hierarchy root.
	DestroyTree(path string) error
	// Set writes CPU, memory and pids limits into the cgroup.
	Set(path string, r Resources) error
	// CPUStat returns the CPU time consumed by the cgroup in microseconds.
	CPUStat(path string) (usageUsec int64, err error)
}

// Driver names accepted by New.
const (
	// DriverAuto picks v2 on a pure unified host and v1 otherwise.
	DriverAuto = "auto"
	// DriverV1 uses the legacy per-controller hierarchies.
	DriverV1 = "v1"
	// DriverV2 uses the unified hierarchy (the hybrid one at <root>/unified
	// when the host is not pure v2).
	DriverV2 = "v2"
)

// DefaultMountRoot is where the host mounts its cgroup hierarchies.
const DefaultMountRoot = "/sys/fs/cgroup"

// drainTimeout bounds how long Kill and Destroy wait for a cgroup to empty:
// SIGKILLed processes die as soon as they leave the kernel, but one stuck
// in uninterruptible sleep (a hung NFS read) can take longer.
const drainTimeout = 10 * time.Second

// New returns the driver named driver for the hierarchies under mountRoot.
func New(driver, mountRoot string) (Driver, error) {
	return newDriver(driver, mountRoot, hostEnv())
}

// env is what New learns from the host; tests replace every part of it.
type env struct {
	// statfs reports the filesystem magic of a path.
	statfs statfser
	// mounts lists the mounts of the calling process.
	mounts func() ([]mount, error)
	// fs performs the file operations on cgroupfs.
	fs cgroupFS
}

func hostEnv() env {
	return env{statfs: hostStatfs{}, mounts: readSelfMountinfo, fs: hostFS{}}
}

func newDriver(driver, mountRoot string, e env) (Driver, error) {
	mode, err := detect(mountRoot, e.statfs)
	if err != nil {
		return nil, err
	}
	switch driver {
	case DriverAuto, "":
		if mode == ModeUnified {
			return newV2(mountRoot, mode, e.fs), nil
		}
		// On hybrid hosts the devices controller is only available as v1,
		// and without it containers could mknod the host's disks.
		return newV1(mountRoot, e)
	case DriverV1:
		if mode == ModeUnified {
			return nil, fmt.Errorf("cgroup driver v1 on %q: %w", mountRoot, ErrUnsupported)
		}
		return newV1(mountRoot, e)
	case DriverV2:
		switch mode {
		case ModeUnified:
			return newV2(mountRoot, mode, e.fs), nil
		case ModeHybrid:
			return newV2(path.Join(mountRoot, "unified"), mode, e.fs), nil
		}
		return nil, fmt.Errorf("cgroup driver v2 on %q (no cgroup2 mounted): %w", mountRoot, ErrUnsupported)
	}
	return nil, fmt.Errorf("unknown cgroup driver %q (want auto, v1 or v2): %w", driver, ErrInvalid)
}

// cleanPath checks that p is a clean relative path naming a cgroup below
// the hierarchy root, so no caller can reach outside the hierarchy.
func cleanPath(p string) (string, error) {
	if p == "" || p == "." || path.IsAbs(p) || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("cgroup path %q: %w", p, ErrInvalid)
	}
	return p, nil
}
