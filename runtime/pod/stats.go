package pod

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/peapod/peapod/cgroups"
	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/spec"
	"github.com/peapod/peapod/runtime/state"
)

// PodStats are one pod's figures at one moment, read from its cgroups and
// the host end of its veth: what `top`, `stats` and `metrics` show.
type PodStats struct {
	Namespace, Name, UID string
	// At is when the figures were read (CPU rates are deltas over it).
	At time.Time
	// Pod is the pod cgroup's, which holds every container's.
	Pod cgroups.Stats
	// Containers are the app containers' (init containers have finished
	// by the time anyone looks), in spec order.
	Containers []ContainerStats
	// NetRxBytes and NetTxBytes are what the pod received and sent on its
	// eth0, counted on the host end of the veth (where rx and tx swap).
	NetRxBytes, NetTxBytes int64
	// NetRxPackets, NetTxPackets, NetRxErrors, NetTxErrors, NetRxDropped
	// and NetTxDropped are its packets, errors and drops, counted there
	// too.
	NetRxPackets, NetTxPackets, NetRxErrors, NetTxErrors, NetRxDropped, NetTxDropped int64
	// HasNet is false for a hostNetwork pod, whose traffic is the host's.
	HasNet bool
}

// ContainerStats are one container's figures.
type ContainerStats struct {
	Name string
	// Running reports the container has a live process now.
	Running bool
	cgroups.Stats
}

// Stats reads the figures of a pod that has cgroups (created, not
// removed). A stopped pod's cgroups are gone: ErrNotRunning.
func (m *Manager) Stats(ns, name string) (*PodStats, error) {
	v, err := m.Get(ns, name)
	if err != nil {
		return nil, err
	}
	return m.StatsOf(v)
}

// StatsOf is Stats for a pod already looked up (a listing's views).
func (m *Manager) StatsOf(v *View) (*PodStats, error) {
	rec := v.Record
	ns, name := rec.Namespace, rec.Name
	if rec.Phase != state.PhaseCreated || !v.SupervisorAlive {
		return nil, fmt.Errorf("pod %s/%s is not running: %w", ns, name, ErrNotRunning)
	}
	cg, err := m.driverFor(rec)
	if err != nil {
		return nil, err
	}
	out := &PodStats{Namespace: rec.Namespace, Name: rec.Name, UID: rec.UID, At: time.Now()}
	if out.Pod, err = cgroups.ReadStats(cg, rec.CgroupParent); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			// Removed since the view was taken (a listing's views age).
			return nil, fmt.Errorf("pod %s/%s is not running: %w", ns, name, ErrNotRunning)
		}
		return nil, fmt.Errorf("failed to read stats of pod %s/%s: %w", ns, name, err)
	}
	sp, err := spec.Load(layout.Run(m.runDir(rec.UID)).Spec())
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s: %w", ns, name, err)
	}
	for i, c := range sp.Containers {
		cs := ContainerStats{Name: c.Name}
		if st := statusAt(v.Status, false, i); st != nil {
			cs.Running = st.State == state.StateRunning && st.Proc.Alive()
		}
		if cs.Stats, err = cgroups.ReadStats(cg, c.Cgroup); err != nil {
			return nil, fmt.Errorf("failed to read stats of container %q of pod %s/%s: %w", c.Name, ns, name, err)
		}
		out.Containers = append(out.Containers, cs)
	}
	if rec.HostVeth != "" {
		// The host end's tx is what the pod received.
		var errs []error
		for _, c := range []struct {
			to   *int64
			file string
		}{
			{&out.NetRxBytes, "tx_bytes"}, {&out.NetTxBytes, "rx_bytes"},
			{&out.NetRxPackets, "tx_packets"}, {&out.NetTxPackets, "rx_packets"},
			{&out.NetRxErrors, "tx_errors"}, {&out.NetTxErrors, "rx_errors"},
			{&out.NetRxDropped, "tx_dropped"}, {&out.NetTxDropped, "rx_dropped"},
		} {
			n, err := netCounter(rec.HostVeth, c.file)
			*c.to, errs = n, append(errs, err)
		}
		out.HasNet = errors.Join(errs...) == nil
	}
	return out, nil
}

// CgroupPids lists the processes in cgroup (a container's spec.Cgroup) of
// the pod of v, for the CRI's per-process metrics.
func (m *Manager) CgroupPids(v *View, cgroup string) ([]int, error) {
	cg, err := m.driverFor(v.Record)
	if err != nil {
		return nil, err
	}
	return cg.Pids(cgroup)
}

// ErrNotRunning is returned for figures of a pod that has no cgroups now.
var ErrNotRunning = errors.New("pod not running")

// driverFor is the cgroup driver the pod was created with: a root may hold
// pods of both drivers (the --cgroup-driver flag changed between runs).
func (m *Manager) driverFor(rec *state.Record) (cgroups.Driver, error) {
	if rec.CgroupDriver == "" || rec.CgroupDriver == m.cg.Name() {
		return m.cg, nil
	}
	cg, err := cgroups.New(rec.CgroupDriver, cgroups.DefaultMountRoot)
	if err != nil {
		return nil, fmt.Errorf("cgroup driver %s of pod %s/%s: %w", rec.CgroupDriver, rec.Namespace, rec.Name, err)
	}
	return cg, nil
}

func netCounter(link, name string) (int64, error) {
	file := filepath.Join("/sys/class/net", link, "statistics", name)
	data, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
}

// HostMemory is the machine's memory in bytes (MemTotal), the limit
// `stats` shows for a pod without one, as podman and docker do.
func HostMemory() (int64, error) {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("failed to parse MemTotal in /proc/meminfo: %w", err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no MemTotal in /proc/meminfo")
}
