package probes_test

import (
	"strings"
	"testing"

	"github.com/peapod/peapod/manifest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestChecklist_02 (validation) runs the real path a manifest takes —
// manifest.SetDefaults and manifest.Validate, which peapod run calls before
// creating anything — and checks the API server's messages for probes.
func TestChecklist_02(t *testing.T) {
	valid := func() *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}},
			PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3}
	}
	grace := func(v int64) *int64 { return &v }
	type kind int
	const (
		liveness kind = iota
		readiness
		startup
	)
	cases := []struct {
		name string
		kind kind
		mut  func(p *corev1.Probe)
		want string
	}{
		{"liveness success 2", liveness, func(p *corev1.Probe) { p.SuccessThreshold = 2 }, "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"},
		{"startup success 2", startup, func(p *corev1.Probe) { p.SuccessThreshold = 2 }, "spec.containers[0].startupProbe.successThreshold: Invalid value: 2: must be 1"},
		{"readiness grace", readiness, func(p *corev1.Probe) { p.TerminationGracePeriodSeconds = grace(5) }, "must not be set for readinessProbes"},
		{"grace 0", liveness, func(p *corev1.Probe) { p.TerminationGracePeriodSeconds = grace(0) }, "terminationGracePeriodSeconds: Invalid value: 0: must be greater than 0"},
		{"negative period", readiness, func(p *corev1.Probe) { p.PeriodSeconds = -1 }, "periodSeconds: Invalid value: -1: must be greater than or equal to 0"},
		{"negative delay", readiness, func(p *corev1.Probe) { p.InitialDelaySeconds = -1 }, "initialDelaySeconds: Invalid value: -1"},
		{"negative timeout", readiness, func(p *corev1.Probe) { p.TimeoutSeconds = -1 }, "timeoutSeconds: Invalid value: -1"},
		{"negative failure", readiness, func(p *corev1.Probe) { p.FailureThreshold = -1 }, "failureThreshold: Invalid value: -1"},
		{"no handler", readiness, func(p *corev1.Probe) { p.Exec = nil }, "must specify a handler type"},
		{"two handlers", readiness, func(p *corev1.Probe) { p.TCPSocket = &corev1.TCPSocketAction{Port: intstr.FromInt32(80)} }, "may not specify more than 1 handler type"},
		{"empty exec", readiness, func(p *corev1.Probe) { p.Exec.Command = nil }, "readinessProbe.exec.command: Required value"},
		{"ftp", readiness, func(p *corev1.Probe) {
			p.Exec = nil
			p.HTTPGet = &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(80), Scheme: "FTP"}
		}, `Unsupported value: "FTP"`},
		{"grpc 0", readiness, func(p *corev1.Probe) { p.Exec = nil; p.GRPC = &corev1.GRPCAction{Port: 0} }, "grpc.port: Invalid value: 0: must be between 1 and 65535"},
		{"grpc 70000", readiness, func(p *corev1.Probe) { p.Exec = nil; p.GRPC = &corev1.GRPCAction{Port: 70000} }, "grpc.port: Invalid value: 70000"},
		{"bad port name", readiness, func(p *corev1.Probe) {
			p.Exec = nil
			p.TCPSocket = &corev1.TCPSocketAction{Port: intstr.FromString("Not_A_Name")}
		}, `readinessProbe.tcpSocket.port: Invalid value: "Not_A_Name": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)`},
	}
	podWith := func(k kind, p *corev1.Probe) *corev1.Pod {
		c := corev1.Container{Name: "c", Image: "busybox:latest", Command: []string{"sleep", "1"}}
		switch k {
		case liveness:
			c.LivenessProbe = p
		case readiness:
			c.ReadinessProbe = p
		case startup:
			c.StartupProbe = p
		}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{Containers: []corev1.Container{c}}}
		manifest.SetDefaults(pod)
		return pod
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := valid()
			tc.mut(p)
			_, errs := manifest.Validate(podWith(tc.kind, p))
			if !strings.Contains(errs.ToAggregate().Error(), tc.want) {
				t.Fatalf("errors %q do not contain %q", errs, tc.want)
			}
		})
	}
	for _, k := range []kind{liveness, readiness, startup} {
		if _, errs := manifest.Validate(podWith(k, valid())); len(errs) != 0 {
			t.Fatalf("valid probe (kind %d) rejected: %v", k, errs)
		}
	}
}

// TestChecklist_01PodDefaults: the pod- and probe-level defaults a manifest
// gets before the supervisor sees it (SetDefaults_PodSpec, _Probe,
// _HTTPGetAction).
func TestChecklist_01PodDefaults(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{
		Name: "c", Image: "busybox:latest",
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(80)}}},
	}}}}
	manifest.SetDefaults(pod)
	if pod.Spec.RestartPolicy != corev1.RestartPolicyAlways || pod.Spec.TerminationGracePeriodSeconds == nil || *pod.Spec.TerminationGracePeriodSeconds != 30 {
		t.Errorf("pod defaults: restartPolicy %q, terminationGracePeriodSeconds %v; want Always, 30", pod.Spec.RestartPolicy, pod.Spec.TerminationGracePeriodSeconds)
	}
	p := pod.Spec.Containers[0].ReadinessProbe
	if p.TimeoutSeconds != 1 || p.PeriodSeconds != 10 || p.SuccessThreshold != 1 || p.FailureThreshold != 3 || p.InitialDelaySeconds != 0 ||
		p.HTTPGet.Path != "/" || p.HTTPGet.Scheme != corev1.URISchemeHTTP {
		t.Errorf("probe defaults: %+v %+v", *p, *p.HTTPGet)
	}
}
