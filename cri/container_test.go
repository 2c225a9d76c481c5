package cri

import (
	"fmt"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/peapod/peapod/runtime/spec"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// baseConfig is a valid container config.
func baseConfig() *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "app"},
		Image:    &runtimeapi.ImageSpec{Image: "busybox"},
	}
}

// builtSpec is what the builder gives applyConfig to finish.
func builtSpec() *spec.Container {
	return &spec.Container{OCI: specs.Spec{
		Process: &specs.Process{},
		Linux:   &specs.Linux{MaskedPaths: []string{"/proc/kcore"}, ReadonlyPaths: []string{"/proc/sys"}},
	}}
}

// TestContainerConfigRefused: what peapod cannot honour is refused with
// InvalidArgument naming the field, before anything is made.
func TestContainerConfigRefused(t *testing.T) {
	sbCfg := &runtimeapi.PodSandboxConfig{LogDirectory: "/var/log/pods/x"}
	for _, tc := range []struct {
		name, field string
		mod         func(*runtimeapi.ContainerConfig)
	}{
		{"devices unprivileged", "config.devices", func(c *runtimeapi.ContainerConfig) {
			c.Devices = []*runtimeapi.Device{{HostPath: "/dev/sda", ContainerPath: "/dev/sda", Permissions: "rwm"}}
		}},
		{"env name with =", "config.envs[0].key", func(c *runtimeapi.ContainerConfig) {
			c.Envs = []*runtimeapi.KeyValue{{Key: "A=B", Value: []byte("x")}}
		}},
		{"selinux", "config.linux.security_context.selinux_options", func(c *runtimeapi.ContainerConfig) {
			c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				SelinuxOptions: &runtimeapi.SELinuxOption{Type: "spc_t"}}}
		}},
		{"pid target", "namespace_options.pid", func(c *runtimeapi.ContainerConfig) {
			c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_TARGET, Ipc: runtimeapi.NamespaceMode_POD}}}
		}},
		{"host network in a pod-network sandbox", "namespace_options.network", func(c *runtimeapi.ContainerConfig) {
			c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}}}
		}},
		{"ambient capabilities", "add_ambient_capabilities", func(c *runtimeapi.ContainerConfig) {
			c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				Capabilities: &runtimeapi.Capability{AddAmbientCapabilities: []string{"NET_ADMIN"}}}}
		}},
		{"group without user", "run_as_group", func(c *runtimeapi.ContainerConfig) {
			c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				RunAsGroup: &runtimeapi.Int64Value{Value: 5}}}
		}},
		{"unknown supplemental groups policy", "config.linux.security_context.supplemental_groups_policy", func(c *runtimeapi.ContainerConfig) {
			c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				SupplementalGroupsPolicy: runtimeapi.SupplementalGroupsPolicy(7)}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig()
			tc.mod(cfg)
			_, err := containerFromConfig(cfg, sbCfg, &corev1.Pod{}, strings.Repeat("a", 64))
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("got %v, want InvalidArgument naming %s", err, tc.field)
			}
		})
	}
}

// TestContainerConfigTerminal: tty, stdin and stdin_once reach the
// container the builder makes the spec of (the supervisor then holds the
// pty or the stdin pipe for Attach).
// TestContainerConfigGroupsPolicy: the CRI's supplemental groups and their
// policy reach the pod's security context, whose builder turns them into
// the init stage's (manifest's TestToSpecIdentity); Merge is the default.
func TestContainerConfigGroupsPolicy(t *testing.T) {
	sbCfg := &runtimeapi.PodSandboxConfig{LogDirectory: "/var/log/pods/x"}
	for _, tc := range []struct {
		name   string
		sc     *runtimeapi.LinuxContainerSecurityContext
		groups []int64
		want   corev1.SupplementalGroupsPolicy
	}{
		{"no security context", nil, nil, ""},
		{"default", &runtimeapi.LinuxContainerSecurityContext{SupplementalGroups: []int64{1234}}, []int64{1234}, corev1.SupplementalGroupsPolicyMerge},
		{"merge", &runtimeapi.LinuxContainerSecurityContext{SupplementalGroupsPolicy: runtimeapi.SupplementalGroupsPolicy_Merge}, nil, corev1.SupplementalGroupsPolicyMerge},
		{"strict", &runtimeapi.LinuxContainerSecurityContext{SupplementalGroups: []int64{1234, 5678}, SupplementalGroupsPolicy: runtimeapi.SupplementalGroupsPolicy_Strict},
			[]int64{1234, 5678}, corev1.SupplementalGroupsPolicyStrict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig()
			if tc.sc != nil {
				cfg.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: tc.sc}
			}
			p := &corev1.Pod{}
			if _, err := containerFromConfig(cfg, sbCfg, p, strings.Repeat("a", 64)); err != nil {
				t.Fatal(err)
			}
			var got corev1.SupplementalGroupsPolicy
			var groups []int64
			if sc := p.Spec.SecurityContext; sc != nil {
				groups = sc.SupplementalGroups
				if sc.SupplementalGroupsPolicy != nil {
					got = *sc.SupplementalGroupsPolicy
				}
			}
			if got != tc.want || fmt.Sprint(groups) != fmt.Sprint(tc.groups) {
				t.Errorf("pod security context: policy %q groups %v, want %q %v", got, groups, tc.want, tc.groups)
			}
		})
	}
}

func TestContainerConfigTerminal(t *testing.T) {
	sbCfg := &runtimeapi.PodSandboxConfig{LogDirectory: "/var/log/pods/x"}
	for _, tc := range []struct {
		tty, stdin, once bool
	}{
		{false, false, false}, {true, false, false}, {false, true, false}, {false, true, true}, {true, true, true}, {false, false, true},
	} {
		cfg := baseConfig()
		cfg.Tty, cfg.Stdin, cfg.StdinOnce = tc.tty, tc.stdin, tc.once
		c, err := containerFromConfig(cfg, sbCfg, &corev1.Pod{}, strings.Repeat("a", 64))
		if err != nil {
			t.Errorf("tty %v stdin %v stdin_once %v: %v", tc.tty, tc.stdin, tc.once, err)
			continue
		}
		if c.TTY != tc.tty || c.Stdin != tc.stdin || c.StdinOnce != tc.once {
			t.Errorf("tty %v stdin %v stdin_once %v made a container with tty %v stdin %v stdinOnce %v",
				tc.tty, tc.stdin, tc.once, c.TTY, c.Stdin, c.StdinOnce)
		}
	}
}

// TestApplyConfigRefused: mounts, log paths and resources peapod cannot
// honour, or that would escape, are refused naming the field.
func TestApplyConfigRefused(t *testing.T) {
	sbCfg := &runtimeapi.PodSandboxConfig{LogDirectory: "/var/log/pods/x"}
	res := func(r *runtimeapi.LinuxContainerResources) func(*runtimeapi.ContainerConfig) {
		return func(c *runtimeapi.ContainerConfig) { c.Linux = &runtimeapi.LinuxContainerConfig{Resources: r} }
	}
	for _, tc := range []struct {
		name, field string
		sb          *runtimeapi.PodSandboxConfig
		mod         func(*runtimeapi.ContainerConfig)
	}{
		{"relative container path", "config.mounts[0].container_path", sbCfg, func(c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{ContainerPath: "data", HostPath: "/tmp"}}
		}},
		{"relative host path", "config.mounts[0].host_path", sbCfg, func(c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: "tmp"}}
		}},
		{"recursive read-only but writable", "config.mounts[0].recursive_read_only", sbCfg, func(c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: "/tmp", RecursiveReadOnly: true}}
		}},
		{"recursive read-only host-to-container", "config.mounts[0].recursive_read_only", sbCfg, func(c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: "/tmp", Readonly: true, RecursiveReadOnly: true,
				Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER}}
		}},
		{"recursive read-only bidirectional", "config.mounts[0].recursive_read_only", sbCfg, func(c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: "/tmp", Readonly: true, RecursiveReadOnly: true,
				Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL}}
		}},
		{"image volume", "config.mounts[0].image", sbCfg, func(c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", Image: &runtimeapi.ImageSpec{Image: "busybox"}}}
		}},
		{"unknown propagation", "propagation", sbCfg, func(c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: "/tmp", Propagation: 9}}
		}},
		{"log path escaping", "config.log_path", sbCfg, func(c *runtimeapi.ContainerConfig) { c.LogPath = "../../etc/passwd" }},
		{"absolute log path", "config.log_path", sbCfg, func(c *runtimeapi.ContainerConfig) { c.LogPath = "/etc/passwd" }},
		{"log path without a directory", "sandbox_config.log_directory", &runtimeapi.PodSandboxConfig{}, func(c *runtimeapi.ContainerConfig) { c.LogPath = "a.log" }},
		{"cpuset", "cpuset_cpus", sbCfg, res(&runtimeapi.LinuxContainerResources{CpusetCpus: "0"})},
		{"hugepages", "hugepage_limits[0]", sbCfg, res(&runtimeapi.LinuxContainerResources{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 1 << 21}}})},
		{"unified", "unified", sbCfg, res(&runtimeapi.LinuxContainerResources{Unified: map[string]string{"memory.high": "1"}})},
		{"swap", "memory_swap_limit_in_bytes", sbCfg, res(&runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1 << 26, MemorySwapLimitInBytes: 1 << 27})},
		{"negative", "cpu_quota", sbCfg, res(&runtimeapi.LinuxContainerResources{CpuQuota: -1})},
		{"user by name and id", "run_as_username", sbCfg, func(c *runtimeapi.ContainerConfig) {
			c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				RunAsUser: &runtimeapi.Int64Value{Value: 1}, RunAsUsername: "nobody"}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig()
			tc.mod(cfg)
			err := applyConfig(builtSpec(), cfg, tc.sb, "/pods", "uid")
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("got %v, want InvalidArgument naming %s", err, tc.field)
			}
		})
	}
}

// TestApplyConfig: what the kubelet says lands in the spec.
func TestApplyConfig(t *testing.T) {
	cfg := baseConfig()
	cfg.LogPath = "app/0.log"
	cfg.Mounts = []*runtimeapi.Mount{
		{ContainerPath: "/a/", HostPath: "/tmp", Readonly: true},
		{ContainerPath: "/b", HostPath: "/tmp", Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
		{ContainerPath: "/c", HostPath: "/tmp", Readonly: true, RecursiveReadOnly: true},
	}
	cfg.Linux = &runtimeapi.LinuxContainerConfig{
		Resources: &runtimeapi.LinuxContainerResources{CpuShares: 512, CpuQuota: 50000, CpuPeriod: 100000, MemoryLimitInBytes: 1 << 26, MemorySwapLimitInBytes: 1 << 26, OomScoreAdj: -997,
			HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 0}}},
		SecurityContext: &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "nobody", MaskedPaths: []string{"/proc/x"}, ReadonlyPaths: []string{}},
	}
	sc := builtSpec()
	if err := applyConfig(sc, cfg, &runtimeapi.PodSandboxConfig{LogDirectory: "/var/log/pods/x"}, "/pods", "uid"); err != nil {
		t.Fatal(err)
	}
	if sc.LogPath != "/var/log/pods/x/app/0.log" {
		t.Errorf("log path %q", sc.LogPath)
	}
	want := []string{"/a [rbind rprivate ro]", "/b [rbind rslave]", "/c [rbind rprivate ro rro]"}
	if len(sc.OCI.Mounts) != len(want) {
		t.Fatalf("mounts %v, want %v", sc.OCI.Mounts, want)
	}
	for i, m := range sc.OCI.Mounts {
		if got := fmt.Sprintf("%s %v", m.Destination, m.Options); got != want[i] {
			t.Errorf("mount %d = %s, want %s", i, got, want[i])
		}
	}
	r := sc.OCI.Linux.Resources
	if *r.CPU.Shares != 512 || *r.CPU.Quota != 50000 || *r.CPU.Period != 100000 || *r.Memory.Limit != 1<<26 || *sc.OCI.Process.OOMScoreAdj != -997 {
		t.Errorf("resources %+v %+v, oom %d", r.CPU, r.Memory, *sc.OCI.Process.OOMScoreAdj)
	}
	if sc.OCI.Process.User.Username != "nobody" || len(sc.OCI.Linux.MaskedPaths) != 1 || len(sc.OCI.Linux.ReadonlyPaths) != 0 {
		t.Errorf("user %+v masked %v readonly %v", sc.OCI.Process.User, sc.OCI.Linux.MaskedPaths, sc.OCI.Linux.ReadonlyPaths)
	}
}

// TestImageUser: the user ImageStatus reports, as the kubelet reads it.
func TestImageUser(t *testing.T) {
	for _, tc := range []struct {
		in   string
		uid  int64
		name string
	}{{"", -1, ""}, {"0", 0, ""}, {"1000:5", 1000, ""}, {"nobody", -1, "nobody"}, {"app:grp", -1, "app"}} {
		uid, name := imageUser(tc.in)
		got := int64(-1)
		if uid != nil {
			got = uid.Value
		}
		if got != tc.uid || name != tc.name {
			t.Errorf("imageUser(%q) = %d %q, want %d %q", tc.in, got, name, tc.uid, tc.name)
		}
	}
}

// TestEscapeRefs: the kubelet's already expanded text survives the
// builder's $(VAR) expansion.
func TestEscapeRefs(t *testing.T) {
	if got := escapeRefs("a$(B)$$c$"); got != "a$$(B)$$$$c$$" {
		t.Errorf("escapeRefs = %q", got)
	}
}
