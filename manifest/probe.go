package manifest

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/peapod/peapod/runtime/spec"
)

// probe converts a defaulted probe. As the kubelet does, an exec probe's
// $(VAR) references expand from the container's *static* env values only
// (no downward API).
func probe(p *corev1.Probe, env []corev1.EnvVar) *spec.Probe {
	if p == nil {
		return nil
	}
	out := &spec.Probe{
		InitialDelaySeconds:           p.InitialDelaySeconds,
		TimeoutSeconds:                p.TimeoutSeconds,
		PeriodSeconds:                 p.PeriodSeconds,
		SuccessThreshold:              p.SuccessThreshold,
		FailureThreshold:              p.FailureThreshold,
		TerminationGracePeriodSeconds: p.TerminationGracePeriodSeconds,
	}
	switch h := p.ProbeHandler; {
	case h.Exec != nil:
		out.Exec = expandAll(h.Exec.Command, mappingFor(staticEnv(env)))
	case h.HTTPGet != nil:
		out.HTTPGet = &spec.HTTPGet{Path: h.HTTPGet.Path, Port: h.HTTPGet.Port.String(), Host: h.HTTPGet.Host, Scheme: string(h.HTTPGet.Scheme)}
		for _, hdr := range h.HTTPGet.HTTPHeaders {
			out.HTTPGet.Headers = append(out.HTTPGet.Headers, spec.HTTPHeader{Name: hdr.Name, Value: hdr.Value})
		}
	case h.TCPSocket != nil:
		out.TCPSocket = &spec.TCPSocket{Port: h.TCPSocket.Port.String(), Host: h.TCPSocket.Host}
	case h.GRPC != nil:
		out.GRPC = &spec.GRPC{Port: h.GRPC.Port}
		if h.GRPC.Service != nil {
			out.GRPC.Service = *h.GRPC.Service
		}
	}
	return out
}

// staticEnv maps the env vars with a literal value.
func staticEnv(env []corev1.EnvVar) map[string]string {
	m := map[string]string{}
	for _, e := range env {
		if e.ValueFrom == nil {
			m[e.Name] = e.Value
		}
	}
	return m
}
