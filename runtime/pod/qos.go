package pod

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/peapod/peapod/cgroups"
	"github.com/peapod/peapod/manifest"
	"github.com/peapod/peapod/runtime/state"
)

// The QoS-class cgroups under a root's cgroup, named as the kubelet's
// (cgroupfs driver): a Guaranteed pod's cgroup sits directly under the
// root's, a Burstable or BestEffort one under the class's.
const (
	qosBurstable  = "burstable"
	qosBestEffort = "besteffort"
)

// bestEffortShares is the besteffort cgroup's cpu.shares: the kernel's
// minimum, so BestEffort pods together get CPU only when nobody with a
// request wants it (the kubelet's MinShares).
const bestEffortShares = 2

// qosDir is the class's cgroup under the root's; "" for Guaranteed.
func qosDir(class corev1.PodQOSClass) string {
	switch class {
	case corev1.PodQOSBurstable:
		return qosBurstable
	case corev1.PodQOSBestEffort:
		return qosBestEffort
	}
	return ""
}

// podCgroup is the cgroup of the pod with that uid and QoS class.
func (m *Manager) podCgroup(uid string, class corev1.PodQOSClass) string {
	if d := qosDir(class); d != "" {
		return m.CgroupRoot() + "/" + d + "/" + uid
	}
	return m.CgroupRoot() + "/" + uid
}

// qosOfCgroup is the class a pod's cgroup path says, the inverse of
// podCgroup (records from before QoS parents say Guaranteed's place).
func (m *Manager) qosOfCgroup(cgroup string) corev1.PodQOSClass {
	switch path.Base(path.Dir(cgroup)) {
	case qosBurstable:
		return corev1.PodQOSBurstable
	case qosBestEffort:
		return corev1.PodQOSBestEffort
	}
	return corev1.PodQOSGuaranteed
}

// QOSFromCgroupParent reads the QoS class off the cgroup parent a kubelet
// names for a CRI sandbox: "/kubepods/burstable/pod<uid>" with the
// cgroupfs driver, "kubepods-burstable-pod<uid>.slice" with systemd's. A
// parent naming no class (a Guaranteed pod's, or none) is Guaranteed.
func QOSFromCgroupParent(parent string) corev1.PodQOSClass {
	for _, part := range strings.FieldsFunc(parent, func(r rune) bool { return r == '/' || r == '-' || r == '.' }) {
		switch part {
		case qosBurstable:
			return corev1.PodQOSBurstable
		case qosBestEffort:
			return corev1.PodQOSBestEffort
		}
	}
	return corev1.PodQOSGuaranteed
}

// findPodCgroup is the cgroup of a pod whose record is lost: the one of its
// uid that exists, under whichever class's parent; Guaranteed's place when
// none does.
func (m *Manager) findPodCgroup(uid string) string {
	for _, class := range []corev1.PodQOSClass{corev1.PodQOSBurstable, corev1.PodQOSBestEffort, corev1.PodQOSGuaranteed} {
		p := m.podCgroup(uid, class)
		if dir, err := m.cg.Dir("freezer", p); err == nil {
			if _, err := os.Stat(dir); err == nil {
				return p
			}
		}
	}
	return m.podCgroup(uid, corev1.PodQOSGuaranteed)
}

// setQoSParent gives a pod's class cgroup its CPU weight, as the kubelet's
// QoS container manager does before it creates a pod cgroup under it:
// besteffort the minimum, burstable the sum of its pods' CPU requests.
// Guaranteed pods are bounded by their own limits; their parent is the
// root's cgroup, which has no weight of its own. Called once the pod's own
// cgroup exists, which keeps the parent from being removed meanwhile.
func (m *Manager) setQoSParent(podCgroup string) error {
	parent := path.Dir(podCgroup)
	var shares uint64
	switch m.qosOfCgroup(podCgroup) {
	case corev1.PodQOSBestEffort:
		shares = bestEffortShares
	case corev1.PodQOSBurstable:
		return m.updateBurstableShares("")
	default:
		return nil
	}
	return m.setParentShares(parent, shares)
}

// setParentShares writes a QoS parent's cpu.shares. A hierarchy without
// the cpu controller (the controller-less cgroup2 tree of a hybrid host)
// has no weight to set: pods run there without QoS weights, as they run
// without limits when they ask for none.
func (m *Manager) setParentShares(parent string, shares uint64) error {
	err := m.cg.Set(parent, cgroups.Resources{CPUShares: shares})
	if err == nil || errors.Is(err, cgroups.ErrNoController) {
		return nil
	}
	// The last pod of the class was removed meanwhile, and its parent
	// with it: there is nothing left to weigh.
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return fmt.Errorf("failed to set the CPU weight of QoS cgroup %q: %w", parent, err)
}

// updateBurstableShares sets the root's burstable cgroup's cpu.shares to
// the sum of the CPU requests of the Burstable pods the root holds (the
// kubelet's formula: MilliCPUToShares of the sum, at least 2). It runs when
// a Burstable pod is created or removed, under the root's QoS lock, so the
// last write counts every pod; the pod with uid gone is left out (its
// record outlives its cgroup during a removal or a failed run's rollback).
func (m *Manager) updateBurstableShares(gone string) error {
	unlock, err := state.Lock(m.dirs().QoSLock())
	if err != nil {
		return err
	}
	defer unlock()
	recs, err := m.records()
	if err != nil {
		return err
	}
	var milli int64
	for _, rec := range recs {
		if rec.UID == gone || rec.Phase == state.PhaseRemoving || m.qosOfCgroup(rec.CgroupParent) != corev1.PodQOSBurstable {
			continue
		}
		var p corev1.Pod
		if err := json.Unmarshal(rec.Manifest, &p); err != nil {
			continue // an unreadable manifest asks for nothing
		}
		milli += manifest.PodCPURequestMilli(&p.Spec)
	}
	return m.setParentShares(m.CgroupRoot()+"/"+qosBurstable, manifest.MilliCPUToShares(milli))
}
