package supervisor

// reasonOOMKilled is the kubelet's reason for a container whose processes
// the kernel killed for its memory limit.
const reasonOOMKilled = "OOMKilled"

// oomCounter is implemented by cgroup drivers that read a cgroup's OOM
// kill count (cgroups.Driver does); a Cgroups without it detects nothing.
type oomCounter interface {
	OOMKills(path string) (int64, error)
}

// oomKills returns c's cgroup's OOM kill count, or -1 when it cannot be
// read (no memory controller): then no OOM is ever reported, as it is
// never guessed from the exit code.
func (s *Supervisor) oomKills(c *container) int64 {
	oc, ok := s.cg.(oomCounter)
	if !ok {
		return -1
	}
	n, err := oc.OOMKills(c.spec.Cgroup)
	if err != nil {
		return -1
	}
	return n
}

// oomKilledSince tells whether the OOM killer struck c's cgroup since its
// instance started with count base, as containerd's OOM event does: any
// process of the container killed, not only the main one.
func (s *Supervisor) oomKilledSince(c *container, base int64) bool {
	if base < 0 {
		return false
	}
	return s.oomKills(c) > base
}
