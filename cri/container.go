package cri

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/peapod/peapod/manifest"
	"github.com/peapod/peapod/runtime/pod"
	"github.com/peapod/peapod/runtime/spec"
	"github.com/peapod/peapod/runtime/state"
	"github.com/peapod/peapod/runtime/supervisor"
	"github.com/peapod/peapod/seccomp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Annotations a CRI container's spec carries (spec.Container.Annotations;
// the supervisor keeps them and never reads them).
const (
	// containerConfigAnnotation is the ContainerConfig (protojson) the
	// container was created from: metadata, labels, annotations, image.
	containerConfigAnnotation = "cri.peapod.io/container-config"
	// createdAtAnnotation is when it was created (RFC 3339, nanoseconds).
	createdAtAnnotation = "cri.peapod.io/created-at"
	// imageIDAnnotation is its image's ID ("sha256:…", PullImage's
	// image_ref); the spec's ImageID is the repo digest of a pulled image.
	imageIDAnnotation = "cri.peapod.io/image-id"
)

// maxExecOutput caps each stream of ExecSync, as the kubelet's
// maxMsgSize for its own reads (16 MiB).
const maxExecOutput = 16 << 20

// ctr is a CRI container as the sandbox's spec and status show it.
type ctr struct {
	sb *sandbox
	// spec is its spec; st its status (nil before the supervisor wrote
	// one naming it).
	spec *spec.Container
	st   *state.ContainerStatus
	// cfg is the config it was created from.
	cfg       *runtimeapi.ContainerConfig
	createdAt time.Time
}

func (c *ctr) id() string { return c.spec.ID }

// containersOf lists the CRI containers of a sandbox.
func (s *Server) containersOf(sb *sandbox) []*ctr {
	sp, err := s.m.PodSpec(sb.id())
	if err != nil {
		return nil // removed meanwhile, or never had containers
	}
	var out []*ctr
	for i := range sp.Containers {
		c := &sp.Containers[i]
		raw, ok := c.Annotations[containerConfigAnnotation]
		if !ok {
			continue
		}
		cfg := &runtimeapi.ContainerConfig{}
		if err := protojson.Unmarshal([]byte(raw), cfg); err != nil {
			continue
		}
		created, _ := time.Parse(time.RFC3339Nano, c.Annotations[createdAtAnnotation])
		x := &ctr{sb: sb, spec: c, cfg: cfg, createdAt: created}
		if v := sb.view.Status; v != nil {
			for j := range v.Containers {
				if v.Containers[j].ID == c.ID {
					x.st = &v.Containers[j]
				}
			}
		}
		out = append(out, x)
	}
	return out
}

// allContainers lists the containers of every sandbox.
func (s *Server) allContainers() ([]*ctr, error) {
	sbs, err := s.list()
	if err != nil {
		return nil, err
	}
	var out []*ctr
	for _, sb := range sbs {
		out = append(out, s.containersOf(sb)...)
	}
	return out, nil
}

// findContainer resolves a container id, or a prefix naming exactly one.
func (s *Server) findContainer(id string) (*ctr, error) {
	if id == "" {
		return nil, invalid("container_id", "missing")
	}
	all, err := s.allContainers()
	if err != nil {
		return nil, err
	}
	var found *ctr
	for _, c := range all {
		if c.id() == id {
			return c, nil
		}
		if strings.HasPrefix(c.id(), id) {
			if found != nil {
				return nil, invalid("container_id", "prefix %q names more than one container", id)
			}
			found = c
		}
	}
	if found == nil {
		return nil, status.Errorf(codes.NotFound, "container %q: not found", id)
	}
	return found, nil
}

// newContainerID is a random 64-hex-digit id, as containerd's.
func newContainerID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux ≥ 3.17
	}
	return hex.EncodeToString(b[:])
}

// containerName is the peapod container name of a CRI container: its
// CRI name made a DNS label, and the start of its id, which alone keeps
// attempts (and names that differ only in case) apart.
func containerName(md *runtimeapi.ContainerMetadata, id string) string {
	name := dnsLabel(md.Name, 40)
	if name == "" {
		name = "container"
	}
	return name + "-" + id[:12]
}

// CreateContainer creates a container in a ready sandbox from its
// ContainerConfig; what peapod cannot honour is refused with
// InvalidArgument naming the field, and nothing is left.
func (s *Server) CreateContainer(ctx context.Context, req *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	sb, err := s.find(req.PodSandboxId)
	if err != nil {
		return nil, err
	}
	cfg := req.Config
	if cfg == nil {
		return nil, invalid("config", "missing")
	}
	if cfg.Metadata == nil {
		return nil, invalid("config.metadata", "missing")
	}
	if why := badName(cfg.Metadata.Name); why != "" {
		return nil, invalid("config.metadata.name", "%s", why)
	}
	if cfg.Image == nil || cfg.Image.Image == "" {
		return nil, invalid("config.image.image", "missing")
	}
	rec := sb.view.Record
	defer s.lock(rec.Name)()
	// Read again under the lock: a stop may have finished meanwhile.
	if sb, err = s.find(rec.UID); err != nil {
		return nil, err
	}
	if sb.state() != runtimeapi.PodSandboxState_SANDBOX_READY {
		return nil, status.Errorf(codes.FailedPrecondition, "pod sandbox %s is not ready", rec.UID)
	}
	for _, o := range s.containersOf(sb) {
		omd := o.cfg.Metadata
		if omd.Name == cfg.Metadata.Name && omd.Attempt == cfg.Metadata.Attempt {
			return nil, status.Errorf(codes.AlreadyExists, "container %q attempt %d already exists in pod sandbox %s (id %s)", omd.Name, omd.Attempt, rec.UID, o.id())
		}
	}
	id := newContainerID()
	p, err := podOf(sb)
	if err != nil {
		return nil, err
	}
	c, err := containerFromConfig(cfg, sb.cfg, p, id)
	if err != nil {
		return nil, err
	}
	sc, _, err := s.m.BuildContainer(rec.UID, p, c, id)
	if err != nil {
		if errors.Is(err, manifest.ErrContainerConfig) {
			return nil, status.Errorf(codes.InvalidArgument, "container %q: %v", cfg.Metadata.Name, err)
		}
		if errors.Is(err, seccomp.ErrProfile) {
			return nil, invalid("config.linux.security_context.seccomp.localhost_ref", "container %q: %v", cfg.Metadata.Name, err)
		}
		if strings.Contains(err.Error(), "failed to resolve image") {
			return nil, status.Errorf(codes.NotFound, "container %q: %v", cfg.Metadata.Name, err)
		}
		return nil, grpcError(err, "failed to build container %q", cfg.Metadata.Name)
	}
	if err := applyConfig(sc, cfg, sb.cfg, s.m.PodsDir(), rec.UID); err != nil {
		return nil, err
	}
	raw, err := protojson.Marshal(cfg)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "failed to encode container config: %v", err)
	}
	// The ImageID BuildContainer resolved (a repo digest, or the ID of an
	// image never pulled) names the one image it read.
	imageID := sc.ImageID
	if st, err := s.m.Images(); err == nil {
		if img, err := st.Get(sc.ImageID); err == nil {
			imageID = img.ID
		}
	}
	sc.Image = cfg.Image.Image
	sc.Annotations = map[string]string{
		containerConfigAnnotation: string(raw),
		createdAtAnnotation:       time.Now().UTC().Format(time.RFC3339Nano),
		imageIDAnnotation:         imageID,
	}
	if err := s.m.AddContainer(rec.UID, sc); err != nil {
		return nil, grpcError(err, "failed to create container %q in pod sandbox %s", cfg.Metadata.Name, rec.UID)
	}
	return &runtimeapi.CreateContainerResponse{ContainerId: id}, nil
}

// podOf reads the sandbox's pod back from its record.
func podOf(sb *sandbox) (*corev1.Pod, error) {
	p := &corev1.Pod{}
	if err := json.Unmarshal(sb.view.Record.Manifest, p); err != nil {
		return nil, status.Errorf(codes.Internal, "pod sandbox %s: failed to decode its pod: %v", sb.id(), err)
	}
	return p, nil
}

// containerFromConfig maps what a v1.Container can say of a CRI
// ContainerConfig onto one (the builder of peapod's own pods then makes
// its spec), and refuses what peapod cannot honour. p's security context
// takes the supplemental groups.
func containerFromConfig(cfg *runtimeapi.ContainerConfig, sbCfg *runtimeapi.PodSandboxConfig, p *corev1.Pod, id string) (*corev1.Container, error) {
	c := &corev1.Container{
		Name: containerName(cfg.Metadata, id), Image: cfg.Image.Image,
		Command: cfg.Command, Args: cfg.Args, WorkingDir: cfg.WorkingDir,
	}
	for i, kv := range cfg.Envs {
		if kv == nil || kv.Key == "" || strings.ContainsAny(kv.Key, "=\x00") {
			return nil, invalid(fmt.Sprintf("config.envs[%d].key", i), "%q is not a variable name", kv.GetKey())
		}
		c.Env = append(c.Env, corev1.EnvVar{Name: kv.Key, Value: escapeRefs(string(kv.Value))})
	}
	// The kubelet expanded $(VAR) references already; the builder must
	// not expand them again.
	c.Command, c.Args = escapeAll(c.Command), escapeAll(c.Args)
	// The supervisor holds the pty master or the stdin pipe for the
	// container's life; Attach reaches them. stdin_once without stdin
	// means nothing (the builder drops it, as the kubelet's API does).
	c.TTY, c.Stdin, c.StdinOnce = cfg.Tty, cfg.Stdin, cfg.StdinOnce
	if len(cfg.CDIDevices) > 0 {
		return nil, invalid("config.CDI_devices", "peapod has no CDI support")
	}
	l := cfg.Linux
	sc := l.GetSecurityContext()
	privileged := sc.GetPrivileged()
	if len(cfg.Devices) > 0 && !privileged {
		return nil, invalid("config.devices", "peapod passes host devices only to privileged containers (which get them all)")
	}
	if sc != nil {
		if err := checkNamespaces(sc.NamespaceOptions, sbCfg); err != nil {
			return nil, err
		}
		if so := sc.SelinuxOptions; so != nil && (so.User != "" || so.Role != "" || so.Type != "" || so.Level != "") {
			return nil, invalid("config.linux.security_context.selinux_options", "peapod does not apply SELinux labels")
		}
		sp, err := seccompProfile(sc.Seccomp, "config.linux.security_context.seccomp")
		if err != nil {
			return nil, err
		}
		if p := sc.Apparmor; p != nil && p.ProfileType == runtimeapi.SecurityProfile_Localhost {
			return nil, invalid("config.linux.security_context.apparmor", "peapod does not apply AppArmor profiles")
		}
		// A privileged container runs unconfined whatever it names, as
		// with containerd: the builder decides that, before reading a
		// Localhost profile.
		s := &corev1.SecurityContext{Privileged: &privileged, SeccompProfile: sp}
		if caps := sc.Capabilities; caps != nil {
			if len(caps.AddAmbientCapabilities) > 0 {
				return nil, invalid("config.linux.security_context.capabilities.add_ambient_capabilities", "peapod grants no ambient capabilities")
			}
			s.Capabilities = &corev1.Capabilities{}
			for _, n := range caps.AddCapabilities {
				s.Capabilities.Add = append(s.Capabilities.Add, corev1.Capability(n))
			}
			for _, n := range caps.DropCapabilities {
				s.Capabilities.Drop = append(s.Capabilities.Drop, corev1.Capability(n))
			}
		}
		if u := sc.RunAsUser; u != nil {
			v := u.Value
			s.RunAsUser = &v
		}
		if g := sc.RunAsGroup; g != nil {
			v := g.Value
			s.RunAsGroup = &v
		}
		if sc.RunAsGroup != nil && sc.RunAsUser == nil && sc.RunAsUsername == "" {
			return nil, invalid("config.linux.security_context.run_as_group", "needs run_as_user or run_as_username")
		}
		ro := sc.ReadonlyRootfs
		s.ReadOnlyRootFilesystem = &ro
		if sc.NoNewPrivs {
			f := false
			s.AllowPrivilegeEscalation = &f
		}
		c.SecurityContext = s
		policy, err := groupsPolicy(sc.SupplementalGroupsPolicy)
		if err != nil {
			return nil, err
		}
		if p.Spec.SecurityContext == nil {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{}
		}
		p.Spec.SecurityContext.SupplementalGroups = sc.SupplementalGroups
		p.Spec.SecurityContext.SupplementalGroupsPolicy = &policy
	}
	return c, nil
}

// groupsPolicy maps the CRI's supplemental groups policy onto the API's,
// which the builder turns into the init stage's: Merge (the default) adds
// the groups the image's /etc/group lists the user in, Strict only the
// listed ones (and the primary gid, both).
func groupsPolicy(p runtimeapi.SupplementalGroupsPolicy) (corev1.SupplementalGroupsPolicy, error) {
	switch p {
	case runtimeapi.SupplementalGroupsPolicy_Merge:
		return corev1.SupplementalGroupsPolicyMerge, nil
	case runtimeapi.SupplementalGroupsPolicy_Strict:
		return corev1.SupplementalGroupsPolicyStrict, nil
	}
	return "", invalid("config.linux.security_context.supplemental_groups_policy", "unknown policy %d (Merge is 0, Strict 1)", p)
}

// escapeRefs doubles each '$' so that the builder's $(VAR) expansion
// gives the text back as the kubelet sent it.
func escapeRefs(s string) string { return strings.ReplaceAll(s, "$", "$$") }

func escapeAll(in []string) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = escapeRefs(s)
	}
	return out
}

// checkNamespaces refuses container namespace modes the sandbox does not
// have (peapod's containers always join the sandbox's).
func checkNamespaces(o *runtimeapi.NamespaceOption, sbCfg *runtimeapi.PodSandboxConfig) error {
	if o == nil {
		return nil
	}
	sbo := nsOptions(sbCfg)
	const f = "config.linux.security_context.namespace_options."
	if o.Network != sbo.Network {
		return invalid(f+"network", "mode %s differs from the sandbox's %s", o.Network, sbo.Network)
	}
	if o.Ipc != sbo.Ipc {
		return invalid(f+"ipc", "mode %s differs from the sandbox's %s", o.Ipc, sbo.Ipc)
	}
	switch {
	case o.Pid == runtimeapi.NamespaceMode_TARGET:
		return invalid(f+"pid", "mode TARGET is not supported by peapod")
	case o.Pid != sbo.Pid:
		return invalid(f+"pid", "mode %s differs from the sandbox's %s", o.Pid, sbo.Pid)
	}
	if u := o.UsernsOptions; u != nil && u.Mode != runtimeapi.NamespaceMode_NODE {
		return invalid(f+"userns_options", "peapod has no user namespaces yet")
	}
	return nil
}

// applyConfig adds to a built container spec what a v1.Container cannot
// say: host-path mounts with their propagation, the user by name, masked
// and read-only paths, the kubelet's cgroup values, oom_score_adj and the
// log path.
func applyConfig(sc *spec.Container, cfg *runtimeapi.ContainerConfig, sbCfg *runtimeapi.PodSandboxConfig, podsDir, uid string) error {
	for i, m := range cfg.Mounts {
		om, err := mountOf(m, fmt.Sprintf("config.mounts[%d]", i))
		if err != nil {
			return err
		}
		sc.OCI.Mounts = append(sc.OCI.Mounts, om)
		if m.Propagation == runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL {
			// The init stage keeps the host's shared mounts shared, and
			// the rootfs private (runc's rshared rootfsPropagation).
			sc.OCI.Linux.RootfsPropagation = "rshared"
		}
	}
	l := cfg.Linux
	sec := l.GetSecurityContext()
	if n := sec.GetRunAsUsername(); n != "" {
		if sec.RunAsUser != nil {
			return invalid("config.linux.security_context.run_as_username", "set together with run_as_user")
		}
		sc.OCI.Process.User.Username, sc.OCI.Process.User.UID = n, 0
	}
	if sec != nil && !sec.Privileged {
		// The kubelet sends the lists it wants (its defaults, or empty for
		// procMount Unmasked); nil keeps peapod's own defaults.
		if sec.MaskedPaths != nil {
			sc.OCI.Linux.MaskedPaths = append([]string{}, sec.MaskedPaths...)
		}
		if sec.ReadonlyPaths != nil {
			sc.OCI.Linux.ReadonlyPaths = append([]string{}, sec.ReadonlyPaths...)
		}
	}
	if err := applyResources(sc, l.GetResources(), "config.linux.resources."); err != nil {
		return err
	}
	if cfg.LogPath != "" {
		dir := sbCfg.GetLogDirectory()
		if dir == "" || !filepath.IsAbs(dir) {
			return invalid("sandbox_config.log_directory", "%q is not an absolute path (config.log_path is relative to it)", dir)
		}
		lp := filepath.Clean(cfg.LogPath)
		if filepath.IsAbs(lp) || lp == ".." || strings.HasPrefix(lp, "../") {
			return invalid("config.log_path", "%q must stay inside the sandbox's log directory", cfg.LogPath)
		}
		sc.LogPath = filepath.Join(dir, lp)
	}
	return nil
}

// mountOf converts one CRI mount into a bind mount.
func mountOf(m *runtimeapi.Mount, field string) (specs.Mount, error) {
	if m == nil {
		return specs.Mount{}, invalid(field, "missing")
	}
	if !filepath.IsAbs(m.ContainerPath) {
		return specs.Mount{}, invalid(field+".container_path", "%q is not an absolute path", m.ContainerPath)
	}
	if m.Image != nil && m.Image.Image != "" {
		return specs.Mount{}, invalid(field+".image", "peapod has no image volumes")
	}
	if !filepath.IsAbs(m.HostPath) {
		return specs.Mount{}, invalid(field+".host_path", "%q is not an absolute path", m.HostPath)
	}
	if m.RecursiveReadOnly {
		// As containerd: only a read-only mount with private propagation
		// (with another, a mount made later on the host could reach the
		// container writable).
		if !m.Readonly {
			return specs.Mount{}, invalid(field+".recursive_read_only", "needs readonly")
		}
		if m.Propagation != runtimeapi.MountPropagation_PROPAGATION_PRIVATE {
			return specs.Mount{}, invalid(field+".recursive_read_only", "needs propagation PROPAGATION_PRIVATE, not %s", m.Propagation)
		}
		if !manifest.RecursiveReadOnlySupported() {
			return specs.Mount{}, invalid(field+".recursive_read_only", "this kernel has no mount_setattr(2) (Linux 5.12)")
		}
	}
	if len(m.UidMappings) > 0 || len(m.GidMappings) > 0 {
		return specs.Mount{}, invalid(field+".uidMappings", "peapod has no id-mapped mounts")
	}
	if _, err := os.Stat(m.HostPath); errors.Is(err, os.ErrNotExist) {
		// As containerd: a missing host path becomes a directory.
		if err := os.MkdirAll(m.HostPath, 0o755); err != nil {
			return specs.Mount{}, status.Errorf(codes.Internal, "%s.host_path: failed to create %q: %v", field, m.HostPath, err)
		}
	}
	opts := []string{"rbind"}
	switch m.Propagation {
	case runtimeapi.MountPropagation_PROPAGATION_PRIVATE:
		opts = append(opts, "rprivate")
	case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
		opts = append(opts, "rslave")
	case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
		// A bind of a shared mount joins its peer group, so the host path
		// must be on one (containerd refuses it otherwise too);
		// applyConfig makes the container's rootfs propagation shared
		// for it.
		if err := ensureShared(m.HostPath); err != nil {
			return specs.Mount{}, invalid(field+".propagation", "bidirectional: %v", err)
		}
		opts = append(opts, "rshared")
	default:
		return specs.Mount{}, invalid(field+".propagation", "unknown propagation %d", m.Propagation)
	}
	if m.Readonly {
		opts = append(opts, "ro")
	}
	if m.RecursiveReadOnly {
		opts = append(opts, spec.RecursiveReadOnlyOption)
	}
	return specs.Mount{Destination: filepath.Clean(m.ContainerPath), Type: "bind", Source: filepath.Clean(m.HostPath), Options: opts}, nil
}

// ensureShared checks that path is on a shared mount (of the daemon's
// mount namespace, where the containers' are copied from).
func ensureShared(path string) error {
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	mounts, err := mountinfo.GetMounts(mountinfo.ParentsFilter(resolved))
	if err != nil {
		return fmt.Errorf("failed to read mountinfo: %w", err)
	}
	var on *mountinfo.Info
	for _, m := range mounts {
		if on == nil || len(m.Mountpoint) >= len(on.Mountpoint) {
			on = m // the last of equal mount points is the one on top
		}
	}
	if on == nil {
		return fmt.Errorf("no mount holds %q", path)
	}
	for _, opt := range strings.Fields(on.Optional) {
		if strings.HasPrefix(opt, "shared:") {
			return nil
		}
	}
	return fmt.Errorf("path %q is mounted on %q but it is not a shared mount", path, on.Mountpoint)
}

// applyResources writes the kubelet's cgroup values into the spec; f
// prefixes the field an error names.
func applyResources(sc *spec.Container, r *runtimeapi.LinuxContainerResources, f string) error {
	if r == nil {
		return nil
	}
	if r.CpusetCpus != "" || r.CpusetMems != "" {
		return invalid(f+"cpuset_cpus", "peapod does not set cpusets yet")
	}
	for i, h := range r.HugepageLimits {
		if h.GetLimit() > 0 {
			return invalid(fmt.Sprintf("%shugepage_limits[%d]", f, i), "peapod does not limit huge pages yet")
		}
	}
	if len(r.Unified) > 0 {
		return invalid(f+"unified", "peapod does not write raw cgroup v2 files")
	}
	if r.MemorySwapLimitInBytes > 0 && r.MemorySwapLimitInBytes != r.MemoryLimitInBytes {
		return invalid(f+"memory_swap_limit_in_bytes", "peapod containers get no swap (it must equal memory_limit_in_bytes)")
	}
	for name, v := range map[string]int64{"cpu_shares": r.CpuShares, "cpu_quota": r.CpuQuota, "cpu_period": r.CpuPeriod, "memory_limit_in_bytes": r.MemoryLimitInBytes} {
		if v < 0 {
			return invalid(f+name, "%d is negative", v)
		}
	}
	res := sc.OCI.Linux.Resources
	if res == nil {
		res = &specs.LinuxResources{}
		sc.OCI.Linux.Resources = res
	}
	if r.CpuShares > 0 || r.CpuQuota > 0 {
		res.CPU = &specs.LinuxCPU{}
		if r.CpuShares > 0 {
			v := uint64(r.CpuShares)
			res.CPU.Shares = &v
		}
		if r.CpuQuota > 0 {
			period := uint64(100000)
			if r.CpuPeriod > 0 {
				period = uint64(r.CpuPeriod)
			}
			q := r.CpuQuota
			res.CPU.Quota, res.CPU.Period = &q, &period
		}
	}
	if r.MemoryLimitInBytes > 0 {
		v := r.MemoryLimitInBytes
		res.Memory = &specs.LinuxMemory{Limit: &v}
	}
	if r.OomScoreAdj != 0 {
		v := int(r.OomScoreAdj)
		sc.OCI.Process.OOMScoreAdj = &v
	}
	return nil
}

// StartContainer starts a created container.
func (s *Server) StartContainer(ctx context.Context, req *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	c, err := s.findContainer(req.ContainerId)
	if err != nil {
		return nil, err
	}
	if err := s.m.StartContainer(c.sb.id(), c.id()); err != nil {
		return nil, grpcError(err, "failed to start container %s", c.id())
	}
	return &runtimeapi.StartContainerResponse{}, nil
}

// StopContainer stops a container: its stop signal, timeout seconds, then
// SIGKILL. A stopped or unknown container is stopped already.
func (s *Server) StopContainer(ctx context.Context, req *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	c, err := s.findContainer(req.ContainerId)
	if status.Code(err) == codes.NotFound {
		return &runtimeapi.StopContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.m.StopContainer(c.sb.id(), c.id(), req.Timeout); err != nil && !errors.Is(err, pod.ErrNotFound) && !errors.Is(err, pod.ErrContainerNotFound) {
		return nil, grpcError(err, "failed to stop container %s", c.id())
	}
	return &runtimeapi.StopContainerResponse{}, nil
}

// RemoveContainer removes a container, killing it first if it runs. An
// unknown container is removed already.
func (s *Server) RemoveContainer(ctx context.Context, req *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	c, err := s.findContainer(req.ContainerId)
	if status.Code(err) == codes.NotFound {
		return &runtimeapi.RemoveContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer s.lock(c.sb.view.Record.Name)()
	if err := s.m.RemoveContainer(c.sb.id(), c.id()); err != nil && !errors.Is(err, pod.ErrNotFound) {
		return nil, grpcError(err, "failed to remove container %s", c.id())
	}
	return &runtimeapi.RemoveContainerResponse{}, nil
}

// criState maps a container's status onto the CRI's four states, with
// the exit code, reason and message the CRI reports. A start that failed
// is an exit (code 128, StartError), as containerd reports it.
func (c *ctr) criState() (runtimeapi.ContainerState, int32, string, string) {
	st := c.st
	switch {
	case st == nil:
		if c.sb.view.Final || c.sb.view.SupervisorAlive {
			return runtimeapi.ContainerState_CONTAINER_CREATED, 0, "", ""
		}
		return runtimeapi.ContainerState_CONTAINER_UNKNOWN, 0, "", ""
	case st.State == state.StateRunning:
		return runtimeapi.ContainerState_CONTAINER_RUNNING, 0, "", ""
	case st.State == state.StateTerminated:
		return runtimeapi.ContainerState_CONTAINER_EXITED, int32(st.ExitCode), st.Reason, st.Message
	case st.Reason == "CreateContainerError" || st.Reason == "RunContainerError":
		return runtimeapi.ContainerState_CONTAINER_EXITED, 128, "StartError", st.Message
	case c.sb.view.Final:
		// Created, never started, and its sandbox is stopped.
		return runtimeapi.ContainerState_CONTAINER_EXITED, 0, "Unstarted", ""
	}
	return runtimeapi.ContainerState_CONTAINER_CREATED, 0, "", ""
}

// imageRef is the digested reference of the container's image: its repo
// digest when it was pulled, its ID otherwise.
func (c *ctr) imageRef() string { return c.spec.ImageID }

// imageID is the ID of the container's image, which the CRI demands
// image_id match PullImageResponse.image_ref with (the spec's ImageID, a
// container created before the annotation had it).
func (c *ctr) imageID() string {
	return cmp.Or(c.spec.Annotations[imageIDAnnotation], c.spec.ImageID)
}

// ContainerStatus reports a container's state, exit, times, image, mounts
// and log path.
func (s *Server) ContainerStatus(ctx context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	c, err := s.findContainer(req.ContainerId)
	if err != nil {
		return nil, err
	}
	stt, code, reason, msg := c.criState()
	out := &runtimeapi.ContainerStatus{
		Id: c.id(), Metadata: c.cfg.Metadata, State: stt, CreatedAt: c.createdAt.UnixNano(),
		ExitCode: code, Reason: reason, Message: msg,
		Image: c.cfg.Image, ImageRef: c.imageRef(), ImageId: c.imageID(),
		Labels: c.cfg.Labels, Annotations: c.cfg.Annotations, Mounts: c.cfg.Mounts, LogPath: c.spec.LogPath,
	}
	if st := c.st; st != nil {
		if !st.StartedAt.IsZero() && stt != runtimeapi.ContainerState_CONTAINER_CREATED {
			out.StartedAt = st.StartedAt.UnixNano()
		}
		if !st.FinishedAt.IsZero() && stt == runtimeapi.ContainerState_CONTAINER_EXITED {
			out.FinishedAt = st.FinishedAt.UnixNano()
		}
	}
	if l := c.spec.OCI.Linux; l != nil && l.Resources != nil {
		r := l.Resources
		out.Resources = &runtimeapi.ContainerResources{Linux: criResources(r)}
	}
	if u := c.user(); u != nil {
		out.User = &runtimeapi.ContainerUser{Linux: u}
	}
	resp := &runtimeapi.ContainerStatusResponse{Status: out}
	if req.Verbose {
		info := map[string]any{"peapodName": c.spec.Name, "sandboxId": c.sb.id(), "cgroup": c.spec.Cgroup}
		if c.st != nil {
			info["pid"] = c.st.Proc.PID
		}
		b, _ := json.Marshal(info)
		resp.Info = map[string]string{"info": string(b)}
	}
	return resp, nil
}

// user is the identity of the container's first process: read from
// /proc/PID/status while it runs, as containerd reports it, since the init
// stage completes the spec's user from the image's /etc/passwd and
// /etc/group (spec.Identity). A container that does not run reports the
// spec's user if nothing completes it, and none otherwise.
func (c *ctr) user() *runtimeapi.LinuxContainerUser {
	if c.st != nil && c.st.State == state.StateRunning {
		if ids, ok := c.st.Proc.IDs(); ok {
			u := &runtimeapi.LinuxContainerUser{Uid: int64(ids.UID), Gid: int64(ids.GID), SupplementalGroups: []int64{}}
			for _, g := range ids.Groups {
				u.SupplementalGroups = append(u.SupplementalGroups, int64(g))
			}
			return u
		}
	}
	p := c.spec.OCI.Process
	if p == nil || c.spec.Identity != (spec.Identity{}) {
		return nil
	}
	u := &runtimeapi.LinuxContainerUser{Uid: int64(p.User.UID), Gid: int64(p.User.GID), SupplementalGroups: []int64{}}
	for _, g := range p.User.AdditionalGids {
		u.SupplementalGroups = append(u.SupplementalGroups, int64(g))
	}
	return u
}

// criResources reports the cgroup values peapod set.
func criResources(r *specs.LinuxResources) *runtimeapi.LinuxContainerResources {
	out := &runtimeapi.LinuxContainerResources{}
	if c := r.CPU; c != nil {
		if c.Shares != nil {
			out.CpuShares = int64(*c.Shares)
		}
		if c.Quota != nil {
			out.CpuQuota = *c.Quota
		}
		if c.Period != nil {
			out.CpuPeriod = int64(*c.Period)
		}
	}
	if m := r.Memory; m != nil && m.Limit != nil {
		out.MemoryLimitInBytes = *m.Limit
	}
	return out
}

// ListContainers lists the containers matching the filter: an id (or its
// prefix), a state, a sandbox id (or its prefix), labels.
func (s *Server) ListContainers(ctx context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	all, err := s.allContainers()
	if err != nil {
		return nil, err
	}
	f := req.Filter
	resp := &runtimeapi.ListContainersResponse{}
	for _, c := range all {
		st, _, _, _ := c.criState()
		if f != nil {
			if f.Id != "" && !strings.HasPrefix(c.id(), f.Id) {
				continue
			}
			if f.PodSandboxId != "" && !strings.HasPrefix(c.sb.id(), f.PodSandboxId) {
				continue
			}
			if f.State != nil && f.State.State != st {
				continue
			}
			if !labelsMatch(c.cfg.Labels, f.LabelSelector) {
				continue
			}
		}
		resp.Containers = append(resp.Containers, &runtimeapi.Container{
			Id: c.id(), PodSandboxId: c.sb.id(), Metadata: c.cfg.Metadata, Image: c.cfg.Image,
			ImageRef: c.imageRef(), ImageId: c.imageID(), State: st, CreatedAt: c.createdAt.UnixNano(),
			Labels: c.cfg.Labels, Annotations: c.cfg.Annotations,
		})
	}
	return resp, nil
}

// ExecSync runs a command in a running container and returns its output
// and exit code; past the timeout (seconds, 0 = none) it is killed and
// the call fails with DeadlineExceeded.
func (s *Server) ExecSync(ctx context.Context, req *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	if len(req.Cmd) == 0 {
		return nil, invalid("cmd", "missing")
	}
	if req.Timeout < 0 {
		return nil, invalid("timeout", "%d is negative", req.Timeout)
	}
	c, err := s.findContainer(req.ContainerId)
	if err != nil {
		return nil, err
	}
	timeout := time.Duration(req.Timeout) * time.Second
	if d, ok := ctx.Deadline(); ok && (timeout == 0 || time.Until(d) < timeout) {
		timeout = time.Until(d)
	}
	stdout, stderr, code, err := s.m.ExecSync(c.sb.id(), c.id(), req.Cmd, timeout, maxExecOutput)
	switch {
	case errors.Is(err, pod.ErrExecTimeout):
		return nil, status.Errorf(codes.DeadlineExceeded, "%v", err)
	case errors.Is(err, pod.ErrContainerNotFound):
		return nil, status.Errorf(codes.NotFound, "%v", err)
	case err != nil && strings.Contains(err.Error(), "is not running"):
		return nil, status.Errorf(codes.FailedPrecondition, "%v", err)
	case err != nil:
		return nil, grpcError(err, "failed to exec in container %s", c.id())
	}
	return &runtimeapi.ExecSyncResponse{Stdout: stdout, Stderr: stderr, ExitCode: int32(code)}, nil
}

// ReopenContainerLog makes a running container write to a new file at its
// log path (the kubelet renamed the old one).
func (s *Server) ReopenContainerLog(ctx context.Context, req *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	c, err := s.findContainer(req.ContainerId)
	if err != nil {
		return nil, err
	}
	if err := s.m.ReopenContainerLog(c.sb.id(), c.id()); err != nil {
		if errors.Is(err, supervisor.ErrNoSupervisor) || strings.Contains(err.Error(), "not running") {
			return nil, status.Errorf(codes.FailedPrecondition, "container %s is not running: %v", c.id(), err)
		}
		return nil, grpcError(err, "failed to reopen the log of container %s", c.id())
	}
	return &runtimeapi.ReopenContainerLogResponse{}, nil
}
