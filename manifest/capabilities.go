package manifest

import (
	"strings"

	"github.com/moby/sys/capability"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
)

// defaultCapabilities are the 14 capabilities Docker and containerd's CRI
// grant by default (and so what Kubernetes users expect), not runc spec's 3.
var defaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// allCapabilities lists every capability this build knows, in kernel order.
// A privileged container asks for all of them; the init stage clamps the
// set to its own bounding set (this host lacks CAP_SYS_RESOURCE, say).
var allCapabilities = func() []string {
	var names []string
	for _, c := range capability.ListKnown() {
		names = append(names, "CAP_"+strings.ToUpper(c.String()))
	}
	return names
}()

// knownCapabilities is allCapabilities as a set.
var knownCapabilities = sets.New(allCapabilities...)

// capName normalises a manifest capability ("net_admin", "CAP_NET_ADMIN")
// to the OCI form "CAP_NET_ADMIN", as containerd accepts both.
func capName(c corev1.Capability) string {
	n := strings.ToUpper(string(c))
	if !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	return n
}

// containerCapabilities computes the effective set as containerd does:
// "ALL" in add grants everything, "ALL" in drop clears everything (drop ALL
// wins), then individual adds and drops apply, drops last.
func containerCapabilities(caps *corev1.Capabilities, privileged bool) []string {
	if privileged {
		return append([]string(nil), allCapabilities...)
	}
	set := sets.New(defaultCapabilities...)
	if caps == nil {
		return orderCaps(set)
	}
	if hasAll(caps.Add) {
		set = sets.New(allCapabilities...)
	}
	if hasAll(caps.Drop) {
		set = sets.New[string]()
	}
	for _, c := range caps.Add {
		if !strings.EqualFold(string(c), "ALL") {
			set.Insert(capName(c))
		}
	}
	for _, c := range caps.Drop {
		set.Delete(capName(c))
	}
	return orderCaps(set)
}

// hasAll reports whether a list holds "ALL".
func hasAll(list []corev1.Capability) bool {
	for _, c := range list {
		if strings.EqualFold(string(c), "ALL") {
			return true
		}
	}
	return false
}

// orderCaps returns the set in kernel order, so specs are stable.
func orderCaps(set sets.Set[string]) []string {
	out := []string{}
	for _, c := range allCapabilities {
		if set.Has(c) {
			out = append(out, c)
		}
	}
	return out
}
