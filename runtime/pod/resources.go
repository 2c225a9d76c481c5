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

// podPidsLimit is the pod cgroup's pids.max from the run's settings: 0 for
// no limit.
func (m *Manager) podPidsLimit() int64 {
	switch l := m.o.Pods.PidsLimit; {
	case l == 0:
		return DefaultPodPidsLimit
	case l < 0:
		return 0
	default:
		return l
	}
}

// withPidsLimit adds the pod's pids.max to its resources, as the kubelet
// puts podPidsLimit on the pod cgroup: it bounds the pod's processes and
// threads together, whatever each container does.
func withPidsLimit(r *specs.LinuxResources, limit int64) *specs.LinuxResources {
	if limit <= 0 {
		return r
	}
	if r == nil {
		r = &specs.LinuxResources{}
	}
	r.Pids = &specs.LinuxPids{Limit: &limit}
	return r
}
