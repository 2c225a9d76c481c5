package pod

import (
	"fmt"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"github.com/peapod/peapod/manifest"
	"github.com/peapod/peapod/namespaces"
	"github.com/peapod/peapod/runtime/spec"
)

// Admit is the kubelet's admission of a pod on this machine: its sysctls
// must be in the safe set or match --allowed-unsafe-sysctls. run admits
// every pod before it creates the first; Create admits again.
func (m *Manager) Admit(p *corev1.Pod) error {
	w, err := manifest.NewSysctlAllowlist(m.o.Pods.AllowedUnsafeSysctls)
	if err != nil {
		return fmt.Errorf("invalid --allowed-unsafe-sysctls: %w", err)
	}
	return w.Admit(p)
}

// applySysctls sets the pod's sysctls in its network and IPC namespaces,
// before any container starts (as runc does in the sandbox's init). They
// need no undo: they go with the namespaces.
func applySysctls(p *corev1.Pod, sb *namespaces.Sandbox) error {
	sc := p.Spec.SecurityContext
	if sc == nil || len(sc.Sysctls) == 0 {
		return nil
	}
	byNS := map[manifest.SysctlNamespace][]namespaces.Sysctl{}
	for _, s := range sc.Sysctls {
		name := manifest.NormalizeSysctl(s.Name)
		ns := manifest.SysctlNamespaceOf(name)
		if ns == "" {
			return fmt.Errorf("sysctl %q of pod %s/%s is not namespaced", s.Name, p.Namespace, p.Name)
		}
		byNS[ns] = append(byNS[ns], namespaces.Sysctl{Name: name, Value: s.Value})
	}
	for _, t := range []struct {
		ns    manifest.SysctlNamespace
		key   string
		flag  int
		label string
	}{
		{manifest.SysctlNet, spec.NSNet, unix.CLONE_NEWNET, "network"},
		{manifest.SysctlIPC, spec.NSIPC, unix.CLONE_NEWIPC, "IPC"},
	} {
		if len(byNS[t.ns]) == 0 {
			continue
		}
		path := sb.Paths[t.key]
		if path == "" {
			return fmt.Errorf("pod %s/%s has no %s namespace of its own for its sysctls", p.Namespace, p.Name, t.label)
		}
		if err := namespaces.SetSysctls(path, t.flag, byNS[t.ns]); err != nil {
			return fmt.Errorf("pod %s/%s: %w", p.Namespace, p.Name, err)
		}
	}
	return nil
}
