package cgroups

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"
)

// mount is one line of /proc/self/mountinfo, reduced to what the v1
// driver needs.
type mount struct {
	// dev is the superblock's major:minor; two mounts with the same dev
	// are the same hierarchy (a bind mount, a second mount of it).
	dev string
	// mountpoint is where it is mounted, unescaped.
	mountpoint string
	// fstype is "cgroup" for a v1 hierarchy.
	fstype string
	// superOpts are the super-block options; for cgroup v1 they carry the
	// controllers ("cpu", "cpuacct", "name=systemd").
	superOpts []string
}

// readSelfMountinfo lists the mounts of this process's mount namespace.
func readSelfMountinfo() ([]mount, error) {
	infos, err := mountinfo.GetMounts(nil)
	if err != nil {
		return nil, fmt.Errorf("failed to read mounts: %w", err)
	}
	return mountsOf(infos), nil
}

// mountsOf reduces parsed mountinfo entries to what the driver needs.
func mountsOf(infos []*mountinfo.Info) []mount {
	mounts := make([]mount, 0, len(infos))
	for _, m := range infos {
		mounts = append(mounts, mount{
			dev:        strconv.Itoa(m.Major) + ":" + strconv.Itoa(m.Minor),
			mountpoint: m.Mountpoint,
			fstype:     m.FSType,
			superOpts:  strings.Split(m.VFSOptions, ","),
		})
	}
	return mounts
}
