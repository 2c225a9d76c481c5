package manifest

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// probeKind names the three probes for the rules that differ between them.
type probeKind int

const (
	liveness probeKind = iota
	readiness
	startup
)

// validateProbes checks a container's probes (kubelet-probes.md §1).
// Regular init containers may have none.
func validateProbes(c *corev1.Container, kind containerKind, p *field.Path) field.ErrorList {
	probes := []struct {
		name  string
		kind  probeKind
		probe *corev1.Probe
	}{
		{"livenessProbe", liveness, c.LivenessProbe},
		{"readinessProbe", readiness, c.ReadinessProbe},
		{"startupProbe", startup, c.StartupProbe},
	}
	var errs field.ErrorList
	for _, pr := range probes {
		if pr.probe == nil {
			continue
		}
		pp := p.Child(pr.name)
		if kind == initContainer {
			errs = append(errs, field.Forbidden(pp, "may not be set for init containers without restartPolicy=Always"))
			continue
		}
		errs = append(errs, validateProbe(pr.probe, pr.kind, pp)...)
	}
	return errs
}

// validateProbe checks one probe: handler, timings, thresholds, grace.
func validateProbe(pr *corev1.Probe, kind probeKind, p *field.Path) field.ErrorList {
	errs := validateProbeHandler(&pr.ProbeHandler, p)
	for _, f := range []struct {
		name string
		v    int32
	}{
		{"initialDelaySeconds", pr.InitialDelaySeconds}, {"timeoutSeconds", pr.TimeoutSeconds},
		{"periodSeconds", pr.PeriodSeconds}, {"successThreshold", pr.SuccessThreshold},
		{"failureThreshold", pr.FailureThreshold},
	} {
		if f.v < 0 {
			errs = append(errs, field.Invalid(p.Child(f.name), f.v, "must be greater than or equal to 0"))
		}
	}
	if kind != readiness && pr.SuccessThreshold != 1 {
		errs = append(errs, field.Invalid(p.Child("successThreshold"), pr.SuccessThreshold, "must be 1"))
	}
	if g := pr.TerminationGracePeriodSeconds; g != nil {
		switch {
		case kind == readiness:
			errs = append(errs, field.Invalid(p.Child("terminationGracePeriodSeconds"), *g, "must not be set for readinessProbes"))
		case *g <= 0:
			errs = append(errs, field.Invalid(p.Child("terminationGracePeriodSeconds"), *g, "must be greater than 0"))
		}
	}
	return errs
}

// validateProbeHandler requires exactly one handler and checks it.
func validateProbeHandler(h *corev1.ProbeHandler, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	n := 0
	if h.Exec != nil {
		n++
		if len(h.Exec.Command) == 0 {
			errs = append(errs, field.Required(p.Child("exec", "command"), ""))
		}
	}
	for _, other := range []struct {
		name  string
		set   bool
		check func(*field.Path) field.ErrorList
	}{
		{"httpGet", h.HTTPGet != nil, func(fp *field.Path) field.ErrorList { return validateHTTPGet(h.HTTPGet, fp) }},
		{"tcpSocket", h.TCPSocket != nil, func(fp *field.Path) field.ErrorList { return validatePortNumOrName(fp.Child("port"), h.TCPSocket.Port) }},
		{"grpc", h.GRPC != nil, func(fp *field.Path) field.ErrorList { return validatePortNum(fp.Child("port"), h.GRPC.Port) }},
	} {
		if !other.set {
			continue
		}
		if n > 0 {
			errs = append(errs, field.Forbidden(p.Child(other.name), "may not specify more than 1 handler type"))
			continue
		}
		n++
		errs = append(errs, other.check(p.Child(other.name))...)
	}
	if n == 0 {
		errs = append(errs, field.Required(p, "must specify a handler type"))
	}
	return errs
}

var httpSchemes = []corev1.URIScheme{corev1.URISchemeHTTP, corev1.URISchemeHTTPS}

// validateHTTPGet checks path, port, scheme and header names.
func validateHTTPGet(h *corev1.HTTPGetAction, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if h.Path == "" {
		errs = append(errs, field.Required(p.Child("path"), ""))
	}
	errs = append(errs, validatePortNumOrName(p.Child("port"), h.Port)...)
	if h.Scheme != corev1.URISchemeHTTP && h.Scheme != corev1.URISchemeHTTPS {
		errs = append(errs, field.NotSupported(p.Child("scheme"), h.Scheme, httpSchemes))
	}
	for i, hdr := range h.HTTPHeaders {
		for _, msg := range validation.IsHTTPHeaderName(hdr.Name) {
			errs = append(errs, field.Invalid(p.Child("httpHeaders").Index(i).Child("name"), hdr.Name, msg))
		}
	}
	return errs
}
