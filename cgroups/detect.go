package cgroups

import (
	"fmt"
	"path"

	"golang.org/x/sys/unix"
)

// Mode is how the host mounts its cgroup hierarchies.
type Mode int

const (
	// ModeLegacy is cgroup v1 only.
	ModeLegacy Mode = iota
	// ModeHybrid is v1 controllers plus a controller-less cgroup2 tree at
	// <root>/unified (systemd's hybrid layout).
	ModeHybrid
	// ModeUnified is pure cgroup v2 at the mount root.
	ModeUnified
)

// String names the mode as systemd does.
func (m Mode) String() string {
	switch m {
	case ModeLegacy:
		return "legacy"
	case ModeHybrid:
		return "hybrid"
	case ModeUnified:
		return "unified"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// statfser reports the filesystem type (statfs f_type) of a path.
type statfser interface {
	FSType(path string) (int64, error)
}

// hostStatfs asks the kernel.
type hostStatfs struct{}

func (hostStatfs) FSType(p string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return 0, fmt.Errorf("failed to statfs %q: %w", p, err)
	}
	return int64(st.Type), nil
}

// Detect reports how cgroups are mounted under mountRoot.
func Detect(mountRoot string) (Mode, error) {
	return detect(mountRoot, hostStatfs{})
}

func detect(mountRoot string, fs statfser) (Mode, error) {
	t, err := fs.FSType(mountRoot)
	if err != nil {
		return 0, err
	}
	if t == unix.CGROUP2_SUPER_MAGIC {
		return ModeUnified, nil
	}
	// A missing <root>/unified is simply the legacy layout.
	if t, err := fs.FSType(path.Join(mountRoot, "unified")); err == nil && t == unix.CGROUP2_SUPER_MAGIC {
		return ModeHybrid, nil
	}
	return ModeLegacy, nil
}
