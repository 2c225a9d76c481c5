package manifest

import (
	"fmt"
	"net/netip"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Limits the API server enforces on dnsConfig.
const (
	maxDNSNameservers = 3
	maxDNSSearchPaths = 32
)

// Validate checks a defaulted pod. Warnings name fields that are accepted
// but not acted on; errors read like the API server's. Fields peapod does
// not honour are errors naming them.
func Validate(pod *corev1.Pod) (warnings []string, errs field.ErrorList) {
	warnings, errs = checkSupported(pod)
	errs = append(errs, validateMeta(&pod.ObjectMeta)...)
	w, e := validateSpec(&pod.Spec, field.NewPath("spec"))
	return append(warnings, w...), append(errs, e...)
}

// validateMeta checks the metadata with the API machinery's own validator,
// as the API server's pod validation calls it: the name a DNS subdomain (up
// to 253 characters, dots allowed), the namespace a DNS label, label keys and
// values, annotation keys and the annotations' total size (256 KiB). A long
// or dotted name is safe: host-global objects (netns pins, veths, cgroups,
// leases) are named after the pod's uid, the name index hashes what does not
// fit a file name, and the hostname is cut as the kubelet cuts it (Hostname).
func validateMeta(m *metav1.ObjectMeta) field.ErrorList {
	return apivalidation.ValidateObjectMeta(m, true, apivalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
}

// dns1123Label turns IsDNS1123Label's messages into Invalid errors.
func dns1123Label(p *field.Path, v string) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Label(v) {
		errs = append(errs, field.Invalid(p, v, msg))
	}
	return errs
}

// validateSpec checks the pod spec.
func validateSpec(s *corev1.PodSpec, p *field.Path) ([]string, field.ErrorList) {
	volumes, errs := validateVolumes(s.Volumes, p.Child("volumes"))
	errs = append(errs, validatePodOptions(s, p)...)
	errs = append(errs, validateDNS(s, p)...)
	warnings, e := validatePodSecurityContext(s.SecurityContext, p.Child("securityContext"))
	errs = append(errs, e...)
	if sc := s.SecurityContext; sc != nil {
		errs = append(errs, validateSysctls(sc.Sysctls, s, p.Child("securityContext", "sysctls"))...)
	}
	w, e := validateContainers(s, volumes, p)
	return append(warnings, w...), append(errs, e...)
}

// validatePodOptions checks the pod-wide scalar options.
func validatePodOptions(s *corev1.PodSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch s.RestartPolicy {
	case corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever:
	case "":
		errs = append(errs, field.Required(p.Child("restartPolicy"), ""))
	default:
		errs = append(errs, field.NotSupported(p.Child("restartPolicy"), s.RestartPolicy,
			[]corev1.RestartPolicy{corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}))
	}
	if g := s.TerminationGracePeriodSeconds; g != nil && *g < 0 {
		errs = append(errs, field.Invalid(p.Child("terminationGracePeriodSeconds"), *g, "must be greater than or equal to 0"))
	}
	if s.Hostname != "" {
		errs = append(errs, dns1123Label(p.Child("hostname"), s.Hostname)...)
	}
	if s.HostPID && s.ShareProcessNamespace != nil && *s.ShareProcessNamespace {
		// The API server's words (validateShareProcessNamespace).
		errs = append(errs, field.Invalid(p.Child("shareProcessNamespace"), true, "ShareProcessNamespace and HostPID cannot both be enabled"))
	}
	if s.HostUsers != nil && !*s.HostUsers {
		errs = append(errs, field.Forbidden(p.Child("hostUsers"), "user namespaces are not supported by peapod"))
	}
	if s.OS != nil && s.OS.Name != corev1.Linux {
		errs = append(errs, field.NotSupported(p.Child("os", "name"), s.OS.Name, []corev1.OSName{corev1.Linux}))
	}
	for i, a := range s.HostAliases {
		ap := p.Child("hostAliases").Index(i)
		if _, err := netip.ParseAddr(a.IP); err != nil {
			errs = append(errs, field.Invalid(ap.Child("ip"), a.IP, "must be a valid IP address"))
		}
		for j, h := range a.Hostnames {
			for _, msg := range validation.IsDNS1123Subdomain(h) {
				errs = append(errs, field.Invalid(ap.Child("hostnames").Index(j), h, msg))
			}
		}
	}
	return errs
}

// validateDNS checks dnsPolicy and dnsConfig as the API server does.
func validateDNS(s *corev1.PodSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	policies := []corev1.DNSPolicy{corev1.DNSClusterFirstWithHostNet, corev1.DNSClusterFirst, corev1.DNSDefault, corev1.DNSNone}
	if !sets.New(policies...).Has(s.DNSPolicy) {
		errs = append(errs, field.NotSupported(p.Child("dnsPolicy"), s.DNSPolicy, policies))
	}
	cp := p.Child("dnsConfig")
	c := s.DNSConfig
	if s.DNSPolicy == corev1.DNSNone {
		if c == nil {
			return append(errs, field.Required(cp, "must provide `dnsConfig` when `dnsPolicy` is None"))
		}
		if len(c.Nameservers) == 0 {
			errs = append(errs, field.Required(cp.Child("nameservers"), "must provide at least one DNS nameserver when `dnsPolicy` is None"))
		}
	}
	if c == nil {
		return errs
	}
	if len(c.Nameservers) > maxDNSNameservers {
		errs = append(errs, field.Invalid(cp.Child("nameservers"), c.Nameservers,
			fmt.Sprintf("must not have more than %d nameservers", maxDNSNameservers)))
	}
	for i, ns := range c.Nameservers {
		if _, err := netip.ParseAddr(ns); err != nil {
			errs = append(errs, field.Invalid(cp.Child("nameservers").Index(i), ns, "must be a valid IP address"))
		}
	}
	if len(c.Searches) > maxDNSSearchPaths {
		errs = append(errs, field.Invalid(cp.Child("searches"), c.Searches,
			fmt.Sprintf("must not have more than %d search paths", maxDNSSearchPaths)))
	}
	for i, search := range c.Searches {
		for _, msg := range validation.IsDNS1123Subdomain(strings.TrimSuffix(search, ".")) {
			errs = append(errs, field.Invalid(cp.Child("searches").Index(i), search, msg))
		}
	}
	for i, o := range c.Options {
		if o.Name == "" {
			errs = append(errs, field.Required(cp.Child("options").Index(i).Child("name"), "must not be empty"))
		}
	}
	return errs
}

// validatePodSecurityContext checks the pod-level security context.
func validatePodSecurityContext(sc *corev1.PodSecurityContext, p *field.Path) ([]string, field.ErrorList) {
	if sc == nil {
		return nil, nil
	}
	var errs field.ErrorList
	errs = append(errs, validateID(p.Child("runAsUser"), sc.RunAsUser)...)
	errs = append(errs, validateID(p.Child("runAsGroup"), sc.RunAsGroup)...)
	for i, g := range sc.SupplementalGroups {
		errs = append(errs, validateID(p.Child("supplementalGroups").Index(i), &g)...)
	}
	if sp := sc.SupplementalGroupsPolicy; sp != nil && *sp != corev1.SupplementalGroupsPolicyMerge && *sp != corev1.SupplementalGroupsPolicyStrict {
		errs = append(errs, field.NotSupported(p.Child("supplementalGroupsPolicy"), *sp,
			[]corev1.SupplementalGroupsPolicy{corev1.SupplementalGroupsPolicyMerge, corev1.SupplementalGroupsPolicyStrict}))
	}
	if sc.RunAsNonRoot != nil && *sc.RunAsNonRoot && sc.RunAsUser != nil && *sc.RunAsUser == 0 {
		errs = append(errs, field.Invalid(p.Child("runAsUser"), *sc.RunAsUser, "must not be 0 when `runAsNonRoot` is true"))
	}
	return nil, append(errs, validateSeccomp(sc.SeccompProfile, p.Child("seccompProfile"))...)
}

// validateID checks a uid or gid as the API does.
func validateID(p *field.Path, id *int64) field.ErrorList {
	if id == nil {
		return nil
	}
	var errs field.ErrorList
	for _, msg := range validation.IsValidUserID(*id) {
		errs = append(errs, field.Invalid(p, *id, msg))
	}
	return errs
}

// validateVolumes checks names and sources and returns the declared names.
func validateVolumes(vols []corev1.Volume, p *field.Path) (sets.Set[string], field.ErrorList) {
	names := sets.New[string]()
	var errs field.ErrorList
	for i, v := range vols {
		vp := p.Index(i)
		switch {
		case v.Name == "":
			errs = append(errs, field.Required(vp.Child("name"), ""))
		case names.Has(v.Name):
			errs = append(errs, field.Duplicate(vp.Child("name"), v.Name))
		default:
			errs = append(errs, dns1123Label(vp.Child("name"), v.Name)...)
		}
		names.Insert(v.Name)
		errs = append(errs, validateVolumeSource(&v, vp)...)
	}
	return names, errs
}

// hostPathTypes are the values of hostPath.type.
var hostPathTypes = []corev1.HostPathType{
	corev1.HostPathUnset, corev1.HostPathDirectoryOrCreate, corev1.HostPathDirectory,
	corev1.HostPathFileOrCreate, corev1.HostPathFile, corev1.HostPathSocket,
	corev1.HostPathCharDev, corev1.HostPathBlockDev,
}

// validateVolumeSource checks an emptyDir or hostPath source. Other sources
// were refused by checkSupported.
func validateVolumeSource(v *corev1.Volume, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case volumeTypes(v) > 1:
		errs = append(errs, field.Forbidden(p, "may not specify more than 1 volume type"))
	case v.EmptyDir != nil:
		ep := p.Child("emptyDir")
		if m := v.EmptyDir.Medium; m != corev1.StorageMediumDefault && m != corev1.StorageMediumMemory {
			errs = append(errs, field.NotSupported(ep.Child("medium"), m,
				[]corev1.StorageMedium{corev1.StorageMediumDefault, corev1.StorageMediumMemory}))
		}
		if l := v.EmptyDir.SizeLimit; l != nil && l.Sign() < 0 {
			errs = append(errs, field.Invalid(ep.Child("sizeLimit"), l.String(), "must be greater than or equal to 0"))
		}
	case v.HostPath != nil:
		hp := p.Child("hostPath")
		switch {
		case v.HostPath.Path == "":
			errs = append(errs, field.Required(hp.Child("path"), ""))
		case !path.IsAbs(v.HostPath.Path):
			errs = append(errs, field.Invalid(hp.Child("path"), v.HostPath.Path, "must be an absolute path"))
		case hasDotDot(v.HostPath.Path):
			errs = append(errs, field.Invalid(hp.Child("path"), v.HostPath.Path, "must not contain '..'"))
		}
		if t := v.HostPath.Type; t != nil && !sets.New(hostPathTypes...).Has(*t) {
			errs = append(errs, field.NotSupported(hp.Child("type"), *t, hostPathTypes))
		}
	case v.VolumeSource == (corev1.VolumeSource{}):
		errs = append(errs, field.Required(p, "must specify a volume type"))
	default:
		errs = append(errs, validateProjection(v, p)...)
	}
	return errs
}

// hasDotDot reports whether a slash-separated path has a ".." element.
func hasDotDot(p string) bool {
	for _, e := range strings.Split(p, "/") {
		if e == ".." {
			return true
		}
	}
	return false
}
