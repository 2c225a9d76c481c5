package pod

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/peapod/peapod/cni"
	"github.com/peapod/peapod/namespaces"
	"github.com/peapod/peapod/runtime/state"
)

// GCItem is one thing gc removed (or would remove, with dry run).
type GCItem struct {
	// Kind is pod, network, netns, cgroup or rundir.
	Kind string `json:"kind"`
	// Name identifies the object.
	Name string `json:"name"`
	// Reason says why it is debris.
	Reason string `json:"reason"`
}

// GC removes what a crash left behind, in the spirit of CNI's GC verb:
//   - a pod still in phase Creating whose creator is dead never became a
//     pod: all of it goes, record included;
//   - a pod whose supervisor is dead without having finished, and whose
//     cgroups are empty, loses its kernel objects and lease; its record
//     stays (Unknown/SupervisorLost) until rm;
//   - netns pins, run dirs, cgroups, leases and bridge ports of this root
//     that no pod record names.
//
// It holds the same lock as run's reservation, skips pods whose creator is
// alive, touches only what this root created (names carry the root id),
// and a second run finds nothing.
func (m *Manager) GC(dryRun bool) ([]GCItem, error) {
	unlock, err := state.Lock(m.lockPath())
	if err != nil {
		return nil, err
	}
	defer unlock()
	recs, err := m.records()
	if err != nil {
		return nil, err
	}
	var items []GCItem
	var errs []error
	known := map[string]bool{}
	for _, rec := range recs {
		known[rec.UID] = true
		item, err := m.gcPod(rec, dryRun)
		if item != nil {
			items = append(items, *item)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	orphans, err := m.gcOrphans(known, dryRun)
	items = append(items, orphans...)
	if err != nil {
		errs = append(errs, err)
	}
	if !dryRun {
		errs = append(errs, m.unbindHelperIfIdleLocked())
	}
	return items, errors.Join(errs...)
}

// gcPod handles one recorded pod.
func (m *Manager) gcPod(rec *state.Record, dryRun bool) (*GCItem, error) {
	name := rec.Namespace + "/" + rec.Name
	if rec.Phase == state.PhaseCreating {
		if rec.Creator.Alive() {
			return nil, nil
		}
		// run writes its last record without the lock: the creator may
		// have finished (and exited) since the records were listed. Only a
		// record that still says Creating now that its creator is known to
		// be dead is debris; a dead creator writes nothing more.
		now, err := state.ReadRecord(m.recordPath(rec.UID))
		if err != nil || now.Phase != state.PhaseCreating {
			return nil, nil
		}
		item := &GCItem{Kind: "pod", Name: name, Reason: fmt.Sprintf("creation by pid %d never finished", rec.Creator.PID)}
		if dryRun {
			return item, nil
		}
		if err := m.releaseResources(rec); err != nil {
			return item, err
		}
		if err := m.removeNameIndex(rec); err != nil {
			return item, err
		}
		return item, removeAll(m.podDir(rec.UID))
	}
	v := m.view(rec)
	if item, ok := m.gcAdopt(v, dryRun); ok {
		return item, nil // a lost supervisor is replaced, not collected
	}
	if v.SupervisorAlive || v.Final || !m.holdsKernelObjects(rec) || !m.cgroupsEmpty(rec) {
		return nil, nil
	}
	item := &GCItem{Kind: "network", Name: name, Reason: "supervisor lost and no process left: releasing its network, pins and cgroups"}
	if dryRun {
		return item, nil
	}
	return item, m.releaseResources(rec)
}

// holdsKernelObjects reports whether anything of rec remains to release.
func (m *Manager) holdsKernelObjects(rec *state.Record) bool {
	if _, err := os.Stat(m.runDir(rec.UID)); err == nil {
		return true
	}
	if rec.NetnsName != "" {
		if _, err := os.Stat(filepath.Join("/run/netns", rec.NetnsName)); err == nil {
			return true
		}
	}
	for _, p := range append([]string{rec.CgroupParent}, rec.ContainerCgroups...) {
		if _, err := m.cg.Pids(p); err == nil {
			return true
		}
	}
	return false
}

// cgroupsEmpty reports that no process of the pod is left.
func (m *Manager) cgroupsEmpty(rec *state.Record) bool {
	for _, p := range rec.ContainerCgroups {
		if pids, err := m.cg.Pids(p); err == nil && len(pids) > 0 {
			return false
		}
	}
	return true
}

// gcOrphans removes this root's kernel objects and dirs that no record names.
func (m *Manager) gcOrphans(known map[string]bool, dryRun bool) ([]GCItem, error) {
	var items []GCItem
	var errs []error
	prefixes := map[string]bool{}
	for uid := range known {
		prefixes[uid[:8]] = true
	}
	// Run dirs (and the uts/ipc pins inside them).
	runPods := filepath.Join(m.o.RunRoot, "pods")
	entries, _ := os.ReadDir(runPods)
	for _, e := range entries {
		if known[e.Name()] {
			continue
		}
		items = append(items, GCItem{Kind: "rundir", Name: filepath.Join(runPods, e.Name()), Reason: "no pod record"})
		if !dryRun {
			o := namespaces.SandboxOptions{RunDir: filepath.Join(runPods, e.Name())}
			errs = append(errs, namespaces.RemoveSandbox(o), removeRunDir(o.RunDir))
		}
	}
	// Network namespace pins carry this root's id.
	pins, _ := os.ReadDir("/run/netns")
	own := "peapod-" + m.id + "-"
	for _, e := range pins {
		uid8, ok := strings.CutPrefix(e.Name(), own)
		if !ok || prefixes[uid8] {
			continue
		}
		items = append(items, GCItem{Kind: "netns", Name: e.Name(), Reason: "no pod record"})
		if !dryRun {
			errs = append(errs, namespaces.RemoveSandbox(namespaces.SandboxOptions{RunDir: filepath.Join(runPods, "gc-"+uid8), NetnsName: e.Name()}))
		}
	}
	// Pod cgroups under this root's parent.
	for _, uid := range m.cgroupChildren() {
		if known[uid] {
			continue
		}
		path := m.CgroupRoot() + "/" + uid
		items = append(items, GCItem{Kind: "cgroup", Name: path, Reason: "no pod record"})
		if !dryRun {
			errs = append(errs, m.destroyCgroupTree(path))
		}
	}
	net, err := m.gcNetwork(known, dryRun)
	items = append(items, net...)
	errs = append(errs, err)
	return items, errors.Join(errs...)
}

// cgroupChildren lists the pod uids with a cgroup under this root's parent.
func (m *Manager) cgroupChildren() []string {
	dir, err := m.cg.Dir("freezer", m.CgroupRoot())
	if err != nil {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// destroyCgroupTree kills and removes a pod cgroup and its container children.
func (m *Manager) destroyCgroupTree(path string) error {
	var errs []error
	if dir, err := m.cg.Dir("freezer", path); err == nil {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if e.IsDir() {
				errs = append(errs, m.cg.Destroy(path+"/"+e.Name()))
			}
		}
	}
	errs = append(errs, m.cg.DestroyTree(path))
	return errors.Join(errs...)
}

// gcNetwork releases host ports, bridge ports and leases whose pod no
// record names (an external CNI chain garbage-collects its own state).
func (m *Manager) gcNetwork(known map[string]bool, dryRun bool) ([]GCItem, error) {
	if m.o.Chain != nil {
		return nil, nil
	}
	keep := func(uid string) bool { return known[uid] }
	gc := cni.GC
	if dryRun {
		gc = cni.GCDryRun
	}
	removed, err := gc(m.o.Network, keep)
	var items []GCItem
	for _, r := range removed {
		items = append(items, GCItem{Kind: "network", Name: r, Reason: "no pod record"})
	}
	return items, err
}
