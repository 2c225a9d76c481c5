package manifest

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/peapod/peapod/runtime/spec"
)

// TestToSpecRecursiveReadOnly: a volume mount's recursiveReadOnly becomes
// the init stage's rro option as the kubelet resolves it: Enabled always
// (the init stage then fails if the kernel cannot), IfPossible when the
// kernel has mount_setattr, Disabled and unset never.
func TestToSpecRecursiveReadOnly(t *testing.T) {
	saved := RecursiveReadOnlySupported
	t.Cleanup(func() { RecursiveReadOnlySupported = saved })
	for _, tt := range []struct {
		mode      *corev1.RecursiveReadOnlyMode
		supported bool
		want      bool
	}{
		{nil, true, false},
		{ptr.To(corev1.RecursiveReadOnlyDisabled), true, false},
		{ptr.To(corev1.RecursiveReadOnlyEnabled), true, true},
		{ptr.To(corev1.RecursiveReadOnlyEnabled), false, true},
		{ptr.To(corev1.RecursiveReadOnlyIfPossible), true, true},
		{ptr.To(corev1.RecursiveReadOnlyIfPossible), false, false},
	} {
		RecursiveReadOnlySupported = func() bool { return tt.supported }
		c := toSpecOne(t, func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv/data"}}}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data", ReadOnly: true, RecursiveReadOnly: tt.mode}}
		})
		i := slices.IndexFunc(c.OCI.Mounts, func(m specs.Mount) bool { return m.Destination == "/data" })
		if i < 0 {
			t.Fatalf("no /data mount in %v", c.OCI.Mounts)
		}
		opts := c.OCI.Mounts[i].Options
		if got := slices.Contains(opts, spec.RecursiveReadOnlyOption); got != tt.want || !slices.Contains(opts, "ro") {
			t.Errorf("mode %v, kernel support %v: options %v, want rro %v", ptr.Deref(tt.mode, "unset"), tt.supported, opts, tt.want)
		}
	}
}

// TestRecursiveReadOnlySupported: this machine's kernel (5.12 or later,
// as every one peapod's CI runs on) has mount_setattr.
func TestRecursiveReadOnlySupported(t *testing.T) {
	if !RecursiveReadOnlySupported() {
		t.Error("mount_setattr reported missing")
	}
}
