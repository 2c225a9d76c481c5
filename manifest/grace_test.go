package manifest

import (
	"math"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/peapod/peapod/runtime/spec"
)

// TestToSpecHugeGracePeriod: grace periods the API server accepts but a
// time.Duration cannot hold reach the spec whole and become the largest
// Duration, never a negative one (which meant "kill at once, no preStop").
func TestToSpecHugeGracePeriod(t *testing.T) {
	for _, grace := range []int64{9223372037, math.MaxInt64} {
		pod := &corev1.Pod{}
		pod.Name = "slow"
		pod.Spec.TerminationGracePeriodSeconds = ptr.To(grace)
		pod.Spec.Containers = []corev1.Container{{Name: "app", Image: "busybox:1.36",
			LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}},
				TerminationGracePeriodSeconds: ptr.To(grace)}}}
		SetDefaults(pod)
		if _, errs := Validate(pod); len(errs) > 0 {
			t.Fatalf("grace %d: Validate() = %v, want accepted as by the API server", grace, errs)
		}
		out, _, err := ToSpec(pod, testInput())
		if err != nil {
			t.Fatal(err)
		}
		if out.TerminationGracePeriodSeconds != grace {
			t.Errorf("spec grace = %d s, want %d", out.TerminationGracePeriodSeconds, grace)
		}
		if d := out.TerminationGracePeriod(); d != math.MaxInt64 {
			t.Errorf("grace %d s as a Duration = %v, want the largest Duration", grace, d)
		}
		if d := spec.Seconds(*out.Containers[0].LivenessProbe.TerminationGracePeriodSeconds); d != math.MaxInt64 {
			t.Errorf("probe grace %d s as a Duration = %v, want the largest Duration", grace, d)
		}
	}
}
