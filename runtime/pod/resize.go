package pod

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/peapod/peapod/cgroups"
	"github.com/peapod/peapod/internal/jsonvalue"
	"github.com/peapod/peapod/manifest"
	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/spec"
	"github.com/peapod/peapod/runtime/state"
)

// Resize changes a running container's CPU and memory limits in place, as
// the CRI's UpdateContainerResources and Kubernetes' in-place resize do:
// the cgroup files of the container and of the pod are rewritten, and the
// pod's record keeps the new resources so `get -o json` shows them. The
// process is not restarted. A memory limit below what the container uses
// now (its working set: the kernel could not reclaim enough to fit) is
// refused rather than left to the OOM killer.
func (m *Manager) Resize(ns, name, container string, cpu, memory *resource.Quantity) (*corev1.Pod, error) {
	h, err := m.lockName(ns, name)
	if err != nil {
		return nil, err
	}
	defer h.Unlock()
	rec, err := state.ReadRecord(m.recordPath(string(h.Data)))
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s: %w", ns, name, err)
	}
	v := m.view(rec)
	if rec.Phase != state.PhaseCreated || !v.SupervisorAlive || v.Phase.Terminal() {
		return nil, fmt.Errorf("pod %s/%s is not running: %w", ns, name, ErrNotRunning)
	}
	var p corev1.Pod
	if err := json.Unmarshal(rec.Manifest, &p); err != nil {
		return nil, fmt.Errorf("failed to decode the manifest of pod %s/%s: %w", ns, name, err)
	}
	r, err := manifest.Resize(&p, container, cpu, memory)
	if err != nil {
		return nil, err
	}
	sp, err := spec.Load(layout.Run(m.runDir(rec.UID)).Spec())
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s: %w", ns, name, err)
	}
	var cgroup string
	var oldRes cgroups.Resources
	for _, c := range sp.Containers {
		if c.Name == container {
			cgroup, oldRes = c.Cgroup, cgroupResources(c.OCI.Linux.Resources)
		}
	}
	if cgroup == "" {
		return nil, fmt.Errorf("pod %s/%s has no container %q in its spec", ns, name, container)
	}
	cg, err := m.driverFor(rec)
	if err != nil {
		return nil, err
	}
	now, err := cgroups.ReadStats(cg, cgroup)
	if err != nil {
		return nil, fmt.Errorf("failed to read stats of container %q of pod %s/%s: %w", container, ns, name, err)
	}
	newRes, podRes := cgroupResources(r.Container), cgroupResources(r.PodLevel)
	if newRes.MemoryLimit > 0 && now.Has[cgroups.StatMemory] && newRes.MemoryLimit < now.MemoryWorkingSet {
		return nil, fmt.Errorf("container %q of pod %s/%s uses %s now: a memory limit of %s is below it",
			container, ns, name, resource.NewQuantity(now.MemoryWorkingSet, resource.BinarySI), memory)
	}
	if err := resizeOrdered(cg, rec.CgroupParent, cgroup, "container "+container, oldRes, newRes, podRes); err != nil {
		return nil, fmt.Errorf("pod %s/%s: %w", ns, name, err)
	}
	raw, err := jsonvalue.Marshal(r.Pod)
	if err != nil {
		return nil, fmt.Errorf("failed to encode the manifest of pod %s/%s: %w", ns, name, err)
	}
	rec.Manifest = raw
	if err := state.WriteJSON(m.recordPath(rec.UID), rec); err != nil {
		return nil, fmt.Errorf("failed to record the new resources of pod %s/%s: %w", ns, name, err)
	}
	return r.Pod, nil
}

// resizeOrdered rewrites the CPU and memory limits of a container's cgroup
// (ctrPath, named what in errors) from oldRes to newRes and its pod's
// cgroup (podPath) to podRes; zero values are left as they are. A child's
// limit may not exceed its parent's (v1 refuses such a CFS quota with
// EINVAL; memory is bounded by the pod anyway): for each resource, grow
// the pod before the container and shrink the container before the pod.
func resizeOrdered(cg cgroups.Driver, podPath, ctrPath, what string, oldRes, newRes, podRes cgroups.Resources) error {
	cpuOnly := func(r cgroups.Resources) cgroups.Resources {
		return cgroups.Resources{CPUShares: r.CPUShares, CPUQuota: r.CPUQuota, CPUPeriod: r.CPUPeriod}
	}
	memOnly := func(r cgroups.Resources) cgroups.Resources { return cgroups.Resources{MemoryLimit: r.MemoryLimit} }
	for _, kind := range []struct {
		pick func(cgroups.Resources) cgroups.Resources
		grow bool
	}{
		{cpuOnly, oldRes.CPUQuota == 0 || (newRes.CPUQuota >= oldRes.CPUQuota && newRes.CPUShares >= oldRes.CPUShares)},
		{memOnly, oldRes.MemoryLimit == 0 || newRes.MemoryLimit >= oldRes.MemoryLimit},
	} {
		steps := []struct {
			what, path string
			r          cgroups.Resources
		}{{"pod", podPath, kind.pick(podRes)}, {what, ctrPath, kind.pick(newRes)}}
		if !kind.grow {
			steps[0], steps[1] = steps[1], steps[0]
		}
		for _, s := range steps {
			if err := cgroups.Resize(cg, s.path, s.r); err != nil {
				return fmt.Errorf("failed to resize %s: %w", s.what, err)
			}
		}
	}
	return nil
}
