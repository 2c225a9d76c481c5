package cri

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/peapod/peapod/cgroups"
	"github.com/peapod/peapod/runtime/pod"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The stats calls map the figures peapod reads for `peapod stats`
// (pod.Manager.Stats: the pod's and its containers' cgroups, the host end
// of its veth) onto the CRI's messages. A figure the cgroup hierarchy
// does not carry is left out (nil), never reported as zero.

// cpuSamples keeps the last CPU reading of each container and sandbox,
// from which the next reading's usage_nano_cores is computed (the CRI
// reports a rate; the cgroup a cumulative count).
type cpuSamples struct {
	mu   sync.Mutex
	last map[string]cpuSample
}

type cpuSample struct {
	usageNs uint64
	at      time.Time
}

// sampleMaxAge is how long a reading is kept: one older than this is
// dropped when another is recorded (its container is likely gone).
const sampleMaxAge = 10 * time.Minute

// rate records usageNs at time at for id and returns the rate in
// nanocores since the previous reading, or nil for the first one (or a
// counter that went back: the cgroup was made again).
func (c *cpuSamples) rate(id string, usageNs uint64, at time.Time) *runtimeapi.UInt64Value {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		c.last = map[string]cpuSample{}
	}
	prev, ok := c.last[id]
	if ok && !at.After(prev.at) {
		// An older or simultaneous reading: keep the newer sample.
		return nil
	}
	c.last[id] = cpuSample{usageNs, at}
	for k, s := range c.last {
		if at.Sub(s.at) > sampleMaxAge {
			delete(c.last, k)
		}
	}
	if !ok || usageNs < prev.usageNs {
		return nil
	}
	dt := at.Sub(prev.at).Nanoseconds()
	return &runtimeapi.UInt64Value{Value: (usageNs - prev.usageNs) * uint64(time.Second) / uint64(dt)}
}

// cpuStats is the CRI's CPU figures of cgroup stats st read at at, or
// nil when the hierarchy has no CPU accounting.
func (c *cpuSamples) cpuStats(id string, st cgroups.Stats, at time.Time) *runtimeapi.CpuUsage {
	if !st.Has[cgroups.StatCPU] {
		return nil
	}
	ns := uint64(st.CPUUsageUsec) * uint64(time.Microsecond)
	return &runtimeapi.CpuUsage{
		Timestamp:            at.UnixNano(),
		UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: ns},
		UsageNanoCores:       c.rate(id, ns, at),
	}
}

// memoryStats is the CRI's memory figures of st, or nil without a memory
// controller. available_bytes is the room left under the limit (limit
// minus working set, as cAdvisor and containerd count it), absent
// without a limit.
func memoryStats(st cgroups.Stats, at time.Time) *runtimeapi.MemoryUsage {
	if !st.Has[cgroups.StatMemory] {
		return nil
	}
	m := &runtimeapi.MemoryUsage{
		Timestamp:       at.UnixNano(),
		WorkingSetBytes: &runtimeapi.UInt64Value{Value: uint64(st.MemoryWorkingSet)},
		UsageBytes:      &runtimeapi.UInt64Value{Value: uint64(st.MemoryUsage)},
	}
	if st.MemoryLimit > 0 {
		m.AvailableBytes = &runtimeapi.UInt64Value{Value: uint64(max(st.MemoryLimit-st.MemoryWorkingSet, 0))}
	}
	return m
}

// containerStatsOf builds the stats of c from its cgroup's figures (nil
// when its pod has no cgroups now) and its writable layer's usage.
func (s *Server) containerStatsOf(c *ctr, cs *pod.ContainerStats, at time.Time, layer *runtimeapi.FilesystemUsage) *runtimeapi.ContainerStats {
	out := &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{
			Id: c.id(), Metadata: c.cfg.Metadata, Labels: c.cfg.Labels, Annotations: c.cfg.Annotations,
		},
		WritableLayer: layer,
	}
	if cs != nil {
		out.Cpu = s.cpu.cpuStats(c.id(), cs.Stats, at)
		out.Memory = memoryStats(cs.Stats, at)
	}
	return out
}

// sandboxStatsOf builds the stats of sb from its pod's figures (nil when
// it has no cgroups now) and its containers' stats.
func (s *Server) sandboxStatsOf(sb *sandbox, ps *pod.PodStats, containers []*runtimeapi.ContainerStats) *runtimeapi.PodSandboxStats {
	out := &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{
			Id: sb.id(), Metadata: sb.cfg.Metadata, Labels: sb.cfg.Labels, Annotations: sb.cfg.Annotations,
		},
		Linux: &runtimeapi.LinuxPodSandboxStats{Containers: containers},
	}
	if ps == nil {
		return out
	}
	l, at := out.Linux, ps.At
	l.Cpu = s.cpu.cpuStats(sb.id(), ps.Pod, at)
	l.Memory = memoryStats(ps.Pod, at)
	if ps.Pod.Has[cgroups.StatPids] {
		l.Process = &runtimeapi.ProcessUsage{Timestamp: at.UnixNano(), ProcessCount: &runtimeapi.UInt64Value{Value: uint64(ps.Pod.PidsCurrent)}}
	}
	if ps.HasNet {
		eth0 := &runtimeapi.NetworkInterfaceUsage{
			Name:    "eth0",
			RxBytes: &runtimeapi.UInt64Value{Value: uint64(ps.NetRxBytes)},
			TxBytes: &runtimeapi.UInt64Value{Value: uint64(ps.NetTxBytes)},
		}
		l.Network = &runtimeapi.NetworkUsage{Timestamp: at.UnixNano(), DefaultInterface: eth0, Interfaces: []*runtimeapi.NetworkInterfaceUsage{eth0}}
	}
	return out
}

// podStats reads the figures of sb's pod; nil (no error) when it has no
// cgroups now (stopped).
func (s *Server) podStats(sb *sandbox) (*pod.PodStats, error) {
	if sb.state() != runtimeapi.PodSandboxState_SANDBOX_READY {
		return nil, nil
	}
	rec := sb.view.Record
	ps, err := s.m.Stats(rec.Namespace, rec.Name)
	if errors.Is(err, fs.ErrNotExist) {
		// A container removed between the spec's read and its cgroup's:
		// the spec read again no longer lists it.
		ps, err = s.m.Stats(rec.Namespace, rec.Name)
	}
	if errors.Is(err, pod.ErrNotRunning) || errors.Is(err, pod.ErrNotFound) {
		return nil, nil // stopped or removed since it was listed
	}
	if err != nil {
		return nil, grpcError(err, "failed to read stats of pod sandbox %s", sb.id())
	}
	return ps, nil
}

// statsOfContainers builds the stats of cs, all of sandbox sb, whose pod
// figures are ps (nil when it has none).
func (s *Server) statsOfContainers(cs []*ctr, ps *pod.PodStats) ([]*runtimeapi.ContainerStats, error) {
	var out []*runtimeapi.ContainerStats
	for _, c := range cs {
		var figures *pod.ContainerStats
		var at time.Time
		if ps != nil {
			at = ps.At
			for i := range ps.Containers {
				if ps.Containers[i].Name == c.spec.Name {
					figures = &ps.Containers[i]
				}
			}
		}
		layer, err := usage(c.spec.Rootfs.Upper)
		if err != nil {
			return nil, grpcError(err, "failed to measure the writable layer of container %s", c.id())
		}
		out = append(out, s.containerStatsOf(c, figures, at, layer))
	}
	return out, nil
}

// ContainerStats reports a container's CPU, memory and writable layer.
func (s *Server) ContainerStats(ctx context.Context, req *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	c, err := s.findContainer(req.ContainerId)
	if err != nil {
		return nil, err
	}
	ps, err := s.podStats(c.sb)
	if err != nil {
		return nil, err
	}
	out, err := s.statsOfContainers([]*ctr{c}, ps)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerStatsResponse{Stats: out[0]}, nil
}

// ListContainerStats reports the stats of the containers matching the
// filter: an id (or its prefix), a sandbox id (or its prefix), labels.
func (s *Server) ListContainerStats(ctx context.Context, req *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	sbs, err := s.list()
	if err != nil {
		return nil, err
	}
	f := req.Filter
	resp := &runtimeapi.ListContainerStatsResponse{}
	for _, sb := range sbs {
		if f != nil && f.PodSandboxId != "" && !strings.HasPrefix(sb.id(), f.PodSandboxId) {
			continue
		}
		var picked []*ctr
		for _, c := range s.containersOf(sb) {
			if f != nil && (f.Id != "" && !strings.HasPrefix(c.id(), f.Id) || !labelsMatch(c.cfg.Labels, f.LabelSelector)) {
				continue
			}
			picked = append(picked, c)
		}
		if len(picked) == 0 {
			continue
		}
		ps, err := s.podStats(sb)
		if err != nil {
			return nil, err
		}
		out, err := s.statsOfContainers(picked, ps)
		if err != nil {
			return nil, err
		}
		resp.Stats = append(resp.Stats, out...)
	}
	return resp, nil
}

// sandboxStats is the stats of sb with its containers'.
func (s *Server) sandboxStats(sb *sandbox) (*runtimeapi.PodSandboxStats, error) {
	ps, err := s.podStats(sb)
	if err != nil {
		return nil, err
	}
	cs, err := s.statsOfContainers(s.containersOf(sb), ps)
	if err != nil {
		return nil, err
	}
	return s.sandboxStatsOf(sb, ps, cs), nil
}

// PodSandboxStats reports a sandbox's CPU, memory, processes and eth0
// traffic with its containers' stats. A stopped sandbox has attributes
// and its containers' writable layers only: its cgroups are gone.
func (s *Server) PodSandboxStats(ctx context.Context, req *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	sb, err := s.find(req.PodSandboxId)
	if err != nil {
		return nil, err
	}
	st, err := s.sandboxStats(sb)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: st}, nil
}

// ListPodSandboxStats reports the stats of the ready sandboxes matching
// the filter (an id or its prefix, labels); as containerd, stopped
// sandboxes are left out.
func (s *Server) ListPodSandboxStats(ctx context.Context, req *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	sbs, err := s.list()
	if err != nil {
		return nil, err
	}
	f := req.Filter
	resp := &runtimeapi.ListPodSandboxStatsResponse{}
	for _, sb := range sbs {
		if sb.state() != runtimeapi.PodSandboxState_SANDBOX_READY {
			continue
		}
		if f != nil && (f.Id != "" && !strings.HasPrefix(sb.id(), f.Id) || !labelsMatch(sb.cfg.Labels, f.LabelSelector)) {
			continue
		}
		st, err := s.sandboxStats(sb)
		if err != nil {
			return nil, err
		}
		resp.Stats = append(resp.Stats, st)
	}
	return resp, nil
}
