package manifest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/ptr"

	"github.com/peapod/peapod/runtime/spec"
)

// fakeImages is an in-memory ImageResolver.
type fakeImages map[string]*ResolvedImage

// errNoImage is what fakeImages returns for an unknown reference.
var errNoImage = errors.New("image not found")

func (f fakeImages) Resolve(ref string) (*ResolvedImage, error) {
	if img, ok := f[ref]; ok {
		return img, nil
	}
	return nil, fmt.Errorf("%q: %w", ref, errNoImage)
}

var testImages = fakeImages{
	"busybox:1.36": {ID: "sha256:aaa", Layers: []string{"/l/bottom", "/l/top"}, Config: ImageConfig{
		Entrypoint: []string{"/entry"}, Cmd: []string{"default-cmd"}, Env: []string{"PATH=/bin", "LANG=C"},
		WorkingDir: "/img", StopSignal: "SIGQUIT",
	}},
	"named-user": {ID: "sha256:bbb", Layers: []string{"/l/one"}, Config: ImageConfig{Cmd: []string{"run"}, User: "www-data:www"}},
	"numeric":    {ID: "sha256:ccc", Layers: []string{"/l/one"}, Config: ImageConfig{Cmd: []string{"run"}, User: "1000:2000"}},
	"no-cmd":     {ID: "sha256:ddd", Layers: []string{"/l/one"}},
}

func testInput() SpecInput {
	return SpecInput{
		UID: "0123abcd-4567-89ef-0123-456789abcdef", RunDir: "/run/peapod/pods/u", PodDir: "/var/lib/peapod/pods/u",
		Namespaces: map[string]string{spec.NSNet: "/run/netns/n", spec.NSUTS: "/run/u/ns/uts", spec.NSIPC: "/run/u/ns/ipc", spec.NSPID: "/run/u/ns/pid"},
		IP:         "10.88.0.5", Images: testImages, CgroupParent: "/peapod", CgroupDriver: "v1",
		BackoffInitialSeconds: 10, BackoffMaxSeconds: 300,
	}
}

// toSpecOne converts a one-container pod built by mutate and returns the container.
func toSpecOne(t *testing.T, mutate func(p *corev1.Pod)) *spec.Container {
	t.Helper()
	pod := &corev1.Pod{}
	pod.Name, pod.Namespace = "web", "prod"
	pod.Spec.Containers = []corev1.Container{{Name: "app", Image: "busybox:1.36"}}
	mutate(pod)
	SetDefaults(pod)
	if _, errs := Validate(pod); len(errs) > 0 {
		t.Fatalf("test pod is invalid: %v", errs)
	}
	out, _, err := ToSpec(pod, testInput())
	if err != nil {
		t.Fatalf("ToSpec() error = %v", err)
	}
	return &out.Containers[0]
}

func TestToSpecCommandArgs(t *testing.T) {
	tests := []struct {
		name          string
		command, args []string
		env           []corev1.EnvVar
		want          []string
	}{
		{"image defaults", nil, nil, nil, []string{"/entry", "default-cmd"}},
		{"args replace cmd", nil, []string{"a", "b"}, nil, []string{"/entry", "a", "b"}},
		{"command drops entrypoint and cmd", []string{"sh"}, nil, nil, []string{"sh"}},
		{"command and args", []string{"sh", "-c"}, []string{"echo hi"}, nil, []string{"sh", "-c", "echo hi"}},
		{"expansion", []string{"echo", "$(A)", "$$(A)", "$(MISSING)", "$(A", "$$", "x$"}, []string{"$(B)"},
			[]corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "$(A)-2"}},
			[]string{"echo", "1", "$(A)", "$(MISSING)", "$(A", "$", "x$", "1-2"}},
		{"downward API in args", nil, []string{"$(POD)"},
			[]corev1.EnvVar{{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
			[]string{"/entry", "web"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := toSpecOne(t, func(p *corev1.Pod) {
				c := &p.Spec.Containers[0]
				c.Command, c.Args, c.Env = tt.command, tt.args, tt.env
			})
			if diff := cmp.Diff(tt.want, c.OCI.Process.Args); diff != "" {
				t.Errorf("argv mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestToSpecEnv(t *testing.T) {
	field := func(path string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}
	}
	c := toSpecOne(t, func(p *corev1.Pod) {
		p.Spec.Containers[0].Env = []corev1.EnvVar{
			{Name: "LANG", Value: "en_US.UTF-8"},
			{Name: "NAME", ValueFrom: field("metadata.name")},
			{Name: "NS", ValueFrom: field("metadata.namespace")},
			{Name: "UID", ValueFrom: field("metadata.uid")},
			{Name: "IP", ValueFrom: field("status.podIP")},
			{Name: "URL", Value: "http://$(IP):80"},
		}
	})
	want := []string{"HOSTNAME=web", "PATH=/bin", "LANG=en_US.UTF-8", "NAME=web", "NS=prod",
		"UID=0123abcd-4567-89ef-0123-456789abcdef", "IP=10.88.0.5", "URL=http://10.88.0.5:80"}
	if diff := cmp.Diff(want, c.OCI.Process.Env); diff != "" {
		t.Errorf("env mismatch (-want +got):\n%s", diff)
	}
	if c.OCI.Process.Cwd != "/img" {
		t.Errorf("cwd = %q, want the image's /img", c.OCI.Process.Cwd)
	}
	noPath := toSpecOne(t, func(p *corev1.Pod) {
		p.Spec.Containers[0].Image = "no-cmd"
		p.Spec.Containers[0].Command = []string{"x"}
		p.Spec.Containers[0].WorkingDir = "/w"
	})
	if got := noPath.OCI.Process.Env; !slices.Contains(got, "PATH="+defaultPath) || noPath.OCI.Process.Cwd != "/w" {
		t.Errorf("env %q cwd %q: want the default PATH and /w", got, noPath.OCI.Process.Cwd)
	}
}

func TestToSpecUser(t *testing.T) {
	tests := []struct {
		name   string
		image  string
		podSC  *corev1.PodSecurityContext
		sc     *corev1.SecurityContext
		want   specs.User
		errors string
	}{
		{"image root", "busybox:1.36", nil, nil, specs.User{}, ""},
		{"numeric image user", "numeric", nil, nil, specs.User{UID: 1000, GID: 2000}, ""},
		{"named image user", "named-user", nil, nil, specs.User{Username: "www-data:www"}, ""},
		{"pod ids and groups", "numeric", &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](5), RunAsGroup: ptr.To[int64](6), SupplementalGroups: []int64{7, 8}},
			nil, specs.User{UID: 5, GID: 6, AdditionalGids: []uint32{7, 8}}, ""},
		{"container overrides pod", "busybox:1.36", &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](5), RunAsGroup: ptr.To[int64](6)},
			&corev1.SecurityContext{RunAsUser: ptr.To[int64](9)}, specs.User{UID: 9, GID: 6}, ""},
		{"runAsNonRoot with a root image", "busybox:1.36", nil, &corev1.SecurityContext{RunAsNonRoot: ptr.To(true)}, specs.User{},
			`container "app": CreateContainerConfigError: container has runAsNonRoot and image will run as root (pod: "web_prod(u1)", container: app): container config error`},
		{"runAsNonRoot with a named user", "named-user", &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}, nil, specs.User{},
			`container "app": CreateContainerConfigError: container has runAsNonRoot and image has non-numeric user (www-data:www), cannot verify user is non-root (pod: "web_prod(u1)", container: app): container config error`},
		{"runAsNonRoot with a numeric user", "numeric", &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}, nil, specs.User{UID: 1000, GID: 2000}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &corev1.Container{Name: "app", Image: tt.image, SecurityContext: tt.sc}
			got, err := processUser("web", "prod", "u1", tt.podSC, c, testImages[tt.image].Config)
			if tt.errors != "" {
				if !errors.Is(err, ErrContainerConfig) || err.Error() != tt.errors {
					t.Fatalf("processUser() error = %v\nwant ErrContainerConfig: %s", err, tt.errors)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("user mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestToSpecIdentity is what the init stage completes the user with: the
// gid from /etc/passwd unless runAsGroup or the image's user (when
// runAsUser does not replace it) names one, and the pod's supplemental
// groups policy, Merge by default.
func TestToSpecIdentity(t *testing.T) {
	strict := ptr.To(corev1.SupplementalGroupsPolicyStrict)
	tests := []struct {
		name  string
		image string
		podSC *corev1.PodSecurityContext
		sc    *corev1.SecurityContext
		want  spec.Identity
	}{
		{"image root", "busybox:1.36", nil, nil, spec.Identity{GIDFromPasswd: true, SupplementalGroupsPolicy: spec.GroupsMerge}},
		{"image uid:gid", "numeric", nil, nil, spec.Identity{SupplementalGroupsPolicy: spec.GroupsMerge}},
		{"image name:group", "named-user", nil, nil, spec.Identity{SupplementalGroupsPolicy: spec.GroupsMerge}},
		{"runAsUser replaces the image's group", "numeric", nil, &corev1.SecurityContext{RunAsUser: ptr.To[int64](5)},
			spec.Identity{GIDFromPasswd: true, SupplementalGroupsPolicy: spec.GroupsMerge}},
		{"runAsGroup", "busybox:1.36", &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](5), RunAsGroup: ptr.To[int64](0)}, nil,
			spec.Identity{SupplementalGroupsPolicy: spec.GroupsMerge}},
		{"explicit merge", "busybox:1.36", &corev1.PodSecurityContext{SupplementalGroupsPolicy: ptr.To(corev1.SupplementalGroupsPolicyMerge)}, nil,
			spec.Identity{GIDFromPasswd: true, SupplementalGroupsPolicy: spec.GroupsMerge}},
		{"strict", "busybox:1.36", &corev1.PodSecurityContext{SupplementalGroupsPolicy: strict}, &corev1.SecurityContext{RunAsUser: ptr.To[int64](1000)},
			spec.Identity{GIDFromPasswd: true, SupplementalGroupsPolicy: spec.GroupsStrict}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := toSpecOne(t, func(p *corev1.Pod) {
				p.Spec.SecurityContext = tt.podSC
				p.Spec.Containers[0].Image = tt.image
				p.Spec.Containers[0].SecurityContext = tt.sc
			}).Identity
			if got != tt.want {
				t.Errorf("identity = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestToSpecCapabilities(t *testing.T) {
	tests := []struct {
		name string
		sc   *corev1.SecurityContext
		want []string
		nnp  bool
		mask bool
	}{
		{"defaults", nil, orderCaps(setOf(defaultCapabilities...)), false, true},
		{"add and drop", &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}, Drop: []corev1.Capability{"cap_chown", "MKNOD"}}},
			orderCaps(setOf(append(without(defaultCapabilities, "CAP_CHOWN", "CAP_MKNOD"), "CAP_NET_ADMIN")...)), false, true},
		{"drop ALL add one", &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_BIND_SERVICE"}, Drop: []corev1.Capability{"ALL"}}},
			[]string{"CAP_NET_BIND_SERVICE"}, false, true},
		{"add ALL drop one", &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"ALL"}, Drop: []corev1.Capability{"SYS_ADMIN"}}},
			without(allCapabilities, "CAP_SYS_ADMIN"), false, true},
		{"no escalation", &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false)}, orderCaps(setOf(defaultCapabilities...)), true, true},
		{"privileged", &corev1.SecurityContext{Privileged: ptr.To(true)}, allCapabilities, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := toSpecOne(t, func(p *corev1.Pod) { p.Spec.Containers[0].SecurityContext = tt.sc })
			caps := c.OCI.Process.Capabilities
			for set, got := range map[string][]string{"bounding": caps.Bounding, "permitted": caps.Permitted, "effective": caps.Effective} {
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("%s mismatch (-want +got):\n%s", set, diff)
				}
			}
			if len(caps.Inheritable) != 0 || len(caps.Ambient) != 0 {
				t.Errorf("inheritable %v ambient %v, want both empty", caps.Inheritable, caps.Ambient)
			}
			if c.OCI.Process.NoNewPrivileges != tt.nnp {
				t.Errorf("NoNewPrivileges = %v, want %v", c.OCI.Process.NoNewPrivileges, tt.nnp)
			}
			if masked := len(c.OCI.Linux.MaskedPaths) > 0 && len(c.OCI.Linux.ReadonlyPaths) > 0; masked != tt.mask {
				t.Errorf("masked/readonly paths present = %v, want %v", masked, tt.mask)
			}
		})
	}
}

func TestToSpecMounts(t *testing.T) {
	c := toSpecOne(t, func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{
			{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "mem", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
			{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv/www/"}}},
		}
		p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{
			{Name: "data", MountPath: "/data"},
			{Name: "mem", MountPath: "/cache", ReadOnly: true},
			{Name: "host", MountPath: "/www/", SubPath: "site/./html"},
		}
		p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{ReadOnlyRootFilesystem: ptr.To(true)}
	})
	etc := []string{"bind", "nosuid", "nodev", "noexec", "ro"}
	want := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "bind", Source: "/run/peapod/pods/u/shm", Options: []string{"bind", "nosuid", "nodev", "noexec"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/etc/hostname", Type: "bind", Source: "/run/peapod/pods/u/etc/hostname", Options: etc},
		{Destination: "/etc/hosts", Type: "bind", Source: "/run/peapod/pods/u/etc/hosts", Options: etc},
		{Destination: "/etc/resolv.conf", Type: "bind", Source: "/run/peapod/pods/u/etc/resolv.conf", Options: etc},
		{Destination: "/data", Type: "bind", Source: "/var/lib/peapod/pods/u/volumes/data", Options: []string{"rbind", "rprivate"}},
		{Destination: "/cache", Type: "bind", Source: "/run/peapod/pods/u/volumes/mem", Options: []string{"rbind", "rprivate", "ro"}},
		{Destination: "/www", Type: "bind", Source: "/srv/www", Options: []string{"rbind", "rprivate", spec.SubPathOption + "site/html"}},
	}
	if diff := cmp.Diff(want, c.OCI.Mounts); diff != "" {
		t.Errorf("mounts mismatch (-want +got):\n%s", diff)
	}
	if !c.OCI.Root.Readonly || c.OCI.Root.Path != "/run/peapod/pods/u/rootfs/app" {
		t.Errorf("root = %+v, want read-only at the run dir's rootfs/app", c.OCI.Root)
	}
}

func TestToSpecPod(t *testing.T) {
	pod := &corev1.Pod{}
	pod.Name = "web"
	pod.Spec.ShareProcessNamespace = ptr.To(true)
	pod.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "numeric"}}
	pod.Spec.Containers = []corev1.Container{{Name: "app", Image: "busybox:1.36",
		Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 80}},
		Lifecycle:      &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"stop", "now"}}}},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"check", "$(A)", "$(F)"}}}},
		Env:            []corev1.EnvVar{{Name: "A", Value: "x"}, {Name: "F", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
	}}
	SetDefaults(pod)
	in := testInput()
	out, _, err := ToSpec(pod, in)
	if err != nil {
		t.Fatal(err)
	}
	if out.Version != spec.Version || out.Name != "web" || out.Namespace != "default" || out.Hostname != "web" ||
		!out.ShareProcessNamespace || out.RestartPolicy != "Always" || out.TerminationGracePeriodSeconds != 30 ||
		out.IP != in.IP || out.RunDir != in.RunDir || out.CgroupDriver != "v1" || out.BackoffMaxSeconds != 300 {
		t.Errorf("pod fields = %+v", out)
	}
	if len(out.InitContainers) != 1 || len(out.Containers) != 1 {
		t.Fatalf("got %d init and %d app containers, want 1 and 1", len(out.InitContainers), len(out.Containers))
	}
	c := out.Containers[0]
	wantNS := []specs.LinuxNamespace{
		{Type: specs.MountNamespace}, {Type: specs.PIDNamespace, Path: "/run/u/ns/pid"},
		{Type: specs.NetworkNamespace, Path: "/run/netns/n"}, {Type: specs.UTSNamespace, Path: "/run/u/ns/uts"},
		{Type: specs.IPCNamespace, Path: "/run/u/ns/ipc"},
	}
	if diff := cmp.Diff(wantNS, c.OCI.Linux.Namespaces); diff != "" {
		t.Errorf("namespaces mismatch (-want +got):\n%s", diff)
	}
	checks := map[string][2]any{
		"id":         {c.ID, "0123abcd4567-app"},
		"cgroup":     {c.Cgroup, "/peapod/0123abcd4567-app"},
		"oci cgroup": {c.OCI.Linux.CgroupsPath, "/peapod/0123abcd4567-app"},
		"log":        {c.LogPath, "/var/lib/peapod/pods/u/logs/app/0.log"},
		"image id":   {c.ImageID, "sha256:aaa"},
		"stop":       {c.StopSignal, 3},
		"upper":      {c.Rootfs.Upper, "/var/lib/peapod/pods/u/containers/app/upper"},
		"lowers":     {fmt.Sprint(c.Rootfs.Lowers), "[/l/top /l/bottom]"},
		"preStop":    {fmt.Sprint(c.PreStop), "[stop now]"},
		"ports":      {fmt.Sprint(c.Ports), "[{http 80 TCP}]"},
		// Exec probes expand static env only, as the kubelet does.
		"probe":   {fmt.Sprint(c.ReadinessProbe.Exec, c.ReadinessProbe.PeriodSeconds), "[check x $(F)] 10"},
		"devices": {len(c.OCI.Linux.Devices), 6},
	}
	for name, v := range checks {
		if v[0] != v[1] {
			t.Errorf("%s = %v, want %v", name, v[0], v[1])
		}
	}
}

func TestToSpecOwnPIDAndHostNetwork(t *testing.T) {
	pod := &corev1.Pod{}
	pod.Name = "h"
	pod.Spec.HostNetwork = true
	pod.Spec.Containers = []corev1.Container{{Name: "app", Image: "busybox:1.36"}}
	SetDefaults(pod)
	in := testInput()
	in.Namespaces = map[string]string{spec.NSIPC: "/run/u/ns/ipc"}
	out, _, err := ToSpec(pod, in)
	if err != nil {
		t.Fatal(err)
	}
	want := []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.PIDNamespace}, {Type: specs.IPCNamespace, Path: "/run/u/ns/ipc"}}
	if diff := cmp.Diff(want, out.Containers[0].OCI.Linux.Namespaces); diff != "" {
		t.Errorf("namespaces mismatch (-want +got):\n%s", diff)
	}
}

// TestToSpecHostPIDAndHostIPC: a namespace the pod shares with the host is
// left out of the container's list (the supervisor's, the host's, is
// inherited); a host-IPC pod's /dev/shm is the host's, and a pod without
// host IPC that is given no IPC pin is refused.
func TestToSpecHostPIDAndHostIPC(t *testing.T) {
	all := map[string]string{spec.NSNet: "/run/netns/n", spec.NSUTS: "/run/u/ns/uts", spec.NSIPC: "/run/u/ns/ipc"}
	noIPC := map[string]string{spec.NSNet: "/run/netns/n", spec.NSUTS: "/run/u/ns/uts"}
	mnt, pid := specs.LinuxNamespace{Type: specs.MountNamespace}, specs.LinuxNamespace{Type: specs.PIDNamespace}
	net := specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/run/netns/n"}
	uts := specs.LinuxNamespace{Type: specs.UTSNamespace, Path: "/run/u/ns/uts"}
	ipc := specs.LinuxNamespace{Type: specs.IPCNamespace, Path: "/run/u/ns/ipc"}
	for _, tt := range []struct {
		name             string
		hostPID, hostIPC bool
		hostNet          bool
		ns               map[string]string
		want             []specs.LinuxNamespace
		shm              string
	}{
		{"hostPID", true, false, false, all, []specs.LinuxNamespace{mnt, net, uts, ipc}, "/run/peapod/pods/u/shm"},
		{"hostIPC", false, true, false, noIPC, []specs.LinuxNamespace{mnt, pid, net, uts}, "/dev/shm"},
		{"both", true, true, false, noIPC, []specs.LinuxNamespace{mnt, net, uts}, "/dev/shm"},
		{"all the host's", true, true, true, map[string]string{}, []specs.LinuxNamespace{mnt}, "/dev/shm"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{}
			pod.Name = "h"
			pod.Spec.HostPID, pod.Spec.HostIPC, pod.Spec.HostNetwork = tt.hostPID, tt.hostIPC, tt.hostNet
			pod.Spec.Containers = []corev1.Container{{Name: "app", Image: "busybox:1.36"}}
			SetDefaults(pod)
			in := testInput()
			in.Namespaces = tt.ns
			out, _, err := ToSpec(pod, in)
			if err != nil {
				t.Fatal(err)
			}
			c := out.Containers[0]
			if diff := cmp.Diff(tt.want, c.OCI.Linux.Namespaces); diff != "" {
				t.Errorf("namespaces mismatch (-want +got):\n%s", diff)
			}
			var shm string
			for _, m := range c.OCI.Mounts {
				if m.Destination == "/dev/shm" {
					shm = m.Source
				}
			}
			if shm != tt.shm {
				t.Errorf("/dev/shm binds %q, want %q", shm, tt.shm)
			}
		})
	}
	pod := &corev1.Pod{}
	pod.Name = "h"
	pod.Spec.Containers = []corev1.Container{{Name: "app", Image: "busybox:1.36"}}
	SetDefaults(pod)
	in := testInput()
	in.Namespaces = noIPC
	if _, _, err := ToSpec(pod, in); err == nil || !strings.Contains(err.Error(), "no pinned ipc namespace") {
		t.Errorf("ToSpec of a pod without host IPC and without an IPC pin = %v, want an error", err)
	}
}

func TestToSpecErrors(t *testing.T) {
	tests := []struct {
		name  string
		image string
		want  error
	}{
		{"missing image", "nope", errNoImage},
		{"no command", "no-cmd", ErrContainerConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{}
			pod.Name = "p"
			pod.Spec.Containers = []corev1.Container{{Name: "app", Image: tt.image}}
			SetDefaults(pod)
			if _, _, err := ToSpec(pod, testInput()); !errors.Is(err, tt.want) {
				t.Errorf("ToSpec() error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]int{"": 0, "SIGTERM": 15, "term": 15, "9": 9, "SIGRTMIN+3": -1, "bogus": -1} {
		got, err := parseSignal(in)
		if want < 0 {
			if !errors.Is(err, ErrContainerConfig) {
				t.Errorf("parseSignal(%q) = %d, %v; want an error", in, got, err)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("parseSignal(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

// setOf builds a capability set.
func setOf(caps ...string) sets.Set[string] { return sets.New(caps...) }

// without returns list minus drop, order kept.
func without(list []string, drop ...string) []string {
	var out []string
	for _, c := range list {
		if !slices.Contains(drop, c) {
			out = append(out, c)
		}
	}
	return out
}
