package manifest

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestNormalizeSysctl(t *testing.T) {
	for in, want := range map[string]string{
		"net.ipv4.tcp_rmem":              "net.ipv4.tcp_rmem",
		"net/ipv4/tcp_rmem":              "net.ipv4.tcp_rmem",
		"net/ipv4/conf/eth0.100/forward": "net.ipv4.conf.eth0/100.forward",
		"net.ipv4.conf.eth0/100.forward": "net.ipv4.conf.eth0/100.forward",
		"kernel":                         "kernel",
	} {
		if got := NormalizeSysctl(in); got != want {
			t.Errorf("NormalizeSysctl(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestValidateSysctls: the API server's texts.
func TestValidateSysctls(t *testing.T) {
	re := "^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$"
	tests := []struct {
		name    string
		sysctls []corev1.Sysctl
		hostNet bool
		hostIPC bool
		want    []string
	}{
		{"good", []corev1.Sysctl{{Name: "net.core.somaxconn", Value: "1024"}, {Name: "kernel/shm_rmid_forced", Value: "1"}}, false, false, nil},
		{"empty name", []corev1.Sysctl{{Value: "1"}}, false, false, []string{"spec.securityContext.sysctls[0].name: Required value"}},
		{"malformed", []corev1.Sysctl{{Name: "net..core", Value: "1"}}, false, false,
			[]string{`spec.securityContext.sysctls[0].name: Invalid value: "net..core": must have at most 253 characters and match regex ` + re}},
		{"upper case", []corev1.Sysctl{{Name: "Net.core.x", Value: "1"}}, false, false,
			[]string{`spec.securityContext.sysctls[0].name: Invalid value: "Net.core.x": must have at most 253 characters and match regex ` + re}},
		{"escape", []corev1.Sysctl{{Name: "../../etc/passwd", Value: "1"}}, false, false,
			[]string{`spec.securityContext.sysctls[0].name: Invalid value: "../../etc/passwd": must have at most 253 characters and match regex ` + re}},
		{"duplicate", []corev1.Sysctl{{Name: "kernel.sem", Value: "1"}, {Name: "kernel.sem", Value: "2"}}, false, false,
			[]string{`spec.securityContext.sysctls[1].name: Duplicate value: "kernel.sem"`}},
		{"net on host network", []corev1.Sysctl{{Name: "net.ipv4.tcp_syncookies", Value: "1"}, {Name: "kernel.shm_rmid_forced", Value: "1"}}, true, false,
			[]string{`spec.securityContext.sysctls[0].name: Invalid value: "net.ipv4.tcp_syncookies": may not be specified when 'hostNetwork' is true`}},
		{"ipc on host ipc", []corev1.Sysctl{{Name: "net.ipv4.tcp_syncookies", Value: "1"}, {Name: "kernel.shm_rmid_forced", Value: "1"}, {Name: "fs/mqueue/msg_max", Value: "10"}, {Name: "kernel.sem", Value: "1"}}, false, true,
			[]string{
				`spec.securityContext.sysctls[1].name: Invalid value: "kernel.shm_rmid_forced": may not be specified when 'hostIPC' is true`,
				`spec.securityContext.sysctls[2].name: Invalid value: "fs/mqueue/msg_max": may not be specified when 'hostIPC' is true`,
				`spec.securityContext.sysctls[3].name: Invalid value: "kernel.sem": may not be specified when 'hostIPC' is true`,
			}},
		{"duplicate on host network", []corev1.Sysctl{{Name: "net.core.somaxconn", Value: "1"}, {Name: "net.core.somaxconn", Value: "2"}}, true, false,
			[]string{
				`spec.securityContext.sysctls[0].name: Invalid value: "net.core.somaxconn": may not be specified when 'hostNetwork' is true`,
				`spec.securityContext.sysctls[1].name: Duplicate value: "net.core.somaxconn"`,
				`spec.securityContext.sysctls[1].name: Invalid value: "net.core.somaxconn": may not be specified when 'hostNetwork' is true`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, e := range validateSysctls(tt.sysctls, &corev1.PodSpec{HostNetwork: tt.hostNet, HostIPC: tt.hostIPC}, field.NewPath("spec", "securityContext", "sysctls")) {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestSysctlAllowlist: the kubelet's admission and flag checks.
func TestSysctlAllowlist(t *testing.T) {
	podWith := func(hostNet bool, names ...string) *corev1.Pod {
		p := &corev1.Pod{}
		p.Name = "p"
		p.Spec.HostNetwork = hostNet
		p.Spec.SecurityContext = &corev1.PodSecurityContext{}
		for _, n := range names {
			p.Spec.SecurityContext.Sysctls = append(p.Spec.SecurityContext.Sysctls, corev1.Sysctl{Name: n, Value: "1"})
		}
		return p
	}
	hostIPCPod := func(names ...string) *corev1.Pod {
		p := podWith(false, names...)
		p.Spec.HostIPC = true
		return p
	}
	safeOnly, err := NewSysctlAllowlist(nil)
	if err != nil {
		t.Fatal(err)
	}
	unsafe, err := NewSysctlAllowlist([]string{"net.core.*", "kernel.msgmax", "fs/mqueue/*"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		w    *SysctlAllowlist
		pod  *corev1.Pod
		want string
	}{
		{"safe", safeOnly, podWith(false, "net.ipv4.ip_local_port_range", "kernel.shm_rmid_forced", "net/ipv4/tcp_syncookies"), ""},
		{"unsafe without the flag", safeOnly, podWith(false, "net.core.somaxconn"), `pod "p": SysctlForbidden: forbidden sysctl: "net.core.somaxconn" not allowlisted`},
		{"unsafe with a pattern", unsafe, podWith(false, "net.core.somaxconn", "kernel.msgmax", "fs.mqueue.msg_max"), ""},
		{"unsafe outside the patterns", unsafe, podWith(false, "kernel.msgmnb"), `forbidden sysctl: "kernel.msgmnb" not allowlisted`},
		{"not namespaced", unsafe, podWith(false, "vm.swappiness"), `forbidden sysctl: "vm.swappiness" not allowlisted`},
		{"net on the host network", unsafe, podWith(true, "net.core.somaxconn"), `forbidden sysctl: "net.core.somaxconn" not allowed with host Net enabled`},
		{"ipc on the host network", unsafe, podWith(true, "kernel.msgmax"), ""},
		{"ipc on host ipc", unsafe, hostIPCPod("kernel.msgmax"), `forbidden sysctl: "kernel.msgmax" not allowed with host IPC enabled`},
		{"safe ipc on host ipc", safeOnly, hostIPCPod("kernel.shm_rmid_forced"), `forbidden sysctl: "kernel.shm_rmid_forced" not allowed with host IPC enabled`},
		{"net on host ipc", unsafe, hostIPCPod("net.core.somaxconn"), ""},
		{"no security context", safeOnly, &corev1.Pod{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.w.Admit(tt.pod)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Admit = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrSysctlForbidden) {
				t.Fatalf("Admit = %v, want SysctlForbidden containing %q", err, tt.want)
			}
		})
	}
	for pattern, want := range map[string]string{
		"vm.swappiness": `the sysctls "vm.swappiness" are not known to be namespaced`,
		"kernel.*":      `the sysctls "kernel." are not known to be namespaced`,
		"net.core.":     `sysctl "net.core." must have at most 253 characters`,
		"net.*.x":       `sysctl "net.*.x" must have at most 253 characters`,
	} {
		if _, err := NewSysctlAllowlist([]string{pattern}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewSysctlAllowlist(%q) = %v, want %q", pattern, err, want)
		}
	}
}
