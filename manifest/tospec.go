package manifest

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/spec"
)

// ErrContainerConfig marks a pod that is valid but cannot be turned into a
// container config with this image (the kubelet's CreateContainerConfigError):
// runAsNonRoot against a root image, no command at all, a bad stop signal.
var ErrContainerConfig = errors.New("container config error")

// ImageResolver finds a locally stored image (the image store implements it).
type ImageResolver interface {
	// Resolve returns the image a reference names.
	Resolve(ref string) (*ResolvedImage, error)
}

// ResolvedImage is a stored, unpacked image.
type ResolvedImage struct {
	// ID is the image's content id, "sha256:...".
	ID string
	// RepoDigest is "docker.io/library/nginx@sha256:..." for a pulled
	// image, the container status' imageID as the kubelet shows it; "" for
	// an imported one (whose imageID is then ID).
	RepoDigest string
	// Layers are the unpacked layer directories, bottom layer first.
	Layers []string
	// Config is the part of the image config a container uses.
	Config ImageConfig
}

// ImageConfig is the runtime part of an OCI image config.
type ImageConfig struct {
	// Entrypoint and Cmd combine with command/args (Kubernetes' rules).
	Entrypoint, Cmd []string
	// Env is "KEY=value" pairs.
	Env []string
	// WorkingDir is the default working directory.
	WorkingDir string
	// User is "uid", "uid:gid", "name" or "name:group".
	User string
	// StopSignal is "SIGTERM", "TERM" or "15"; "" means SIGTERM.
	StopSignal string
}

// SpecInput is what the pod manager knows when it builds the spec.
type SpecInput struct {
	// UID is the pod's generated uid.
	UID string
	// RunDir is the volatile pod directory (/run/peapod/pods/<uid>).
	RunDir string
	// PodDir is the persistent pod directory (/var/lib/peapod/pods/<uid>).
	PodDir string
	// Namespaces maps spec.NSNet/NSUTS/NSIPC (and NSPID when shared) to the
	// pinned namespace file; "" or absent means the host's (hostNetwork).
	Namespaces map[string]string
	// IP is the pod's address.
	IP string
	// Images resolves container images.
	Images ImageResolver
	// CgroupParent is the peapod parent cgroup; a container's cgroup is
	// CgroupParent + "/" + its id.
	CgroupParent string
	// CgroupDriver is "v1" or "v2".
	CgroupDriver string
	// Sources are the ConfigMaps and Secrets the pod references (nil: none
	// given); env and volumes read them.
	Sources *Sources
	// BackoffInitialSeconds and BackoffMaxSeconds tune crash-loop backoff.
	BackoffInitialSeconds, BackoffMaxSeconds float64
	// SeccompDir holds the Localhost seccomp profiles (<root>/seccomp).
	SeccompDir string
	// SeccompDefault applies RuntimeDefault to containers naming no
	// profile (the kubelet's SeccompDefault).
	SeccompDefault bool
}

// ToSpec turns a validated, defaulted pod into the supervisor's spec: one
// OCI runtime-spec per container.
func ToSpec(pod *corev1.Pod, in SpecInput) (*spec.Pod, []string, error) {
	hostname, err := podHostname(pod)
	if err != nil {
		return nil, nil, err
	}
	out := &spec.Pod{
		Version:                       spec.Version,
		UID:                           in.UID,
		Name:                          pod.Name,
		Namespace:                     pod.Namespace,
		Hostname:                      hostname,
		HostNetwork:                   pod.Spec.HostNetwork,
		ShareProcessNamespace:         pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace,
		RestartPolicy:                 string(pod.Spec.RestartPolicy),
		TerminationGracePeriodSeconds: derefOr(pod.Spec.TerminationGracePeriodSeconds, defaultTerminationGracePeriod),
		Namespaces:                    in.Namespaces,
		IP:                            in.IP,
		RunDir:                        in.RunDir,
		BackoffInitialSeconds:         in.BackoffInitialSeconds,
		BackoffMaxSeconds:             in.BackoffMaxSeconds,
		CgroupDriver:                  in.CgroupDriver,
		Resources:                     podResources(pod.Spec.InitContainers, pod.Spec.Containers),
	}
	b := &builder{pod: pod, in: in, hostname: hostname, shared: out.ShareProcessNamespace}
	for i := range pod.Spec.InitContainers {
		c, err := b.container(&pod.Spec.InitContainers[i])
		if err != nil {
			return nil, nil, err
		}
		out.InitContainers = append(out.InitContainers, *c)
	}
	for i := range pod.Spec.Containers {
		c, err := b.container(&pod.Spec.Containers[i])
		if err != nil {
			return nil, nil, err
		}
		out.Containers = append(out.Containers, *c)
	}
	return out, b.warnings, nil
}

// podHostname is Hostname; a host-network pod keeps the host's name, as it
// shares the host's UTS namespace.
func podHostname(pod *corev1.Pod) (string, error) {
	if pod.Spec.HostNetwork {
		h, err := os.Hostname()
		if err != nil {
			return "", fmt.Errorf("failed to read the host name for host-network pod %q: %w", pod.Name, err)
		}
		return h, nil
	}
	return Hostname(pod), nil
}

// ContainerID is a container's runtime id: the first 12 hex digits of the
// pod uid and the container name, unique on the host because pod uids are.
func ContainerID(podUID, name string) string {
	u := strings.ReplaceAll(podUID, "-", "")
	if len(u) > 12 {
		u = u[:12]
	}
	return u + "-" + name
}

// builder carries what every container of one pod shares.
type builder struct {
	// pod is the source pod.
	pod *corev1.Pod
	// in is the pod manager's input.
	in SpecInput
	// hostname is the pod's hostname.
	hostname string
	// shared is true when the pod shares one PID namespace.
	shared bool
	// warnings collects what the conversion could not honour.
	warnings []string
	// filters caches compiled seccomp profiles by profile and capabilities.
	filters map[string]compiledFilter
	// hostProfiles says a Localhost seccomp profile is an absolute host
	// path (the CRI's localhost_ref) rather than one under in.SeccompDir.
	hostProfiles bool
}

// container converts one container.
func (b *builder) container(c *corev1.Container) (*spec.Container, error) {
	return b.containerWithID(c, ContainerID(b.in.UID, c.Name))
}

// containerWithID converts one container whose runtime id is id.
func (b *builder) containerWithID(c *corev1.Container, id string) (*spec.Container, error) {
	img, err := b.in.Images.Resolve(c.Image)
	if err != nil {
		return nil, fmt.Errorf("failed to resolve image %q of container %q: %w", c.Image, c.Name, err)
	}
	if len(img.Layers) == 0 {
		return nil, fmt.Errorf("image %q of container %q has no layers: %w", c.Image, c.Name, ErrContainerConfig)
	}
	proc, err := b.process(c, img.Config)
	if err != nil {
		return nil, err
	}
	linux, err := b.linux(c, id)
	if err != nil {
		return nil, err
	}
	filter, err := b.seccompFilter(c, proc)
	if err != nil {
		return nil, err
	}
	stop, err := parseSignal(img.Config.StopSignal)
	if err != nil {
		return nil, fmt.Errorf("image %q of container %q: %w", c.Image, c.Name, err)
	}
	mounts := b.mounts(c)
	sc := c.SecurityContext
	return &spec.Container{
		Name:    c.Name,
		ID:      id,
		Image:   c.Image,
		ImageID: cmp.Or(img.RepoDigest, img.ID),
		OCI: specs.Spec{
			Version: specs.Version,
			Process: proc,
			Root: &specs.Root{
				Path:     layout.Run(b.in.RunDir).Rootfs(c.Name),
				Readonly: sc != nil && sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem,
			},
			// Hostname stays empty: the UTS namespace is the pod's, named
			// once when it is pinned; containers join it and must not rename it.
			Mounts: mounts,
			Linux:  linux,
		},
		Seccomp:        filter.prog,
		SeccompProfile: filter.name,
		Rootfs: spec.Rootfs{
			Lowers: reversed(img.Layers),
			Upper:  layout.Pod(b.in.PodDir).Upper(c.Name),
			Work:   layout.Pod(b.in.PodDir).Work(c.Name),
		},
		Cgroup:         b.in.CgroupParent + "/" + id,
		LogPath:        layout.Pod(b.in.PodDir).Log(c.Name),
		PostStart:      hookArgv(c.Lifecycle, true),
		PreStop:        hookArgv(c.Lifecycle, false),
		StopSignal:     stop,
		Ports:          ports(c.Ports),
		LivenessProbe:  probe(c.LivenessProbe, c.Env),
		ReadinessProbe: probe(c.ReadinessProbe, c.Env),
		StartupProbe:   probe(c.StartupProbe, c.Env),
		Stdin:          c.Stdin,
		StdinOnce:      c.Stdin && c.StdinOnce,
		Identity:       identityOf(b.pod.Spec.SecurityContext, c, img.Config),
	}, nil
}

// process builds the OCI process: argv, env, cwd, user, capabilities.
func (b *builder) process(c *corev1.Container, cfg ImageConfig) (*specs.Process, error) {
	order, vals, warns, err := resolveEnv(c, b.pod, b.in.Sources, podFields{name: b.pod.Name, namespace: b.pod.Namespace, uid: b.in.UID, ip: b.in.IP})
	if err != nil {
		return nil, err
	}
	b.warnings = append(b.warnings, warns...)
	argv := processArgs(c, cfg, vals)
	if len(argv) == 0 {
		return nil, fmt.Errorf("container %q has no command: neither the manifest nor image %q sets one: %w", c.Name, c.Image, ErrContainerConfig)
	}
	user, err := processUser(b.pod.Name, b.pod.Namespace, b.in.UID, b.pod.Spec.SecurityContext, c, cfg)
	if err != nil {
		return nil, err
	}
	cwd := "/"
	if c.WorkingDir != "" {
		cwd = c.WorkingDir
	} else if cfg.WorkingDir != "" {
		cwd = cfg.WorkingDir
	}
	sc := c.SecurityContext
	caps := containerCapabilities(capsOf(sc), isPrivileged(sc))
	env := mergeEnv(b.hostname, cfg.Env, order, vals)
	if c.TTY && !hasEnvKey(env, "TERM") {
		// containerd's WithTTY: a terminal container gets TERM=xterm
		// unless its image or manifest sets one.
		env = append(env, "TERM=xterm")
	}
	return &specs.Process{
		Terminal: c.TTY,
		Args:     argv,
		Env:      env,
		Cwd:      cwd,
		User:     user,
		// Inheritable stays empty: with it, exec of a file-capable binary
		// could gain capabilities (CVE-2022-29162). Ambient stays empty too.
		Capabilities: &specs.LinuxCapabilities{
			Bounding:  caps,
			Permitted: slices.Clone(caps),
			Effective: slices.Clone(caps),
		},
		// Kubernetes semantics: no_new_privs only when asked for, unlike
		// runc spec's default of true.
		NoNewPrivileges: sc != nil && sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation,
	}, nil
}

// capsOf returns a security context's capabilities, nil-safe.
func capsOf(sc *corev1.SecurityContext) *corev1.Capabilities {
	if sc == nil {
		return nil
	}
	return sc.Capabilities
}

// isPrivileged reports privileged: true.
func isPrivileged(sc *corev1.SecurityContext) bool {
	return sc != nil && sc.Privileged != nil && *sc.Privileged
}

// parseSignal turns an image's StopSignal ("SIGTERM", "TERM", "15") into a
// number; "" gives 0, which the supervisor reads as SIGTERM.
func parseSignal(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("stop signal %q is out of range: %w", s, ErrContainerConfig)
		}
		return n, nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return int(sig), nil
	}
	return 0, fmt.Errorf("unknown stop signal %q: %w", s, ErrContainerConfig)
}

// hookArgv returns the exec argv of the postStart (or preStop) hook.
func hookArgv(l *corev1.Lifecycle, postStart bool) []string {
	if l == nil {
		return nil
	}
	h := l.PreStop
	if postStart {
		h = l.PostStart
	}
	if h == nil || h.Exec == nil {
		return nil
	}
	return slices.Clone(h.Exec.Command)
}

// ports converts declared ports.
func ports(in []corev1.ContainerPort) []spec.Port {
	var out []spec.Port
	for _, p := range in {
		out = append(out, spec.Port{Name: p.Name, ContainerPort: p.ContainerPort, Protocol: string(p.Protocol)})
	}
	return out
}

// reversed returns a reversed copy: image layers come bottom first, and
// overlayfs wants lowerdir topmost first.
func reversed(in []string) []string {
	out := slices.Clone(in)
	slices.Reverse(out)
	return out
}

// derefOr returns *p, or def when p is nil.
func derefOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// hasEnvKey reports whether env (KEY=VALUE entries) sets key.
func hasEnvKey(env []string, key string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, key+"=") {
			return true
		}
	}
	return false
}
