package cri

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/peapod/peapod/internal/testutil"
	"golang.org/x/sys/unix"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// sandboxConfigWith is a valid sandbox config with the namespace options o
// and the sysctls.
func sandboxConfigWith(o *runtimeapi.NamespaceOption, sysctls map[string]string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "ns", Namespace: "default", Uid: "u1"},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: o},
			Sysctls:         sysctls,
		},
	}
}

// TestSandboxNamespaceModes: every combination of the sandbox's network,
// PID and IPC modes becomes the pod fields the runtime honours
// (hostNetwork, hostPID, shareProcessNamespace, hostIPC), and
// PodSandboxStatus's options are the ones asked for.
func TestSandboxNamespaceModes(t *testing.T) {
	const (
		pod  = runtimeapi.NamespaceMode_POD
		ctr  = runtimeapi.NamespaceMode_CONTAINER
		node = runtimeapi.NamespaceMode_NODE
	)
	for _, net := range []runtimeapi.NamespaceMode{pod, node} {
		for _, pid := range []runtimeapi.NamespaceMode{pod, ctr, node} {
			for _, ipc := range []runtimeapi.NamespaceMode{pod, node} {
				o := &runtimeapi.NamespaceOption{Network: net, Pid: pid, Ipc: ipc}
				name := net.String() + "/" + pid.String() + "/" + ipc.String()
				cfg := sandboxConfigWith(o, nil)
				p, _, err := podFromConfig(cfg)
				if err != nil {
					t.Errorf("%s: podFromConfig = %v", name, err)
					continue
				}
				s := p.Spec
				share := s.ShareProcessNamespace != nil && *s.ShareProcessNamespace
				if s.HostNetwork != (net == node) || s.HostPID != (pid == node) || share != (pid == pod) || s.HostIPC != (ipc == node) {
					t.Errorf("%s: hostNetwork %v, hostPID %v, shareProcessNamespace %v, hostIPC %v", name, s.HostNetwork, s.HostPID, share, s.HostIPC)
				}
				if got := nsOptions(cfg); got.Network != net || got.Pid != pid || got.Ipc != ipc {
					t.Errorf("%s: status options %v", name, got)
				}
				// A container asking for the sandbox's modes is accepted;
				// one asking for another of any of them is refused, naming
				// the field.
				if err := checkNamespaces(&runtimeapi.NamespaceOption{Network: net, Pid: pid, Ipc: ipc}, cfg); err != nil {
					t.Errorf("%s: container with the sandbox's modes: %v", name, err)
				}
				for _, bad := range []struct {
					field string
					o     *runtimeapi.NamespaceOption
				}{
					{"network", &runtimeapi.NamespaceOption{Network: other(net, pod, node), Pid: pid, Ipc: ipc}},
					{"pid", &runtimeapi.NamespaceOption{Network: net, Pid: other(pid, ctr, node), Ipc: ipc}},
					{"pid", &runtimeapi.NamespaceOption{Network: net, Pid: runtimeapi.NamespaceMode_TARGET, Ipc: ipc}},
					{"ipc", &runtimeapi.NamespaceOption{Network: net, Pid: pid, Ipc: other(ipc, pod, node)}},
				} {
					err := checkNamespaces(bad.o, cfg)
					if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "namespace_options."+bad.field) {
						t.Errorf("%s: container with %v: %v, want InvalidArgument naming namespace_options.%s", name, bad.o, err, bad.field)
					}
				}
			}
		}
	}
	// Without options: the pod's network and IPC, a PID namespace per
	// container, as the CRI's defaults say.
	p, _, err := podFromConfig(sandboxConfigWith(nil, nil))
	if err != nil || p.Spec.HostNetwork || p.Spec.HostPID || p.Spec.HostIPC || p.Spec.ShareProcessNamespace != nil {
		t.Errorf("no options: %v, %+v", err, p.Spec)
	}
}

// other is a or b, whichever m is not.
func other(m, a, b runtimeapi.NamespaceMode) runtimeapi.NamespaceMode {
	if m == a {
		return b
	}
	return a
}

// TestSandboxSysctls: the sandbox's sysctls become the pod's, sorted; a
// bad one is InvalidArgument naming config.linux.sysctls[name].
func TestSandboxSysctls(t *testing.T) {
	p, _, err := podFromConfig(sandboxConfigWith(nil, map[string]string{"kernel.shm_rmid_forced": "1", "fs.mqueue.msg_max": "100", "net/ipv4/ip_local_port_range": "1024 65000"}))
	if err != nil {
		t.Fatal(err)
	}
	want := []corev1.Sysctl{{Name: "fs.mqueue.msg_max", Value: "100"}, {Name: "kernel.shm_rmid_forced", Value: "1"}, {Name: "net/ipv4/ip_local_port_range", Value: "1024 65000"}}
	if got := p.Spec.SecurityContext.Sysctls; len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("sysctls = %v, want %v", got, want)
	}
	hostNet := &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}
	hostIPC := &runtimeapi.NamespaceOption{Ipc: runtimeapi.NamespaceMode_NODE}
	for _, tc := range []struct {
		name    string
		o       *runtimeapi.NamespaceOption
		sysctls map[string]string
		field   string
		says    string
	}{
		{"empty name", nil, map[string]string{"": "1"}, `config.linux.sysctls[""]`, "Required"},
		{"upper case", nil, map[string]string{"Net.core.somaxconn": "1"}, `config.linux.sysctls["Net.core.somaxconn"]`, "must have at most 253 characters"},
		{"escape", nil, map[string]string{"../../proc/sysrq-trigger": "b"}, `config.linux.sysctls["../../proc/sysrq-trigger"]`, "match regex"},
		{"too long", nil, map[string]string{"net." + strings.Repeat("a", 260): "1"}, `config.linux.sysctls["net.aaaa`, "at most 253"},
		{"host's", nil, map[string]string{"vm.swappiness": "10"}, `config.linux.sysctls["vm.swappiness"]`, "not a namespaced sysctl"},
		{"kernel but not ipc", nil, map[string]string{"kernel.panic": "1"}, `config.linux.sysctls["kernel.panic"]`, "not a namespaced sysctl"},
		{"net on the host network", hostNet, map[string]string{"net.ipv4.tcp_syncookies": "1"}, `config.linux.sysctls["net.ipv4.tcp_syncookies"]`, "'hostNetwork'"},
		{"ipc on host ipc", hostIPC, map[string]string{"kernel.shm_rmid_forced": "1"}, `config.linux.sysctls["kernel.shm_rmid_forced"]`, "'hostIPC'"},
		{"mqueue on host ipc", hostIPC, map[string]string{"fs/mqueue/msg_max": "10"}, `config.linux.sysctls["fs/mqueue/msg_max"]`, "'hostIPC'"},
		{"NUL in the value", nil, map[string]string{"kernel.shm_rmid_forced": "1\x000"}, `config.linux.sysctls["kernel.shm_rmid_forced"]`, "NUL"},
		{"newline in the value", nil, map[string]string{"net.core.somaxconn": "1\n2"}, `config.linux.sysctls["net.core.somaxconn"]`, "newline"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := podFromConfig(sandboxConfigWith(tc.o, tc.sysctls))
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("got %v, want InvalidArgument naming %s and saying %q", err, tc.field, tc.says)
			}
		})
	}
	// What is not the host's stays allowed beside a host namespace.
	if _, _, err := podFromConfig(sandboxConfigWith(hostNet, map[string]string{"kernel.shm_rmid_forced": "1"})); err != nil {
		t.Errorf("an IPC sysctl on the host network: %v", err)
	}
	if _, _, err := podFromConfig(sandboxConfigWith(hostIPC, map[string]string{"net.core.somaxconn": "1"})); err != nil {
		t.Errorf("a net sysctl on host IPC: %v", err)
	}
}

// TestBidirectionalMount: a bidirectional mount of a host path on a mount
// that is not shared is refused naming the field (as containerd refuses
// it); on a shared one it binds rshared and makes the container's rootfs
// propagation shared.
func TestBidirectionalMount(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("failed to unmount %s: %v", dir, err)
		}
	})
	if err := unix.Mount("", dir, "", unix.MS_PRIVATE, ""); err != nil {
		t.Fatal(err)
	}
	host := filepath.Join(dir, "vol")
	cfg := baseConfig()
	cfg.Mounts = []*runtimeapi.Mount{{ContainerPath: "/vol", HostPath: host, Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL}}
	sbCfg := &runtimeapi.PodSandboxConfig{LogDirectory: "/var/log/pods/x"}
	err := applyConfig(builtSpec(), cfg, sbCfg, "/pods", "uid")
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "config.mounts[0].propagation") || !strings.Contains(err.Error(), "not a shared mount") {
		t.Errorf("a bidirectional mount on a private mount: %v, want InvalidArgument naming config.mounts[0].propagation", err)
	}
	if err := unix.Mount("", dir, "", unix.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	sc := builtSpec()
	if err := applyConfig(sc, cfg, sbCfg, "/pods", "uid"); err != nil {
		t.Fatalf("a bidirectional mount on a shared mount: %v", err)
	}
	if got := fmt.Sprint(sc.OCI.Mounts[len(sc.OCI.Mounts)-1].Options); got != "[rbind rshared]" || sc.OCI.Linux.RootfsPropagation != "rshared" {
		t.Errorf("mount options %s, rootfs propagation %q; want [rbind rshared] and rshared", got, sc.OCI.Linux.RootfsPropagation)
	}
}
