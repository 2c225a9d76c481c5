package e2e

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// withSysctls sets a pod's sysctls.
func withSysctls(p *corev1.Pod, kv ...string) *corev1.Pod {
	if p.Spec.SecurityContext == nil {
		p.Spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		p.Spec.SecurityContext.Sysctls = append(p.Spec.SecurityContext.Sysctls, corev1.Sysctl{Name: kv[i], Value: kv[i+1]})
	}
	return p
}

// TestSysctls_Applied: safe sysctls, and unsafe ones allowed by
// --allowed-unsafe-sysctls, are set in the pod's network and IPC
// namespaces before its containers start (the container sees them at once),
// and not on the host.
func TestSysctls_Applied(t *testing.T) {
	e := newEnv(t)
	hostRange := readHost(t, "/proc/sys/net/ipv4/ip_local_port_range")
	hostConn := readHost(t, "/proc/sys/net/core/somaxconn")
	hostMsg := readHost(t, "/proc/sys/kernel/msgmax")
	c := shell("app", "cat /proc/sys/net/ipv4/ip_local_port_range /proc/sys/net/core/somaxconn /proc/sys/kernel/msgmax /proc/sys/kernel/shm_rmid_forced; exec sleep 1000")
	p := withSysctls(newPod("sys", c), "net.ipv4.ip_local_port_range", "40000 50000", "kernel.shm_rmid_forced", "1",
		"net.core.somaxconn", "1234", "kernel/msgmax", "12345")
	e.runPodArgs(podJSON(p), "--allowed-unsafe-sysctls", "net.core.*,kernel.msgmax")
	e.waitLog("sys", "app", "12345")
	logs := strings.Fields(e.mustRun("logs", "sys", "-c", "app"))
	if strings.Join(logs, " ") != "40000 50000 1234 12345 1" {
		t.Errorf("the container saw %q at start, want the pod's sysctls", logs)
	}
	for file, want := range map[string]string{"/proc/sys/net/ipv4/ip_local_port_range": hostRange, "/proc/sys/net/core/somaxconn": hostConn, "/proc/sys/kernel/msgmax": hostMsg} {
		if got := readHost(t, file); got != want {
			t.Errorf("host %s changed from %q to %q", file, want, got)
		}
	}
}

// TestSysctls_Refused: an unsafe sysctl without the flag and a
// non-namespaced one are refused with the kubelet's words, a malformed name
// and net.* on a host-network pod with the API server's, a non-namespaced
// flag pattern with the kubelet's; each before anything is created. A
// value the kernel refuses fails the run and what it made is rolled back.
func TestSysctls_Refused(t *testing.T) {
	e := newEnv(t)
	hostNet := withSysctls(newPod("bad", ctr("app", "sleep", "1000")), "net.ipv4.tcp_syncookies", "1")
	hostNet.Spec.HostNetwork = true
	tests := []struct {
		name  string
		pod   *corev1.Pod
		flags []string
		want  string
	}{
		{"unsafe without the flag", withSysctls(newPod("bad", ctr("app", "sleep", "1000")), "net.core.somaxconn", "1234"), nil,
			`SysctlForbidden: forbidden sysctl: "net.core.somaxconn" not allowlisted`},
		{"not namespaced", withSysctls(newPod("bad", ctr("app", "sleep", "1000")), "vm.swappiness", "10"), []string{"--allowed-unsafe-sysctls", "net.*"},
			`SysctlForbidden: forbidden sysctl: "vm.swappiness" not allowlisted`},
		{"not namespaced in the flag", withSysctls(newPod("bad", ctr("app", "sleep", "1000")), "vm.swappiness", "10"), []string{"--allowed-unsafe-sysctls", "vm.swappiness"},
			`the sysctls "vm.swappiness" are not known to be namespaced`},
		{"malformed", withSysctls(newPod("bad", ctr("app", "sleep", "1000")), "net..core", "1"), nil,
			`spec.securityContext.sysctls[0].name: Invalid value: "net..core": must have at most 253 characters and match regex`},
		{"a value the kernel refuses", withSysctls(newPod("bad", ctr("app", "sleep", "1000")), "net.core.somaxconn", "many"), []string{"--allowed-unsafe-sysctls", "net.core.*"},
			`failed to set sysctl "net.core.somaxconn" to "many": write /proc/sys/net/core/somaxconn: invalid argument`},
		{"net on the host network", hostNet, nil,
			`spec.securityContext.sysctls[0].name: Invalid value: "net.ipv4.tcp_syncookies": may not be specified when 'hostNetwork' is true`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.snapshot()
			_, stderr, code := e.run(podJSON(tt.pod), append([]string{"run", "-d", "-f", "-"}, tt.flags...)...)
			if code == 0 || !strings.Contains(stderr, tt.want) {
				t.Fatalf("run: exit %d, stderr %q; want an error containing %q", code, stderr, tt.want)
			}
			if out, _, _ := e.run("", "ps", "-A"); strings.Contains(out, "bad") {
				t.Errorf("a refused pod is listed:\n%s", out)
			}
			e.assertNoLeak(before)
		})
	}
}
