package manifest

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// hostnameMax is the kubelet's cap on a pod's hostname: the kernel's 64-byte
// buffer less its terminating NUL.
const hostnameMax = 63

// Hostname is the name a pod's own UTS namespace gets, as the kubelet
// chooses it: spec.hostname, else the pod name. A pod name is a DNS
// subdomain of up to 253 characters: longer than 63, it is cut to 63 and
// trailing '-' and '.' are trimmed (the kubelet's
// truncatePodHostnameIfNeeded); dots stay. A host-network pod keeps the
// host's name instead (its caller reads it).
func Hostname(pod *corev1.Pod) string {
	name := pod.Name
	if pod.Spec.Hostname != "" {
		name = pod.Spec.Hostname
	}
	if len(name) <= hostnameMax {
		return name
	}
	return strings.TrimRight(name[:hostnameMax], "-.")
}
