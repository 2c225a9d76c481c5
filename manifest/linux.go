package manifest

import (
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"

	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/spec"
)

// maskedPaths hide kernel information and controls (runc's list plus
// moby/containerd's powercap and interrupts).
var maskedPaths = []string{
	"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
	"/proc/scsi", "/sys/devices/virtual/powercap", "/proc/interrupts",
}

// readonlyPaths stay visible but cannot be written (sysctls, sysrq).
var readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}

// defaultDevices are the nodes every container's /dev gets.
var defaultDevices = []specs.LinuxDevice{
	charDevice("/dev/null", 1, 3), charDevice("/dev/zero", 1, 5), charDevice("/dev/full", 1, 7),
	charDevice("/dev/random", 1, 8), charDevice("/dev/urandom", 1, 9), charDevice("/dev/tty", 5, 0),
}

// charDevice builds a 0666 root-owned character device.
func charDevice(path string, major, minor int64) specs.LinuxDevice {
	fm, zero := os.FileMode(0o666), uint32(0)
	return specs.LinuxDevice{Path: path, Type: "c", Major: major, Minor: minor, FileMode: &fm, UID: &zero, GID: &zero}
}

// linux builds the Linux section: namespaces, devices, cgroup, masks.
func (b *builder) linux(c *corev1.Container, id string) (*specs.Linux, error) {
	ns, err := b.namespaces()
	if err != nil {
		return nil, fmt.Errorf("failed to build namespaces of container %q: %w", c.Name, err)
	}
	privileged := isPrivileged(c.SecurityContext)
	l := &specs.Linux{
		Namespaces:  ns,
		Devices:     append([]specs.LinuxDevice(nil), defaultDevices...),
		CgroupsPath: b.in.CgroupParent + "/" + id,
		Resources:   linuxResources(c.Resources),
	}
	l.Resources.Devices = deviceRules(privileged)
	if !privileged {
		l.MaskedPaths = append([]string(nil), maskedPaths...)
		l.ReadonlyPaths = append([]string(nil), readonlyPaths...)
		return l, nil
	}
	// Privileged, as runc and containerd's CRI make it: every host device
	// (listed now, at creation, like theirs: one plugged in later does not
	// appear), all allowed by the device cgroup, nothing masked.
	host, err := hostDevices()
	if err != nil {
		return nil, fmt.Errorf("failed to list host devices for privileged container %q: %w", c.Name, err)
	}
	l.Devices = withDevices(l.Devices, host)
	return l, nil
}

// deviceRules is the device cgroup policy: deny all, then allow the default
// nodes plus /dev/ptmx and the pty slaves. Without the deny, CAP_MKNOD
// (a default capability) would let a container mknod the host's disk and
// read it. A privileged container may use every device.
func deviceRules(privileged bool) []specs.LinuxDeviceCgroup {
	if privileged {
		return []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	}
	rules := []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	allow := func(major, minor int64) {
		rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &major, Minor: &minor, Access: "rwm"})
	}
	for _, d := range defaultDevices {
		allow(d.Major, d.Minor)
	}
	allow(5, 2) // /dev/ptmx
	ptsMajor := int64(136)
	rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &ptsMajor, Access: "rwm"})
	return rules
}

// namespaces lists what a container gets: its own mount namespace, the
// pod's net/uts/ipc (host net/uts for hostNetwork, the host's ipc for
// hostIPC), and the pod's PID namespace, one of its own, or the host's
// (hostPID). A namespace left out is the host's: the supervisor, which
// starts the container, runs in the host's.
func (b *builder) namespaces() ([]specs.LinuxNamespace, error) {
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	switch {
	case b.pod.Spec.HostPID:
		// Validation refuses hostPID with shareProcessNamespace.
	case b.shared:
		path := b.in.Namespaces[spec.NSPID]
		if path == "" {
			return nil, fmt.Errorf("pod shares its PID namespace but no pinned %s namespace was given", spec.NSPID)
		}
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace, Path: path})
	default:
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace})
	}
	for _, want := range []struct {
		key    string
		typ    specs.LinuxNamespaceType
		hostOK bool
	}{
		{spec.NSNet, specs.NetworkNamespace, b.pod.Spec.HostNetwork},
		{spec.NSUTS, specs.UTSNamespace, b.pod.Spec.HostNetwork},
		{spec.NSIPC, specs.IPCNamespace, b.pod.Spec.HostIPC},
	} {
		path := b.in.Namespaces[want.key]
		switch {
		case path != "":
			ns = append(ns, specs.LinuxNamespace{Type: want.typ, Path: path})
		case !want.hostOK:
			return nil, fmt.Errorf("no pinned %s namespace was given", want.key)
		}
		// Omitted: the container stays in the host's namespace.
	}
	return ns, nil
}

// HostShm is the host's POSIX shared memory, a hostIPC pod's /dev/shm.
const HostShm = "/dev/shm"

// shmSource is what the container's /dev/shm binds: the pod's tmpfs, or
// for hostIPC the host's /dev/shm, as the kubelet and containerd give a
// pod on the host's IPC namespace (POSIX and SysV shared memory then both
// are the host's).
func (b *builder) shmSource() string {
	if b.pod.Spec.HostIPC {
		return HostShm
	}
	return layout.Run(b.in.RunDir).Shm()
}

// mounts lists the container's mounts in the order the init stage performs
// them.
func (b *builder) mounts(c *corev1.Container) []specs.Mount {
	etcOpts := []string{"bind", "nosuid", "nodev", "noexec"}
	if sc := c.SecurityContext; sc != nil && sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem {
		etcOpts = append(etcOpts, "ro")
	}
	run := b.in.RunDir
	m := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		// One /dev/shm for the whole pod: POSIX shared memory between its
		// containers works as it does in Kubernetes.
		{Destination: "/dev/shm", Type: "bind", Source: b.shmSource(), Options: []string{"bind", "nosuid", "nodev", "noexec"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		// A host-network pod gets a read-only sysfs too: it cannot mount
		// one of its own netns, but the host's must not be writable.
		// Only a privileged container's is writable (containerd's
		// WithWriteableSysfs), as it holds every capability anyway.
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sysfsOptions(isPrivileged(c.SecurityContext))},
	}
	for _, f := range []string{"hostname", "hosts", "resolv.conf"} {
		m = append(m, specs.Mount{Destination: "/etc/" + f, Type: "bind", Source: layout.Run(run).EtcFile(f), Options: etcOpts})
	}
	for _, vm := range c.VolumeMounts {
		opts := []string{"rbind", "rprivate"}
		// The kubelet mounts configMap, secret, downwardAPI and projected
		// volumes read-only whatever the mount says.
		if vm.ReadOnly || b.isProjection(vm.Name) {
			opts = append(opts, "ro")
		}
		if recursiveReadOnly(vm, RecursiveReadOnlySupported()) {
			opts = append(opts, spec.RecursiveReadOnlyOption)
		}
		if vm.SubPath != "" {
			opts = append(opts, spec.SubPathOption+filepath.Clean(vm.SubPath))
		}
		dest := filepath.Clean(vm.MountPath)
		m = append(m, specs.Mount{Destination: dest, Type: "bind", Source: b.volumeDir(vm.Name), Options: opts})
	}
	return m
}

// sysfsOptions are /sys's mount options: read-only unless privileged.
func sysfsOptions(privileged bool) []string {
	if privileged {
		return []string{"nosuid", "noexec", "nodev", "rw"}
	}
	return []string{"nosuid", "noexec", "nodev", "ro"}
}

// volumeDir is where a volume lives on the host: an emptyDir under the pod
// directory (medium Memory: under the volatile run dir, where the pod
// manager mounts a tmpfs), a hostPath at its path.
func (b *builder) volumeDir(name string) string {
	for _, v := range b.pod.Spec.Volumes {
		if v.Name != name {
			continue
		}
		if v.HostPath != nil {
			return filepath.Clean(v.HostPath.Path)
		}
		if v.EmptyDir != nil && v.EmptyDir.Medium == corev1.StorageMediumMemory || isProjection(&v) {
			return layout.Run(b.in.RunDir).Volume(name)
		}
		return layout.Pod(b.in.PodDir).Volume(name)
	}
	return ""
}

// isProjection reports whether the named volume is a configMap, secret,
// downwardAPI or projected volume.
func (b *builder) isProjection(name string) bool {
	for i := range b.pod.Spec.Volumes {
		if v := &b.pod.Spec.Volumes[i]; v.Name == name {
			return isProjection(v)
		}
	}
	return false
}
