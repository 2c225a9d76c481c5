package cri

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/peapod/peapod/cni"
	"github.com/peapod/peapod/manifest"
	"github.com/peapod/peapod/namespaces"
	"github.com/peapod/peapod/runtime/pod"
	"github.com/peapod/peapod/runtime/state"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// configAnnotation holds, in the peapod pod's manifest, the CRI
// PodSandboxConfig it was made from (protojson): metadata, labels,
// annotations and options are answered from it as the kubelet gave them.
const configAnnotation = "cri.peapod.io/sandbox-config"

// Bounds of a sandbox's record name.
const (
	// nameKept is how much of the CRI name stays readable in the record
	// name; the rest is "-" and the key's hash (253 bytes at most).
	nameKept = 200
	// keyHashLen is the length of the key's hash in the record name.
	keyHashLen = 10
)

// recordName is the name of the peapod pod a CRI sandbox becomes. The CRI
// key of a sandbox is (name, namespace, uid, attempt) — the kubelet runs a
// pod's next attempt, or a recreated pod of the same name (a StatefulSet's)
// with a new uid, while the old sandbox still exists — so the name is the
// CRI name made a DNS label (critest's names have capitals) and a hash of
// the whole key, which alone keeps two sandboxes apart.
func recordName(md *runtimeapi.PodSandboxMetadata) string {
	sum := sha256.Sum256([]byte(md.Name + "\x00" + md.Namespace + "\x00" + md.Uid + "\x00" + strconv.FormatUint(uint64(md.Attempt), 10)))
	name := dnsLabel(md.Name, nameKept)
	if name == "" {
		name = "sandbox"
	}
	return name + "-" + hex.EncodeToString(sum[:])[:keyHashLen]
}

// recordNamespace is the peapod namespace of a sandbox: its CRI namespace
// made a DNS label (the record name's hash tells namespaces apart).
func recordNamespace(ns string) string {
	if l := dnsLabel(ns, validation.DNS1123LabelMaxLength); l != "" {
		return l
	}
	return "cri"
}

// dnsLabel lowercases s, turns what a DNS label cannot hold into '-' and
// keeps at most max bytes, without a '-' at either end.
func dnsLabel(s string, max int) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			b[i] = '-'
		}
	}
	if len(b) > max {
		b = b[:max]
	}
	return strings.Trim(string(b), "-")
}

// badName says what makes a CRI name or namespace unusable, or "". Any
// string a kubelet sends is accepted (they are Kubernetes names); a '/' or
// a control character never comes from one.
func badName(s string) string {
	switch {
	case s == "":
		return "missing"
	case strings.ContainsAny(s, "/\x00"):
		return fmt.Sprintf("%q holds a '/' or NUL", s)
	case strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		return fmt.Sprintf("%q holds a control character", s)
	}
	return ""
}

// invalid is an InvalidArgument error naming the field.
func invalid(field, format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, "%s: %s", field, fmt.Sprintf(format, args...))
}

// podFromConfig turns a PodSandboxConfig into the peapod pod of the
// sandbox and its port mappings, refusing what peapod cannot honour.
func podFromConfig(cfg *runtimeapi.PodSandboxConfig) (*corev1.Pod, []cni.PortMapping, error) {
	if cfg == nil {
		return nil, nil, invalid("config", "missing")
	}
	md := cfg.Metadata
	if md == nil {
		return nil, nil, invalid("config.metadata", "missing")
	}
	if why := badName(md.Name); why != "" {
		return nil, nil, invalid("config.metadata.name", "%s", why)
	}
	if why := badName(md.Namespace); why != "" {
		return nil, nil, invalid("config.metadata.namespace", "%s", why)
	}
	if md.Uid == "" {
		return nil, nil, invalid("config.metadata.uid", "missing")
	}
	raw, err := protojson.Marshal(cfg)
	if err != nil {
		return nil, nil, status.Errorf(codes.Internal, "failed to encode sandbox config: %v", err)
	}
	annotations := map[string]string{configAnnotation: string(raw)}
	p := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: recordName(md), Namespace: recordNamespace(md.Namespace), Labels: cfg.Labels, Annotations: annotations},
		Spec: corev1.PodSpec{
			// Nothing to run and nothing that finishes: the supervisor
			// keeps the sandbox Running until it is stopped.
			RestartPolicy: corev1.RestartPolicyAlways,
			DNSPolicy:     corev1.DNSDefault,
		},
	}
	if cfg.Hostname != "" {
		if errs := validation.IsDNS1123Label(cfg.Hostname); len(errs) > 0 {
			return nil, nil, invalid("config.hostname", "%q is not a DNS label: %s", cfg.Hostname, strings.Join(errs, "; "))
		}
		p.Spec.Hostname = cfg.Hostname
	} else if len(md.Name) <= validation.DNS1123LabelMaxLength && len(validation.IsDNS1123Label(md.Name)) == 0 {
		p.Spec.Hostname = md.Name
	}
	if err := applyNamespaceOptions(p, cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()); err != nil {
		return nil, nil, err
	}
	if err := checkSandboxSeccomp(cfg.GetLinux().GetSecurityContext()); err != nil {
		return nil, nil, err
	}
	if err := applySysctls(p, cfg.GetLinux().GetSysctls()); err != nil {
		return nil, nil, err
	}
	if d := cfg.DnsConfig; d != nil {
		// The kubelet has resolved the pod's dnsPolicy into this config
		// already: it is the whole resolv.conf.
		p.Spec.DNSPolicy = corev1.DNSNone
		dc := &corev1.PodDNSConfig{Nameservers: d.Servers, Searches: d.Searches}
		for i, s := range d.Servers {
			if _, err := netip.ParseAddr(s); err != nil {
				return nil, nil, invalid(fmt.Sprintf("config.dns_config.servers[%d]", i), "%q is not an IP address", s)
			}
		}
		for _, o := range d.Options {
			name, value, ok := strings.Cut(o, ":")
			opt := corev1.PodDNSConfigOption{Name: name}
			if ok {
				opt.Value = &value
			}
			dc.Options = append(dc.Options, opt)
		}
		p.Spec.DNSConfig = dc
	}
	ports, err := portMappings(cfg.PortMappings)
	if err != nil {
		return nil, nil, err
	}
	return p, ports, nil
}

// applyNamespaceOptions maps the CRI namespace modes onto the pod.
func applyNamespaceOptions(p *corev1.Pod, o *runtimeapi.NamespaceOption) error {
	if o == nil {
		return nil // POD network, CONTAINER pid, POD ipc
	}
	switch o.Network {
	case runtimeapi.NamespaceMode_POD:
	case runtimeapi.NamespaceMode_NODE:
		p.Spec.HostNetwork = true
	default:
		return invalid("config.linux.security_context.namespace_options.network", "mode %s is not a sandbox's network mode (POD or NODE)", o.Network)
	}
	switch o.Pid {
	case runtimeapi.NamespaceMode_POD:
		share := true
		p.Spec.ShareProcessNamespace = &share
	case runtimeapi.NamespaceMode_CONTAINER:
	case runtimeapi.NamespaceMode_NODE:
		p.Spec.HostPID = true
	default:
		return invalid("config.linux.security_context.namespace_options.pid", "mode %s is a container's, not a sandbox's", o.Pid)
	}
	switch o.Ipc {
	case runtimeapi.NamespaceMode_POD:
	case runtimeapi.NamespaceMode_NODE:
		p.Spec.HostIPC = true
	default:
		return invalid("config.linux.security_context.namespace_options.ipc", "mode %s is not a sandbox's IPC mode (POD or NODE)", o.Ipc)
	}
	if u := o.UsernsOptions; u != nil && u.Mode != runtimeapi.NamespaceMode_NODE {
		return status.Error(codes.Unimplemented, "config.linux.security_context.namespace_options.userns_options: peapod has no user namespaces yet")
	}
	return nil
}

// sysctlsField names one sandbox sysctl in an error.
func sysctlsField(name string) string { return fmt.Sprintf("config.linux.sysctls[%q]", name) }

// applySysctls makes the sandbox's sysctls the pod's, which the runtime
// sets in the sandbox's namespaces as it does for a pod of `peapod run`.
// The names are checked as the API server checks a pod's (syntax, none of
// a namespace the sandbox shares with the host) and must be namespaced
// ones: a sandbox never changes the host. Which of those are allowed is
// the kubelet's admission (its --allowed-unsafe-sysctls), not the
// runtime's. Called after applyNamespaceOptions.
func applySysctls(p *corev1.Pod, sysctls map[string]string) error {
	if len(sysctls) == 0 {
		return nil
	}
	sc := &corev1.PodSecurityContext{}
	for _, name := range slices.Sorted(maps.Keys(sysctls)) {
		value := sysctls[name]
		f := sysctlsField(name)
		if err := manifest.ValidateSysctlName(name, &p.Spec, field.NewPath(f)); err != nil {
			return status.Errorf(codes.InvalidArgument, "%v", err)
		}
		if manifest.SysctlNamespaceOf(manifest.NormalizeSysctl(name)) == "" {
			return invalid(f, "%q is not a namespaced sysctl (a sandbox's must be its network or IPC namespace's)", name)
		}
		if strings.ContainsAny(value, "\x00\n") {
			return invalid(f, "value %q holds a NUL or a newline", value)
		}
		sc.Sysctls = append(sc.Sysctls, corev1.Sysctl{Name: name, Value: value})
	}
	p.Spec.SecurityContext = sc
	return nil
}

// sysctlError turns a sysctl the kernel did not take (no such parameter, a
// value it refuses) into InvalidArgument naming the sandbox's field.
func sysctlError(err error, sysctls map[string]string) error {
	var se *namespaces.SysctlError
	if !errors.As(err, &se) {
		return nil
	}
	for name := range sysctls {
		if manifest.NormalizeSysctl(name) == se.Name {
			return invalid(sysctlsField(name), "the kernel refused %q: %v", se.Value, se.Err)
		}
	}
	return nil
}

// portMappings converts the CRI port mappings; a host port of 0 maps
// nothing, as with containerd.
func portMappings(in []*runtimeapi.PortMapping) ([]cni.PortMapping, error) {
	var out []cni.PortMapping
	for i, pm := range in {
		field := fmt.Sprintf("config.port_mappings[%d]", i)
		if pm == nil || pm.HostPort == 0 {
			continue
		}
		if pm.HostPort < 0 || pm.HostPort > 65535 {
			return nil, invalid(field+".host_port", "%d is not a port", pm.HostPort)
		}
		if pm.ContainerPort <= 0 || pm.ContainerPort > 65535 {
			return nil, invalid(field+".container_port", "%d is not a port", pm.ContainerPort)
		}
		m := cni.PortMapping{HostPort: uint16(pm.HostPort), ContainerPort: uint16(pm.ContainerPort)}
		switch pm.Protocol {
		case runtimeapi.Protocol_TCP:
			m.Protocol = "tcp"
		case runtimeapi.Protocol_UDP:
			m.Protocol = "udp"
		case runtimeapi.Protocol_SCTP:
			m.Protocol = "sctp"
		default:
			return nil, invalid(field+".protocol", "unknown protocol %d", pm.Protocol)
		}
		if pm.HostIp != "" && pm.HostIp != "0.0.0.0" {
			ip, err := netip.ParseAddr(pm.HostIp)
			if err != nil {
				return nil, invalid(field+".host_ip", "%q is not an IP address", pm.HostIp)
			}
			m.HostIP = ip
		}
		out = append(out, m)
	}
	return out, nil
}

// sandbox is a peapod pod seen as a CRI sandbox.
type sandbox struct {
	// view is the pod's view.
	view *pod.View
	// cfg is the config it was run with (nil for a pod not made by the
	// CRI server, which is not a sandbox).
	cfg *runtimeapi.PodSandboxConfig
}

// sandboxOf reads the CRI config back from a pod's manifest.
func sandboxOf(v *pod.View) *sandbox {
	var m struct {
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(v.Record.Manifest, &m); err != nil {
		return nil
	}
	raw, ok := m.Metadata.Annotations[configAnnotation]
	if !ok {
		return nil
	}
	cfg := &runtimeapi.PodSandboxConfig{}
	if err := protojson.Unmarshal([]byte(raw), cfg); err != nil || cfg.Metadata == nil {
		return nil
	}
	return &sandbox{view: v, cfg: cfg}
}

// state is the sandbox's CRI state: ready while its supervisor lives and
// it was not stopped. (The phase says Pending until a container's state
// changes, so the supervisor's liveness is what counts.)
func (sb *sandbox) state() runtimeapi.PodSandboxState {
	v := sb.view
	if v.Record.Phase == state.PhaseCreated && v.SupervisorAlive && !v.Final && (v.Status == nil || !v.Status.Stopping) {
		return runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return runtimeapi.PodSandboxState_SANDBOX_NOTREADY
}

func (sb *sandbox) id() string { return sb.view.Record.UID }

// find resolves a sandbox id, or a prefix of one that names exactly one
// sandbox (as containerd and crictl allow), to its sandbox.
func (s *Server) find(id string) (*sandbox, error) {
	if id == "" {
		return nil, invalid("pod_sandbox_id", "missing")
	}
	if v, err := s.m.GetByUID(id); err == nil {
		if sb := sandboxOf(v); sb != nil {
			return sb, nil
		}
		return nil, status.Errorf(codes.NotFound, "pod sandbox %q: not found", id)
	} else if !errors.Is(err, pod.ErrNotFound) {
		return nil, grpcError(err, "failed to look up pod sandbox %q", id)
	}
	all, err := s.list()
	if err != nil {
		return nil, err
	}
	var found *sandbox
	for _, sb := range all {
		if strings.HasPrefix(sb.id(), id) {
			if found != nil {
				return nil, invalid("pod_sandbox_id", "prefix %q names more than one sandbox", id)
			}
			found = sb
		}
	}
	if found == nil {
		return nil, status.Errorf(codes.NotFound, "pod sandbox %q: not found", id)
	}
	return found, nil
}

// list returns every sandbox of the root.
func (s *Server) list() ([]*sandbox, error) {
	views, err := s.m.List("")
	if err != nil {
		return nil, grpcError(err, "failed to list pod sandboxes")
	}
	var out []*sandbox
	for _, v := range views {
		if sb := sandboxOf(v); sb != nil {
			out = append(out, sb)
		}
	}
	return out, nil
}

// RunPodSandbox creates and starts a sandbox: namespace pins, network,
// port mappings and the supervisor that will run its containers.
func (s *Server) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	if h := req.RuntimeHandler; h != "" && h != RuntimeName {
		return nil, invalid("runtime_handler", "unknown runtime handler %q (peapod serves %q)", h, RuntimeName)
	}
	p, ports, err := podFromConfig(req.Config)
	if err != nil {
		return nil, err
	}
	defer s.lock(p.Name)()
	// The kubelet's parent names the pod's QoS class (it knows the
	// containers to come; the sandbox config does not): peapod places the
	// sandbox's cgroup under its own cgroup of that class.
	v, err := s.m.CreateSandbox(p, ports, pod.QOSFromCgroupParent(req.Config.GetLinux().GetCgroupParent()))
	if errors.Is(err, pod.ErrExists) {
		// containerd refuses a second sandbox of one name, namespace, uid
		// and attempt the same way; the kubelet bumps the attempt.
		return nil, status.Errorf(codes.AlreadyExists, "pod sandbox of name %q, namespace %q, uid %q, attempt %d already exists (peapod pod %s/%s)",
			req.Config.Metadata.Name, req.Config.Metadata.Namespace, req.Config.Metadata.Uid, req.Config.Metadata.Attempt, p.Namespace, p.Name)
	}
	if serr := sysctlError(err, req.Config.GetLinux().GetSysctls()); serr != nil {
		return nil, serr
	}
	if err != nil {
		return nil, grpcError(err, "failed to run pod sandbox %s/%s", p.Namespace, req.Config.Metadata.Name)
	}
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: v.Record.UID}, nil
}

// StopPodSandbox stops everything in the sandbox and releases its network.
// Stopping a stopped or unknown sandbox succeeds (the CRI asks for
// idempotence; containerd 1.6's NotFound fails a critest spec).
func (s *Server) StopPodSandbox(ctx context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	sb, err := s.find(req.PodSandboxId)
	if status.Code(err) == codes.NotFound {
		return &runtimeapi.StopPodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	rec := sb.view.Record
	defer s.lock(rec.Name)()
	var grace int64
	if err := s.m.Stop(rec.Namespace, rec.Name, &grace); err != nil && !errors.Is(err, pod.ErrNotFound) {
		return nil, grpcError(err, "failed to stop pod sandbox %s", rec.UID)
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

// RemovePodSandbox removes a sandbox, stopping it first if need be.
// Removing an unknown sandbox succeeds, as the CRI says.
func (s *Server) RemovePodSandbox(ctx context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	sb, err := s.find(req.PodSandboxId)
	if status.Code(err) == codes.NotFound {
		return &runtimeapi.RemovePodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	rec := sb.view.Record
	defer s.lock(rec.Name)()
	if err := s.m.Remove(rec.Namespace, rec.Name, true); err != nil && !errors.Is(err, pod.ErrNotFound) {
		return nil, grpcError(err, "failed to remove pod sandbox %s", rec.UID)
	}
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}

// PodSandboxStatus reports a sandbox's state, IP and options.
func (s *Server) PodSandboxStatus(ctx context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	sb, err := s.find(req.PodSandboxId)
	if err != nil {
		return nil, err
	}
	rec := sb.view.Record
	st := &runtimeapi.PodSandboxStatus{
		Id: rec.UID, Metadata: sb.cfg.Metadata, State: sb.state(), CreatedAt: rec.CreatedAt.UnixNano(),
		Labels: sb.cfg.Labels, Annotations: sb.cfg.Annotations, RuntimeHandler: RuntimeName,
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{
			Options: nsOptions(sb.cfg),
		}},
	}
	if st.State == runtimeapi.PodSandboxState_SANDBOX_READY {
		// A stopped sandbox's address went back to the pool.
		st.Network = &runtimeapi.PodSandboxNetworkStatus{Ip: rec.IP}
	}
	resp := &runtimeapi.PodSandboxStatusResponse{Status: st}
	if req.Verbose {
		info := map[string]any{"phase": sb.view.Phase, "peapodPod": rec.Namespace + "/" + rec.Name, "netns": rec.NetnsName, "hostVeth": rec.HostVeth, "runDir": s.m.RunDir(rec.UID)}
		if sb.view.Status != nil {
			info["supervisorPid"] = sb.view.Status.Supervisor.PID
		}
		b, _ := json.Marshal(info)
		resp.Info = map[string]string{"info": string(b)}
	}
	return resp, nil
}

// nsOptions is the sandbox's namespace options, defaults filled in.
func nsOptions(cfg *runtimeapi.PodSandboxConfig) *runtimeapi.NamespaceOption {
	if o := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions(); o != nil {
		return o
	}
	return &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD}
}

// ListPodSandbox lists the sandboxes matching the filter: an id (or its
// prefix), a state, and labels that must all match.
func (s *Server) ListPodSandbox(ctx context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	all, err := s.list()
	if err != nil {
		return nil, err
	}
	f := req.Filter
	resp := &runtimeapi.ListPodSandboxResponse{}
	for _, sb := range all {
		st := sb.state()
		if f != nil {
			if f.Id != "" && !strings.HasPrefix(sb.id(), f.Id) {
				continue
			}
			if f.State != nil && f.State.State != st {
				continue
			}
			if !labelsMatch(sb.cfg.Labels, f.LabelSelector) {
				continue
			}
		}
		resp.Items = append(resp.Items, &runtimeapi.PodSandbox{
			Id: sb.id(), Metadata: sb.cfg.Metadata, State: st, CreatedAt: sb.view.Record.CreatedAt.UnixNano(),
			Labels: sb.cfg.Labels, Annotations: sb.cfg.Annotations, RuntimeHandler: RuntimeName,
		})
	}
	return resp, nil
}

// labelsMatch reports whether labels hold every pair of sel.
func labelsMatch(labels, sel map[string]string) bool {
	for k, v := range sel {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
