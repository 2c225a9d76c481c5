package manifest

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/peapod/peapod/seccomp"
)

// validateSeccomp is the API server's ValidateSeccompProfileField: a known
// type, and a localhostProfile exactly when the type is Localhost, relative
// and without "..".
func validateSeccomp(sp *corev1.SeccompProfile, p *field.Path) field.ErrorList {
	if sp == nil {
		return nil
	}
	var errs field.ErrorList
	switch sp.Type {
	case corev1.SeccompProfileTypeLocalhost, corev1.SeccompProfileTypeRuntimeDefault, corev1.SeccompProfileTypeUnconfined:
	case "":
		errs = append(errs, field.Required(p.Child("type"), "type is required when seccompProfile is set"))
	default:
		errs = append(errs, field.NotSupported(p.Child("type"), sp.Type, []corev1.SeccompProfileType{
			corev1.SeccompProfileTypeLocalhost, corev1.SeccompProfileTypeRuntimeDefault, corev1.SeccompProfileTypeUnconfined}))
	}
	lp := p.Child("localhostProfile")
	if sp.Type != corev1.SeccompProfileTypeLocalhost {
		if sp.LocalhostProfile != nil {
			errs = append(errs, field.Invalid(lp, sp, "can only be set when seccomp type is Localhost"))
		}
		return errs
	}
	if sp.LocalhostProfile == nil {
		return append(errs, field.Required(lp, "must be set when seccomp type is Localhost"))
	}
	rel := *sp.LocalhostProfile
	if path.IsAbs(rel) {
		errs = append(errs, field.Invalid(lp, rel, "must be a relative path"))
	}
	for _, part := range strings.Split(filepath.ToSlash(rel), "/") {
		if part == ".." {
			errs = append(errs, field.Invalid(lp, rel, "must not contain '..'"))
			break
		}
	}
	return errs
}

// effectiveSeccomp is the profile a container runs under, as the kubelet
// picks it: privileged containers are unconfined; else the container's
// profile, else the pod's, else RuntimeDefault under --seccomp-default
// (the kubelet's SeccompDefault) and Unconfined without it.
func effectiveSeccomp(podSC *corev1.PodSecurityContext, c *corev1.Container, seccompDefault bool) corev1.SeccompProfile {
	sc := c.SecurityContext
	switch {
	case isPrivileged(sc):
		return corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
	case sc != nil && sc.SeccompProfile != nil:
		return *sc.SeccompProfile
	case podSC != nil && podSC.SeccompProfile != nil:
		return *podSC.SeccompProfile
	case seccompDefault:
		return corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	}
	return corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
}

// compiledFilter is one compiled profile.
type compiledFilter struct {
	// prog is the sock_filter array (nil: no filter).
	prog []byte
	// name says which profile it is.
	name string
}

// seccompFilter compiles the container's effective profile for proc (the
// default profile's rules depend on its capabilities), once per distinct
// profile and capability set of the pod.
func (b *builder) seccompFilter(c *corev1.Container, proc *specs.Process) (compiledFilter, error) {
	sp := effectiveSeccomp(b.pod.Spec.SecurityContext, c, b.in.SeccompDefault)
	name := string(sp.Type)
	if sp.Type == corev1.SeccompProfileTypeLocalhost && sp.LocalhostProfile != nil {
		name += "/" + *sp.LocalhostProfile
	}
	if sp.Type == corev1.SeccompProfileTypeUnconfined {
		return compiledFilter{name: name}, nil
	}
	key := name + "\x00" + strings.Join(proc.Capabilities.Bounding, ",")
	if f, ok := b.filters[key]; ok {
		return f, nil
	}
	var prof *specs.LinuxSeccomp
	var err error
	switch {
	case sp.Type == corev1.SeccompProfileTypeRuntimeDefault:
		prof, err = seccomp.RuntimeDefault(proc)
	case b.hostProfiles:
		prof, err = seccomp.LocalhostFile(*sp.LocalhostProfile, proc)
	default:
		prof, err = seccomp.Localhost(b.in.SeccompDir, *sp.LocalhostProfile, proc)
	}
	if err != nil {
		return compiledFilter{}, fmt.Errorf("container %q: %w", c.Name, err)
	}
	f := compiledFilter{name: name}
	if prof != nil {
		if f.prog, err = seccomp.Compile(prof); err != nil {
			if sp.Type == corev1.SeccompProfileTypeLocalhost {
				// An unknown action or operator is the file's fault, as
				// a parse error is: the same ErrProfile, naming the file.
				path := *sp.LocalhostProfile
				if !b.hostProfiles {
					path = filepath.Join(b.in.SeccompDir, path)
				}
				return compiledFilter{}, fmt.Errorf("container %q: %w %q: %w", c.Name, seccomp.ErrProfile, path, err)
			}
			return compiledFilter{}, fmt.Errorf("container %q: failed to compile seccomp profile %s: %w", c.Name, name, err)
		}
	}
	if b.filters == nil {
		b.filters = map[string]compiledFilter{}
	}
	b.filters[key] = f
	return f, nil
}
