package manifest

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Sysctls follow the API server (name syntax, duplicates, none of the
// host's network namespace) and the kubelet (an allowlist of the safe set
// plus --allowed-unsafe-sysctls patterns, each of which must name a
// namespaced sysctl: a pod must never change the host).

// sysctlMaxLength and the name expressions are the API server's.
const (
	sysctlMaxLength   = 253
	sysctlSegmentFmt  = "[a-z0-9]([-_a-z0-9]*[a-z0-9])?"
	sysctlNameFmt     = "(" + sysctlSegmentFmt + "[\\./])*" + sysctlSegmentFmt
	sysctlPatternFmt  = "(" + sysctlSegmentFmt + "[\\./])*(" + sysctlSegmentFmt + "|\\*)"
	sysctlForbidden   = "SysctlForbidden"
	sysctlNotAllowed  = "not allowlisted"
	sysctlNotNSFormat = "the sysctls %q are not known to be namespaced"
)

var (
	sysctlNameRegexp    = regexp.MustCompile("^" + sysctlNameFmt + "$")
	sysctlPatternRegexp = regexp.MustCompile("^" + sysctlPatternFmt + "$")
)

// ErrSysctlForbidden marks a pod the sysctl allowlist refuses (the kubelet's
// SysctlForbidden admission failure).
var ErrSysctlForbidden = errors.New(sysctlForbidden)

// safeSysctls are the kubelet's SafeSysctlAllowlist: namespaced, and
// unable to affect other pods or the node.
var safeSysctls = []string{
	"kernel.shm_rmid_forced",
	"net.ipv4.ip_local_port_range",
	"net.ipv4.tcp_syncookies",
	"net.ipv4.ping_group_range",
	"net.ipv4.ip_unprivileged_port_start",
	"net.ipv4.ip_local_reserved_ports",
	"net.ipv4.tcp_keepalive_time",
	"net.ipv4.tcp_fin_timeout",
	"net.ipv4.tcp_keepalive_intvl",
	"net.ipv4.tcp_keepalive_probes",
	"net.ipv4.tcp_rmem",
	"net.ipv4.tcp_wmem",
}

// SysctlNamespace is the namespace a sysctl belongs to.
type SysctlNamespace string

// The namespaces of namespaced sysctls; "" is none known (the host's).
const (
	SysctlIPC SysctlNamespace = "IPC"
	SysctlNet SysctlNamespace = "Net"
)

// sysctlNamespaces and sysctlPrefixNamespaces are the kubelet's table of
// namespaced sysctls.
var (
	sysctlNamespaces       = map[string]SysctlNamespace{"kernel.sem": SysctlIPC}
	sysctlPrefixNamespaces = map[string]SysctlNamespace{
		"kernel.shm": SysctlIPC, "kernel.msg": SysctlIPC, "fs.mqueue.": SysctlIPC, "net.": SysctlNet,
	}
)

// NormalizeSysctl turns a slash-separated name (net/ipv4/tcp_rmem, where a
// dot may be part of a segment, as in net/ipv4/conf/eth0.100/...) into the
// dotted form with such dots as slashes, as the kubelet does.
func NormalizeSysctl(name string) string {
	i := strings.IndexAny(name, "./")
	if i < 0 || name[i] == '.' {
		return name
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.':
			return '/'
		case '/':
			return '.'
		}
		return r
	}, name)
}

// SysctlNamespaceOf returns the namespace of a normalized sysctl name, ""
// when it is not known to be namespaced.
func SysctlNamespaceOf(name string) SysctlNamespace {
	if ns, ok := sysctlNamespaces[name]; ok {
		return ns
	}
	for p, ns := range sysctlPrefixNamespaces {
		if strings.HasPrefix(name, p) {
			return ns
		}
	}
	return ""
}

// validateSysctls is the API server's check of spec.securityContext.sysctls.
func validateSysctls(sysctls []corev1.Sysctl, spec *corev1.PodSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := map[string]bool{}
	for i, s := range sysctls {
		np := p.Index(i).Child("name")
		if err := sysctlNameError(s.Name, np); err != nil {
			errs = append(errs, err)
		} else if names[s.Name] {
			errs = append(errs, field.Duplicate(np, s.Name))
		}
		if err := hostSysctlError(s.Name, spec, np); err != nil {
			errs = append(errs, err)
		}
		names[s.Name] = true
	}
	return errs
}

// ValidateSysctlName is the API server's check of one sysctl name of a pod
// (its syntax, and no sysctl of a namespace the pod shares with the host),
// the error naming the field p. The CRI server checks a sandbox's sysctls
// with it.
func ValidateSysctlName(name string, spec *corev1.PodSpec, p *field.Path) *field.Error {
	if err := sysctlNameError(name, p); err != nil {
		return err
	}
	return hostSysctlError(name, spec, p)
}

// sysctlNameError checks a sysctl name's syntax.
func sysctlNameError(name string, p *field.Path) *field.Error {
	switch {
	case name == "":
		return field.Required(p, "")
	case len(name) > sysctlMaxLength || !sysctlNameRegexp.MatchString(name):
		return field.Invalid(p, name, fmt.Sprintf("must have at most %d characters and match regex %s", sysctlMaxLength, sysctlNameRegexp))
	}
	return nil
}

// hostSysctlError is the API server's ValidateHostSysctl: a pod on the
// host's network or IPC namespace must not set that namespace's sysctls,
// which would be the host's.
func hostSysctlError(name string, spec *corev1.PodSpec, p *field.Path) *field.Error {
	switch SysctlNamespaceOf(NormalizeSysctl(name)) {
	case SysctlNet:
		if spec.HostNetwork {
			return field.Invalid(p, name, "may not be specified when 'hostNetwork' is true")
		}
	case SysctlIPC:
		if spec.HostIPC {
			return field.Invalid(p, name, "may not be specified when 'hostIPC' is true")
		}
	}
	return nil
}

// SysctlAllowlist is the kubelet's sysctl admission: the safe set plus the
// --allowed-unsafe-sysctls patterns.
type SysctlAllowlist struct {
	// names are allowed sysctls by exact name, with their namespace.
	names map[string]SysctlNamespace
	// prefixes are allowed "prefix*" patterns, with their namespace.
	prefixes map[string]SysctlNamespace
}

// NewSysctlAllowlist builds the allowlist from unsafe patterns ("name" or
// "prefix*"), refusing malformed ones and any that is not namespaced, with
// the kubelet's words.
func NewSysctlAllowlist(unsafe []string) (*SysctlAllowlist, error) {
	w := &SysctlAllowlist{names: map[string]SysctlNamespace{}, prefixes: map[string]SysctlNamespace{}}
	for _, s := range append(append([]string{}, safeSysctls...), unsafe...) {
		s = NormalizeSysctl(s)
		if len(s) > sysctlMaxLength || !sysctlPatternRegexp.MatchString(s) {
			return nil, fmt.Errorf("sysctl %q must have at most %d characters and match regex %s", s, sysctlMaxLength, sysctlPatternRegexp)
		}
		if prefix, ok := strings.CutSuffix(s, "*"); ok {
			ns := SysctlNamespaceOf(prefix)
			if ns == "" {
				return nil, fmt.Errorf(sysctlNotNSFormat, prefix)
			}
			w.prefixes[prefix] = ns
			continue
		}
		ns := SysctlNamespaceOf(s)
		if ns == "" {
			return nil, fmt.Errorf(sysctlNotNSFormat, s)
		}
		w.names[s] = ns
	}
	return w, nil
}

// Admit refuses a pod any of whose sysctls the allowlist does not allow,
// with the kubelet's reason and message.
func (w *SysctlAllowlist) Admit(pod *corev1.Pod) error {
	sc := pod.Spec.SecurityContext
	if sc == nil {
		return nil
	}
	for _, s := range sc.Sysctls {
		if err := w.allow(NormalizeSysctl(s.Name), pod.Spec.HostNetwork, pod.Spec.HostIPC); err != nil {
			return fmt.Errorf("pod %q: %w: forbidden sysctl: %v", pod.Name, ErrSysctlForbidden, err)
		}
	}
	return nil
}

// allow is the kubelet's validateSysctl.
func (w *SysctlAllowlist) allow(name string, hostNet, hostIPC bool) error {
	ns, ok := w.names[name]
	if !ok {
		for p, pns := range w.prefixes {
			if strings.HasPrefix(name, p) {
				ns, ok = pns, true
				break
			}
		}
	}
	if !ok {
		return fmt.Errorf("%q %s", name, sysctlNotAllowed)
	}
	if (ns == SysctlNet && hostNet) || (ns == SysctlIPC && hostIPC) {
		return fmt.Errorf("%q not allowed with host %s enabled", name, ns)
	}
	return nil
}
