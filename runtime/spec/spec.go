// Package spec is the plain, versioned description of a pod that the CLI
// hands to the supervisor. It is deliberately free of Kubernetes types: the
// supervisor and the in-namespace init stage link only this, the OCI
// runtime-spec types and x/sys (see cmd/peapod-supervisor and the
// lean-binary test), so every running pod pays for no heavy package init.
package spec

import (
	"encoding/json"
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Version is written into every spec file; a supervisor refuses a spec whose
// version differs, naming both.
const Version = "peapod.dev/spec/v1"

// Restart policies, as in v1.PodSpec.
const (
	RestartAlways    = "Always"
	RestartOnFailure = "OnFailure"
	RestartNever     = "Never"
)

// Namespace keys used in Pod.Namespaces.
const (
	NSNet = "network"
	NSUTS = "uts"
	NSIPC = "ipc"
	NSPID = "pid"
)

// Pod is everything the supervisor needs to run one pod.
type Pod struct {
	// Version is Version.
	Version string `json:"version"`
	// UID is the pod's generated uid.
	UID string `json:"uid"`
	// Name and Namespace identify the pod.
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// Hostname is set in the pod's UTS namespace.
	Hostname string `json:"hostname"`
	// HostNetwork pods share the host's network and UTS namespaces.
	HostNetwork bool `json:"hostNetwork,omitempty"`
	// ShareProcessNamespace starts a reaper as PID 1 of one pod-wide PID namespace.
	ShareProcessNamespace bool `json:"shareProcessNamespace,omitempty"`
	// RestartPolicy is Always, OnFailure or Never.
	RestartPolicy string `json:"restartPolicy"`
	// TerminationGracePeriodSeconds is the pod's grace period for stop.
	TerminationGracePeriodSeconds int64 `json:"terminationGracePeriodSeconds"`
	// Namespaces maps NSNet/NSUTS/NSIPC (and NSPID when shared) to the
	// pinned namespace file the containers join. Empty for host namespaces.
	Namespaces map[string]string `json:"namespaces,omitempty"`
	// IP is the pod's address ("" before the network exists).
	IP string `json:"ip,omitempty"`
	// RunDir is the pod's volatile directory (socket, status, rootfs mount points).
	RunDir string `json:"runDir"`
	// BackoffInitialSeconds and BackoffMaxSeconds tune crash-loop backoff
	// (kubelet defaults 10 and 300).
	BackoffInitialSeconds float64 `json:"backoffInitialSeconds"`
	BackoffMaxSeconds     float64 `json:"backoffMaxSeconds"`
	// CgroupDriver is "v1" or "v2".
	CgroupDriver string `json:"cgroupDriver"`
	// Resources are the pod cgroup's (CgroupParent's) CPU and memory
	// settings, the kubelet's pod-level sums; nil in specs written before
	// peapod enforced resources.
	Resources *specs.LinuxResources `json:"resources,omitempty"`
	// CRI marks a pod the CRI server runs: the kubelet owns its containers'
	// lifecycle (restarts, init order, probes, hooks), so the supervisor
	// starts none by itself, adds, starts, stops and removes single
	// containers on request (the socket's cri-* operations), never restarts
	// one, writes each container's log at its LogPath exactly (the kubelet
	// rotates it and asks for a reopen), and keeps the spec file up to date
	// with the containers it has, for an adopting supervisor.
	CRI bool `json:"cri,omitempty"`
	// InitContainers run to completion, in order, before Containers start.
	InitContainers []Container `json:"initContainers,omitempty"`
	// Containers are the app containers.
	Containers []Container `json:"containers"`
}

// Container is one container: an OCI runtime spec plus what Kubernetes
// adds on top of it (hooks, probes, logs).
type Container struct {
	// Name is the container's name within the pod.
	Name string `json:"name"`
	// ID is the container's runtime id (pod uid prefix + name).
	ID string `json:"id"`
	// Image and ImageID are reported in status.
	Image   string `json:"image"`
	ImageID string `json:"imageID"`
	// OCI is the runtime spec the init stage executes. Root.Path is the
	// mount point of the overlay; Linux.Namespaces carry the paths to join.
	OCI specs.Spec `json:"oci"`
	// Seccomp is the compiled seccomp filter (a native-endian array of
	// struct sock_filter, package seccomp) loaded before the workload's and
	// every exec's execve; empty for an unconfined container. Compiled once
	// when the pod is created, so no start or exec compiles it again.
	Seccomp []byte `json:"seccomp,omitempty"`
	// SeccompProfile says which profile Seccomp is ("RuntimeDefault",
	// "Localhost/<path>" or "Unconfined"), for inspect.
	SeccompProfile string `json:"seccompProfile,omitempty"`
	// Rootfs describes the overlay mounted at OCI.Root.Path inside the
	// container's own mount namespace.
	Rootfs Rootfs `json:"rootfs"`
	// Cgroup is the container's cgroup path relative to each hierarchy root.
	Cgroup string `json:"cgroup"`
	// LogPath is the CRI-format log file of this container.
	LogPath string `json:"logPath"`
	// PostStart and PreStop are exec lifecycle hooks (argv).
	PostStart []string `json:"postStart,omitempty"`
	PreStop   []string `json:"preStop,omitempty"`
	// StopSignal is the image's stop signal number (SIGTERM when 0).
	StopSignal int `json:"stopSignal,omitempty"`
	// Ports are the declared container ports (probes resolve names here).
	Ports []Port `json:"ports,omitempty"`
	// Probes, nil when absent.
	LivenessProbe  *Probe `json:"livenessProbe,omitempty"`
	ReadinessProbe *Probe `json:"readinessProbe,omitempty"`
	StartupProbe   *Probe `json:"startupProbe,omitempty"`
	// Stdin keeps a stdin open for the container's life that attach
	// writes to (v1.Container.stdin); StdinOnce closes it once the first
	// attach that used it ends. A terminal container (OCI.Process.Terminal,
	// v1.Container.tty) reads from its pty instead of a pipe.
	Stdin     bool `json:"stdin,omitempty"`
	StdinOnce bool `json:"stdinOnce,omitempty"`
	// Annotations are kept with the container and never read by the
	// supervisor (the CRI server keeps the ContainerConfig it was made
	// from here).
	Annotations map[string]string `json:"annotations,omitempty"`
	// Identity is what the init stage and every exec complete
	// OCI.Process.User with from the container's own /etc/passwd and
	// /etc/group.
	Identity Identity `json:"identity,omitzero"`
}

// The supplemental groups policies of Identity, Kubernetes' words.
const (
	// GroupsMerge adds the primary gid and the groups the container's
	// /etc/group lists the user's name in (Kubernetes' default).
	GroupsMerge = "Merge"
	// GroupsStrict adds the primary gid only.
	GroupsStrict = "Strict"
)

// Identity says what the init stage adds to OCI.Process.User from the
// container's /etc/passwd and /etc/group, as containerd's CRI does when it
// creates a container: those files exist only inside the container's root,
// which the init stage reads after pivot_root (no host path to escape to).
// An exec applies the same, so it runs with the main process's groups. The
// zero value adds nothing, as peapod did before.
type Identity struct {
	// GIDFromPasswd makes the gid the primary group of the uid's
	// /etc/passwd entry (0 without one): neither runAsGroup nor the image
	// named a group.
	GIDFromPasswd bool `json:"gidFromPasswd,omitempty"`
	// SupplementalGroupsPolicy is GroupsMerge, GroupsStrict, or "" (only
	// User.AdditionalGids).
	SupplementalGroupsPolicy string `json:"supplementalGroupsPolicy,omitempty"`
}

// TTY reports whether the container runs on a pty of its own.
func (c *Container) TTY() bool { return c.OCI.Process != nil && c.OCI.Process.Terminal }

// Rootfs is an overlay: read-only lowers (top first), a writable upper.
type Rootfs struct {
	// Lowers are layer directories, topmost first, as overlayfs lowerdir wants.
	Lowers []string `json:"lowers"`
	// Upper and Work are the per-container writable dirs.
	Upper string `json:"upper"`
	Work  string `json:"work"`
}

// Port is a declared container port.
type Port struct {
	Name          string `json:"name,omitempty"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"`
}

// Probe mirrors v1.Probe after defaulting.
type Probe struct {
	Exec      []string   `json:"exec,omitempty"`
	HTTPGet   *HTTPGet   `json:"httpGet,omitempty"`
	TCPSocket *TCPSocket `json:"tcpSocket,omitempty"`
	GRPC      *GRPC      `json:"grpc,omitempty"`

	InitialDelaySeconds           int32  `json:"initialDelaySeconds"`
	TimeoutSeconds                int32  `json:"timeoutSeconds"`
	PeriodSeconds                 int32  `json:"periodSeconds"`
	SuccessThreshold              int32  `json:"successThreshold"`
	FailureThreshold              int32  `json:"failureThreshold"`
	TerminationGracePeriodSeconds *int64 `json:"terminationGracePeriodSeconds,omitempty"`
}

// HTTPGet mirrors v1.HTTPGetAction; Port is a number or a port name.
type HTTPGet struct {
	Path    string       `json:"path"`
	Port    string       `json:"port"`
	Host    string       `json:"host,omitempty"`
	Scheme  string       `json:"scheme"`
	Headers []HTTPHeader `json:"headers,omitempty"`
}

// HTTPHeader is one probe request header.
type HTTPHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// TCPSocket mirrors v1.TCPSocketAction.
type TCPSocket struct {
	Port string `json:"port"`
	Host string `json:"host,omitempty"`
}

// GRPC mirrors v1.GRPCAction.
type GRPC struct {
	Port    int32  `json:"port"`
	Service string `json:"service,omitempty"`
}

// Load reads a spec file and checks its version.
func Load(path string) (*Pod, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read pod spec %q: %w", path, err)
	}
	var p Pod
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("failed to decode pod spec %q: %w", path, err)
	}
	if p.Version != Version {
		return nil, fmt.Errorf("pod spec %q has version %q, this peapod speaks %q: %w", path, p.Version, Version, ErrVersion)
	}
	return &p, nil
}

// ErrVersion marks a spec, state or protocol version mismatch.
var ErrVersion = fmt.Errorf("version mismatch")

// SubPathOption + a relative path, among a bind mount's options, is that
// mount's volume subPath. The mount's Source stays the volume directory:
// the init stage resolves the subPath *inside* it (openat2
// RESOLVE_IN_ROOT), because a symlink in a shared volume could otherwise
// lead the bind out of it (CVE-2017-1002101). The option never reaches
// mount(2).
const SubPathOption = "peapod-subpath="

// RecursiveReadOnlyOption among a bind mount's options makes it and every
// mount below it read-only (runc's "rro", runtime-spec 1.1): the init stage
// applies it with mount_setattr(2) after the bind, as "ro" alone reaches
// only the top mount.
const RecursiveReadOnlyOption = "rro"
