package probes

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/peapod/peapod/runtime/spec"
)

// Probe defaults (SetDefaults_Probe): a 0 becomes these.
const (
	DefaultTimeoutSeconds   = 1
	DefaultPeriodSeconds    = 10
	DefaultSuccessThreshold = 1
	DefaultFailureThreshold = 3
)

// DefaultProbe applies SetDefaults_Probe and SetDefaults_HTTPGetAction to p.
func DefaultProbe(p *spec.Probe) {
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = DefaultTimeoutSeconds
	}
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds = DefaultPeriodSeconds
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = DefaultSuccessThreshold
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = DefaultFailureThreshold
	}
	if g := p.HTTPGet; g != nil {
		if g.Path == "" {
			g.Path = "/"
		}
		if g.Scheme == "" {
			g.Scheme = "HTTP"
		}
	}
}

// DefaultRestartPolicy applies SetDefaults_PodSpec's restart policy. The
// pod's grace period default (30 s) needs the manifest's nil, so the
// manifest applies it.
func DefaultRestartPolicy(pod *spec.Pod) {
	if pod.RestartPolicy == "" {
		pod.RestartPolicy = spec.RestartAlways
	}
}

// FieldError is one validation failure, worded as the API server's.
type FieldError struct {
	// Field is the path, e.g. "livenessProbe.successThreshold".
	Field string
	// Detail is the API server's message.
	Detail string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Detail }

// fieldNames are the container fields of the probe kinds.
var fieldNames = map[ProbeType]string{Liveness: "livenessProbe", Readiness: "readinessProbe", Startup: "startupProbe"}

// ValidateProbe checks a (defaulted) probe of kind t as validateProbe,
// validateLivenessProbe, validateReadinessProbe and validateStartupProbe.
// The manifest package validates the API object; this lets the supervisor
// refuse a spec that would make a worker misbehave.
func ValidateProbe(t ProbeType, p *spec.Probe) []FieldError {
	f := fieldNames[t]
	var errs []FieldError
	add := func(field, detail string) { errs = append(errs, FieldError{f + field, detail}) }
	for name, v := range map[string]int32{
		".initialDelaySeconds": p.InitialDelaySeconds, ".timeoutSeconds": p.TimeoutSeconds,
		".periodSeconds": p.PeriodSeconds, ".successThreshold": p.SuccessThreshold, ".failureThreshold": p.FailureThreshold,
	} {
		if v < 0 {
			add(name, fmt.Sprintf("Invalid value: %d: must be greater than or equal to 0", v))
		}
	}
	if (t == Liveness || t == Startup) && p.SuccessThreshold != 1 {
		add(".successThreshold", fmt.Sprintf("Invalid value: %d: must be 1", p.SuccessThreshold))
	}
	if g := p.TerminationGracePeriodSeconds; g != nil {
		if t == Readiness {
			add(".terminationGracePeriodSeconds", "Invalid value: "+strconv.FormatInt(*g, 10)+": must not be set for readinessProbes")
		} else if *g <= 0 {
			add(".terminationGracePeriodSeconds", "Invalid value: "+strconv.FormatInt(*g, 10)+": must be greater than 0")
		}
	}
	for _, e := range validateHandler(p) {
		errs = append(errs, FieldError{f + e.Field, e.Detail})
	}
	return sortErrors(errs)
}

// validateHandler is validateHandler and the per-action checks.
func validateHandler(p *spec.Probe) []FieldError {
	n := 0
	var errs []FieldError
	if p.Exec != nil {
		n++
		if len(p.Exec) == 0 {
			errs = append(errs, FieldError{".exec.command", "Required value"})
		}
	}
	if g := p.HTTPGet; g != nil {
		n++
		errs = append(errs, validateHTTPGet(g)...)
	}
	if s := p.TCPSocket; s != nil {
		n++
		errs = append(errs, validatePort(".tcpSocket.port", s.Port)...)
	}
	if g := p.GRPC; g != nil {
		n++
		if g.Port < 1 || g.Port > 65535 {
			errs = append(errs, FieldError{".grpc.port", fmt.Sprintf("Invalid value: %d: must be between 1 and 65535, inclusive", g.Port)})
		}
	}
	switch {
	case n == 0:
		errs = append(errs, FieldError{"", "Required value: must specify a handler type"})
	case n > 1:
		errs = append(errs, FieldError{"", "Forbidden: may not specify more than 1 handler type"})
	}
	return errs
}

// isHTTPHeaderName is IsHTTPHeaderName (^[-A-Za-z0-9]+$), by hand: the
// supervisor links this package, and regexp's code and the compiled
// patterns built at init would sit in every pod's memory.
func isHTTPHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '-' && !isLowerAlnum(c|0x20) {
			return false
		}
	}
	return true
}

// isLowerAlnum reports whether c is in [a-z0-9].
func isLowerAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
}

// validateHTTPGet is validateHTTPGetAction.
func validateHTTPGet(g *spec.HTTPGet) []FieldError {
	var errs []FieldError
	if g.Path == "" {
		errs = append(errs, FieldError{".httpGet.path", "Required value"})
	}
	errs = append(errs, validatePort(".httpGet.port", g.Port)...)
	if g.Scheme != "HTTP" && g.Scheme != "HTTPS" {
		errs = append(errs, FieldError{".httpGet.scheme", fmt.Sprintf("Unsupported value: %q: supported values: \"HTTP\", \"HTTPS\"", g.Scheme)})
	}
	for _, h := range g.Headers {
		if !isHTTPHeaderName(h.Name) {
			errs = append(errs, FieldError{".httpGet.httpHeaders", fmt.Sprintf("Invalid value: %q: a valid HTTP header must consist of alphanumeric characters or '-'", h.Name)})
		}
	}
	return errs
}

// isIANASvcName is IsValidPortName: 1 to 15 lowercase alphanumerics or
// '-' (^[a-z0-9]([a-z0-9]|-[a-z0-9])*$: no leading, trailing or doubled
// '-'), with at least one letter.
func isIANASvcName(s string) bool {
	if s == "" || len(s) > 15 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	letter := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-':
			if s[i-1] == '-' {
				return false
			}
		case !isLowerAlnum(c):
			return false
		case c >= 'a':
			letter = true
		}
	}
	return letter
}

// validatePort accepts 1-65535 or an IANA service name.
func validatePort(field, port string) []FieldError {
	if n, err := strconv.Atoi(port); err == nil {
		if n < 1 || n > 65535 {
			return []FieldError{{field, fmt.Sprintf("Invalid value: %d: must be between 1 and 65535, inclusive", n)}}
		}
		return nil
	}
	if !isIANASvcName(port) {
		return []FieldError{{field, fmt.Sprintf("Invalid value: %q: must be a valid port number or an IANA_SVC_NAME", port)}}
	}
	return nil
}

// sortErrors orders errors by field so the map iteration above is stable.
func sortErrors(errs []FieldError) []FieldError {
	slices.SortStableFunc(errs, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
	return errs
}
