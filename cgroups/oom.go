package cgroups

import "path/filepath"

// OOMKills returns how many processes of the cgroup the kernel's OOM killer
// has killed since the cgroup was made: the oom_kill key of v1's
// memory.oom_control (Linux 4.13 and later) or of v2's memory.events. The
// count is cumulative, so a caller compares it across one instance's life.
func (v *v1Driver) OOMKills(p string) (int64, error) {
	dir, err := v.Dir("memory", p)
	if err != nil {
		return 0, err
	}
	return readKey(v.fs, filepath.Join(dir, "memory.oom_control"), "oom_kill")
}

// OOMKills is v1Driver.OOMKills for the unified hierarchy; memory.events
// exists only where the memory controller is enabled.
func (v *v2Driver) OOMKills(p string) (int64, error) {
	dir, err := v.dir(p)
	if err != nil {
		return 0, err
	}
	return readKey(v.fs, filepath.Join(dir, "memory.events"), "oom_kill")
}
