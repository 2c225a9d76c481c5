package pod

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/peapod/peapod/cni"
	"github.com/peapod/peapod/namespaces"
	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/state"
)

// GCItem is one thing gc removed (or would remove, with dry run), or left
// alone on purpose.
type GCItem struct {
	// Kind is pod, network, netns, cgroup or rundir.
	Kind string `json:"kind"`
	// Name identifies the object.
	Name string `json:"name"`
	// Reason says why it is debris, or why it was kept.
	Reason string `json:"reason"`
	// Kept is set when gc left the object alone and says why.
	Kept bool `json:"kept,omitempty"`
}

// GC removes what a crash left behind, in the spirit of CNI's GC verb:
//   - a pod still in phase Creating or Removing whose name lock is free
//     (its run or rm died) is removed whole, record and name included —
//     one gc, nothing left for a second;
//   - a name whose record is gone (a run or rm killed between the two) goes;
//   - a pod whose supervisor is dead without having finished, and whose
//     cgroups are empty, loses its kernel objects and lease; its record
//     stays (Unknown/SupervisorLost) until rm;
//   - a pod whose record cannot be read is left alone, with the reason: its
//     resources are not debris, and rm -f removes it;
//   - netns pins, run dirs, cgroups, leases and bridge ports of this root
//     that no remaining pod names.
//
// It holds the root's lock, as run's reservation does, skips pods whose
// name another peapod holds (a run or rm under way), touches only what
// this root created (names carry the root id), and a second run finds
// nothing.
func (m *Manager) GC(dryRun bool) ([]GCItem, error) {
	unlock, err := state.Lock(m.lockPath())
	if err != nil {
		return nil, err
	}
	defer unlock()
	es, err := m.entries()
	if err != nil {
		return nil, err
	}
	// A fault step (faultinject builds) between the listing and the name
	// locks: the window in which a run or rm may finish.
	if err := newTracer(m.o.Trace, "gc", m.o.Root).step("listed"); err != nil {
		return nil, err
	}
	var items []GCItem
	var errs []error
	known := map[string]bool{}
	for _, e := range es {
		item, gone, err := m.gcEntry(e, dryRun)
		if !gone {
			known[e.UID] = true
		}
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

// gcEntry handles one pod; gone reports that nothing of it remains (with
// dry run: would remain), so the orphan sweep may take what it left.
func (m *Manager) gcEntry(e entry, dryRun bool) (item *GCItem, gone bool, err error) {
	name := e.Namespace + "/" + e.Name
	if e.Name == "" {
		name = "uid " + e.UID
	}
	var held *state.Held
	index := e.Index
	if index == "" && e.Rec != nil {
		index = m.nameIndex(e.Rec.Namespace, e.Rec.Name)
	}
	if index != "" {
		// Never wait here: run and rm take a name's lock before the root's.
		held, err = state.LockExisting(index, true)
		switch {
		case errors.Is(err, state.ErrBusy):
			return nil, false, nil // a run or rm is under way
		case errors.Is(err, state.ErrNotFound):
			held = nil
		case err != nil:
			return nil, false, err
		default:
			defer held.Unlock()
			if string(held.Data) != e.UID {
				held.Unlock()
				held = nil // the name is another pod's now
			}
		}
	}
	// Decide on the record as it is now, with the name lock taken: the one
	// listed before may predate a run that has since finished (Creating,
	// now Created and running) or an rm that has removed the pod.
	e.Rec, e.Err = state.ReadRecord(m.recordPath(e.UID))
	if errors.Is(e.Err, state.ErrNotFound) && index != "" && held == nil {
		// Its name went (or names another pod) since the listing, and so
		// did its record: an rm finished it, nothing is left to collect.
		return nil, true, nil
	}
	switch {
	case e.Err != nil && !errors.Is(e.Err, state.ErrNotFound):
		return &GCItem{Kind: "pod", Name: name, Kept: true,
			Reason: fmt.Sprintf("record unreadable (%v); its resources are not debris: rm -f removes it", e.Err)}, false, nil
	case e.Err != nil:
		item := &GCItem{Kind: "pod", Name: name, Reason: "name left without a record by an interrupted run or rm"}
		if dryRun {
			return item, true, nil
		}
		return item, true, m.purge(m.salvage(e.UID, e.Namespace, e.Name), held, newTracer(m.o.Trace, "gc", name))
	}
	rec := e.Rec
	var why string
	switch {
	case rec.Phase == state.PhaseCreating && !rec.Creator.Alive():
		why = fmt.Sprintf("creation by pid %d never finished", rec.Creator.PID)
	case rec.Phase == state.PhaseCreating:
		// A peapod without name locks (an older one) still creating it.
		return nil, false, nil
	case rec.Phase == state.PhaseRemoving && !rec.Remover.Alive():
		why = fmt.Sprintf("removal by pid %d never finished", rec.Remover.PID)
	case rec.Phase == state.PhaseRemoving:
		return nil, false, nil
	default:
		return m.gcLost(rec, name, dryRun)
	}
	item = &GCItem{Kind: "pod", Name: name, Reason: why}
	if dryRun {
		return item, true, nil
	}
	return item, true, m.purge(rec, held, newTracer(m.o.Trace, "gc", name))
}

// gcLost releases the kernel objects of a created pod whose supervisor died
// without finishing and whose processes are all gone; the record stays.
func (m *Manager) gcLost(rec *state.Record, name string, dryRun bool) (*GCItem, bool, error) {
	v := m.view(rec)
	if item, ok := m.gcAdopt(v, dryRun); ok {
		return item, false, nil // a lost supervisor is replaced, not collected
	}
	if v.SupervisorAlive || v.Final || !m.holdsKernelObjects(rec) || !m.cgroupsEmpty(rec) {
		return nil, false, nil
	}
	item := &GCItem{Kind: "network", Name: name, Reason: "supervisor lost and no process left: releasing its network, pins and cgroups"}
	if dryRun {
		return item, false, nil
	}
	return item, false, m.releaseResources(rec, newTracer(m.o.Trace, "gc", name))
}

// holdsKernelObjects reports whether anything of rec remains to release.
func (m *Manager) holdsKernelObjects(rec *state.Record) bool {
	if _, err := os.Stat(m.runDir(rec.UID)); err == nil {
		return true
	}
	if rec.NetnsName != "" {
		if _, err := os.Stat(layout.NetnsPath(rec.NetnsName)); err == nil {
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
	runPods := m.dirs().RunPodsDir()
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
	pins, _ := os.ReadDir(layout.NetnsDir)
	own := m.dirs().NetnsPrefix()
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
	// Pod cgroups under this root's parent and its QoS classes'.
	for _, path := range m.podCgroups() {
		if known[filepath.Base(path)] {
			continue
		}
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

// podCgroups lists the pod cgroups of this root: those under its cgroup
// (Guaranteed pods, and pods from before QoS classes) and those under each
// class's.
func (m *Manager) podCgroups() []string {
	var out []string
	for _, p := range m.cgroupChildren(m.CgroupRoot()) {
		switch filepath.Base(p) {
		case qosBurstable, qosBestEffort:
			out = append(out, m.cgroupChildren(p)...)
		default:
			out = append(out, p)
		}
	}
	return out
}

// cgroupChildren lists the child cgroups of parent, as paths.
func (m *Manager) cgroupChildren(parent string) []string {
	dir, err := m.cg.Dir("freezer", parent)
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
			out = append(out, parent+"/"+e.Name())
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
