package manifest

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/peapod/peapod/runtime/spec"
)

// ContainerSpec converts one container c of pod (which need not list it)
// into the supervisor's spec, with runtime id id: the CRI server adds
// containers to a running pod one at a time, each with an id of its own.
// pod gives what containers share (host network, shared PID namespace,
// hostname, security context). The caller adds what a v1.Container cannot
// say (host-path mounts, explicit masked paths, a log path). A Localhost
// seccomp profile is an absolute host path here (the CRI's localhost_ref),
// not a path under SeccompDir.
func ContainerSpec(pod *corev1.Pod, c *corev1.Container, id string, in SpecInput) (*spec.Container, []string, error) {
	hostname, err := podHostname(pod)
	if err != nil {
		return nil, nil, err
	}
	b := &builder{pod: pod, in: in, hostname: hostname, shared: pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace,
		hostProfiles: true}
	sc, err := b.containerWithID(c, id)
	if err != nil {
		return nil, nil, err
	}
	return sc, b.warnings, nil
}
