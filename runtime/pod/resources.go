package pod

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/peapod/peapod/cgroups"
)

// cgroupResources picks from an OCI resources section the values peapod
// writes to a cgroup (the manifest package computes them as the kubelet).
func cgroupResources(r *specs.LinuxResources) cgroups.Resources {
	var out cgroups.Resources
	if r == nil {
		return out
	}
	if c := r.CPU; c != nil {
		if c.Shares != nil {
			out.CPUShares = *c.Shares
		}
		if c.Quota != nil && c.Period != nil {
			out.CPUQuota, out.CPUPeriod = *c.Quota, *c.Period
		}
	}
	if m := r.Memory; m != nil && m.Limit != nil {
		out.MemoryLimit = *m.Limit
	}
	if p := r.Pids; p != nil && p.Limit != nil {
		out.PidsLimit = *p.Limit
	}
	return out
}
