package cgroups

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// PrimeMigration prepares the kernel, in the background, for a cgroup
// migration the caller is about to make (on v1, where a process cannot be
// born in its cgroup), and returns at once; it has no other effect. A
// write to cgroup.procs takes the kernel's cgroup_threadgroup_rwsem for
// writing, and the first writer after a quiet spell waits a whole RCU grace
// period for the rwsem to switch to its slow mode (10–30 ms on the 2-core
// VM); writers that come while it is in that mode, or within a grace
// period after the last one left, do not wait. So the caller's own pid is
// written into the cgroup it is already in — a migration that moves
// nothing — while the caller does other work, and the real migration that
// follows (the supervisor moving a container's first process) finds the
// rwsem switched already. On v2 containers are born in their cgroups
// (clone3 CLONE_INTO_CGROUP) and nothing needs priming.
//
// Call it after creating the cgroups the migration needs: the priming
// write holds cgroup_mutex (cgroup_kn_lock_live) while it waits, and
// cgroup_mkdir takes that mutex too, so a mkdir made meanwhile in any
// hierarchy waits out the grace period as well.
func PrimeMigration(d Driver) {
	v, ok := d.(*v1Driver)
	if !ok || len(v.hierarchies) == 0 {
		return
	}
	h := v.hierarchies[0]
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return
	}
	path, ok := ownV1Path(self, h.controllers[0])
	if !ok {
		return
	}
	procs := filepath.Join(h.mountpoint, path, "cgroup.procs")
	// Errors are of no consequence: the real migration then pays the wait.
	go func() { _ = v.fs.WriteFile(procs, strconv.Itoa(os.Getpid())) }()
}

// ownV1Path finds, in the contents of /proc/self/cgroup, the path of the
// v1 hierarchy that carries controller ("name=systemd" for the named one).
func ownV1Path(procSelfCgroup []byte, controller string) (string, bool) {
	sc := bufio.NewScanner(bytes.NewReader(procSelfCgroup))
	for sc.Scan() {
		// hierarchy-ID:controller-list:path
		f := strings.SplitN(sc.Text(), ":", 3)
		if len(f) != 3 || f[1] == "" {
			continue
		}
		if contains(strings.Split(f[1], ","), controller) && strings.HasPrefix(f[2], "/") {
			return filepath.Clean(f[2]), true
		}
	}
	return "", false
}
