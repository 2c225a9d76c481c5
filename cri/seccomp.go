package cri

import (
	"fmt"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/peapod/peapod/seccomp"
)

// The CRI's seccomp profiles map onto the pod API's, which the builder of
// peapod's own pods applies (package seccomp compiles them; the init and
// exec stages load the filter): one implementation for `peapod run` and
// the kubelet. The difference is where a Localhost profile lives: the
// kubelet sends localhost_ref, an absolute host path it joined from its
// own seccomp directory and the pod's localhostProfile, and containerd
// reads that path as it is (manifest.ContainerSpec does the same).

// seccompProfile maps a CRI SecurityProfile onto a pod API one; f is the
// field errors name. nil is Unconfined, as containerd takes it (the
// kubelet sends RuntimeDefault under its SeccompDefault). A Localhost
// profile's localhost_ref must be a clean absolute path: a relative one
// would be read from the daemon's working directory, and ".." or "//" is
// no path the kubelet makes. Symlinks in it are followed, as containerd
// does: the caller is the node's kubelet, root on this host.
func seccompProfile(p *runtimeapi.SecurityProfile, f string) (*corev1.SeccompProfile, error) {
	if p == nil {
		return &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}, nil
	}
	switch p.ProfileType {
	case runtimeapi.SecurityProfile_RuntimeDefault:
		return &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}, nil
	case runtimeapi.SecurityProfile_Unconfined:
		return &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}, nil
	case runtimeapi.SecurityProfile_Localhost:
		ref := p.LocalhostRef
		switch {
		case ref == "":
			return nil, invalid(f+".localhost_ref", "missing (profile type Localhost)")
		case !filepath.IsAbs(ref):
			return nil, invalid(f+".localhost_ref", "%q is not an absolute path", ref)
		case filepath.Clean(ref) != ref:
			return nil, invalid(f+".localhost_ref", "%q is not a clean path (want %q)", ref, filepath.Clean(ref))
		}
		return &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: &ref}, nil
	}
	return nil, invalid(f+".profile_type", "unknown profile type %d", p.ProfileType)
}

// checkSandboxSeccomp checks the sandbox's seccomp profile. containerd
// applies it to the pause container; a peapod sandbox runs no process of
// the pod's (its supervisor and, with a shared PID namespace, its reaper
// are peapod's own), so there is nothing to apply it to, and the
// kubelet sends every container its own profile. It is still checked as
// containerd checks it when it starts the pause container, so a Localhost
// profile that is missing, unreadable, not JSON or with an unknown action
// fails RunPodSandbox before anything is made. A privileged sandbox's
// profile is ignored, as containerd ignores it.
func checkSandboxSeccomp(sc *runtimeapi.LinuxSandboxSecurityContext) error {
	const f = "config.linux.security_context.seccomp"
	sp, err := seccompProfile(sc.GetSeccomp(), f)
	if err != nil || sc.GetPrivileged() || sp.Type != corev1.SeccompProfileTypeLocalhost {
		return err
	}
	path := *sp.LocalhostProfile
	p, err := seccomp.LocalhostFile(path, nil)
	if err == nil && p != nil {
		if _, cerr := seccomp.Compile(p); cerr != nil {
			err = fmt.Errorf("%w %q: %w", seccomp.ErrProfile, path, cerr)
		}
	}
	if err != nil {
		return invalid(f+".localhost_ref", "%v", err)
	}
	return nil
}
