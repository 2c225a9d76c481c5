package cri

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/peapod/peapod/runtime/pod"
	"github.com/peapod/peapod/runtime/spec"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// UpdateContainerResources rewrites a created or running container's CPU
// and memory limits in its cgroup (the process is not restarted) and
// records them, so ContainerStatus reports them. What peapod cannot honour
// (cpusets, huge pages, raw unified files, swap, removing a limit) is
// refused with InvalidArgument naming the field; an unknown or exited
// container is NotFound.
func (s *Server) UpdateContainerResources(ctx context.Context, req *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	if req.Windows != nil {
		return nil, invalid("windows", "peapod runs Linux containers")
	}
	if req.Linux == nil {
		return nil, invalid("linux", "missing")
	}
	c, err := s.findContainer(req.ContainerId)
	if err != nil {
		return nil, err
	}
	var old *specs.LinuxResources
	if l := c.spec.OCI.Linux; l != nil {
		old = l.Resources
	}
	r, err := updatedResources(old, req.Linux)
	if err != nil {
		return nil, err
	}
	defer s.lock(c.sb.view.Record.Name)()
	err = s.m.UpdateContainerResources(c.sb.id(), c.id(), r)
	switch {
	case errors.Is(err, pod.ErrContainerNotFound), errors.Is(err, pod.ErrNotFound), errors.Is(err, fs.ErrNotExist):
		// (A cgroup gone: the container was removed meanwhile.)
		return nil, status.Errorf(codes.NotFound, "container %s: %v", c.id(), err)
	case errors.Is(err, pod.ErrResourceBelowUsage):
		return nil, status.Errorf(codes.FailedPrecondition, "linux.memory_limit_in_bytes: %v", err)
	case err != nil:
		return nil, grpcError(err, "failed to update the resources of container %s", c.id())
	}
	return &runtimeapi.UpdateContainerResourcesResponse{}, nil
}

// updatedResources is old (kept as it is) with the CRI values of r
// applied, or InvalidArgument naming the field peapod cannot honour.
func updatedResources(old *specs.LinuxResources, r *runtimeapi.LinuxContainerResources) (*specs.LinuxResources, error) {
	const f = "linux."
	// A copy: the caller's spec is left as it was when the update fails.
	res := &specs.LinuxResources{}
	if old != nil {
		raw, err := json.Marshal(old)
		if err == nil {
			err = json.Unmarshal(raw, res)
		}
		if err != nil {
			return nil, status.Errorf(codes.Internal, "failed to copy the container's resources: %v", err)
		}
	}
	// oom_score_adj lands in tmp's process, which is dropped: it is the
	// process's, set when it started.
	tmp := &spec.Container{OCI: specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{Resources: res}}}
	if err := applyResources(tmp, r, f); err != nil {
		return nil, err
	}
	res = tmp.OCI.Linux.Resources
	if r.CpuShares == 0 && old != nil && old.CPU != nil && old.CPU.Shares != nil && res.CPU != nil {
		// Not asked to change: the cgroup keeps its weight, so does the spec.
		v := *old.CPU.Shares
		res.CPU.Shares = &v
	}
	// The cgroup files keep a value nobody writes: a limit cannot be
	// lifted in place, only changed.
	if old != nil && old.CPU != nil && old.CPU.Quota != nil && *old.CPU.Quota > 0 && r.CpuQuota <= 0 {
		return nil, invalid(f+"cpu_quota", "peapod cannot remove the container's CPU quota (%d) in place", *old.CPU.Quota)
	}
	if old != nil && old.Memory != nil && old.Memory.Limit != nil && *old.Memory.Limit > 0 && r.MemoryLimitInBytes <= 0 {
		return nil, invalid(f+"memory_limit_in_bytes", "peapod cannot remove the container's memory limit (%d bytes) in place", *old.Memory.Limit)
	}
	return res, nil
}
