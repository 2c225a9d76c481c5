package pod

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestPodCgroupByClass: each class has its place under the root's cgroup,
// named as the kubelet's, and the place says the class back.
func TestPodCgroupByClass(t *testing.T) {
	m := &Manager{id: "abc123"}
	const uid = "0123abcd-0000-4000-8000-000000000001"
	for _, tt := range []struct {
		class corev1.PodQOSClass
		want  string
	}{
		{corev1.PodQOSGuaranteed, "peapod-abc123/" + uid},
		{corev1.PodQOSBurstable, "peapod-abc123/burstable/" + uid},
		{corev1.PodQOSBestEffort, "peapod-abc123/besteffort/" + uid},
	} {
		got := m.podCgroup(uid, tt.class)
		if got != tt.want {
			t.Errorf("podCgroup(%s) = %q, want %q", tt.class, got, tt.want)
		}
		if back := m.qosOfCgroup(got); back != tt.class {
			t.Errorf("qosOfCgroup(%q) = %s, want %s", got, back, tt.class)
		}
	}
	// A record from before QoS classes: the pod sits under the root's
	// cgroup directly, which is Guaranteed's place.
	if c := m.qosOfCgroup("peapod-abc123/" + uid); c != corev1.PodQOSGuaranteed {
		t.Errorf("a flat pod cgroup reads as %s, want Guaranteed", c)
	}
}

// TestQOSFromCgroupParent reads the class off the parents a kubelet names,
// with either cgroup driver.
func TestQOSFromCgroupParent(t *testing.T) {
	for parent, want := range map[string]corev1.PodQOSClass{
		"/kubepods/burstable/pod1234":                      corev1.PodQOSBurstable,
		"/kubepods/besteffort/pod1234":                     corev1.PodQOSBestEffort,
		"/kubepods/pod1234":                                corev1.PodQOSGuaranteed,
		"kubepods-burstable-pod12_34.slice":                corev1.PodQOSBurstable,
		"kubepods-besteffort-pod12_34.slice":               corev1.PodQOSBestEffort,
		"kubepods-pod12_34.slice":                          corev1.PodQOSGuaranteed,
		"":                                                 corev1.PodQOSGuaranteed,
		"/kubepods/burstablepod/x":                         corev1.PodQOSGuaranteed,
		"/system.slice/kubepods-besteffort-podx.slice/foo": corev1.PodQOSBestEffort,
	} {
		if got := QOSFromCgroupParent(parent); got != want {
			t.Errorf("QOSFromCgroupParent(%q) = %s, want %s", parent, got, want)
		}
	}
}
