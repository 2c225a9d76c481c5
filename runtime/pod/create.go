package pod

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/peapod/peapod/cgroups"
	"github.com/peapod/peapod/cgroups/devices"
	"github.com/peapod/peapod/cni"
	"github.com/peapod/peapod/internal/cleanup"
	"github.com/peapod/peapod/internal/jsonvalue"
	"github.com/peapod/peapod/manifest"
	"github.com/peapod/peapod/namespaces"
	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/spec"
	"github.com/peapod/peapod/runtime/state"
	"github.com/peapod/peapod/runtime/supervisor"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/peapod/peapod/internal/ktrace"
)

// StartError is returned with a created pod one of whose containers could
// not start: the pod stays (its status shows the container waiting with
// CreateContainerError/RunContainerError and the supervisor retries), but
// run reports it and exits non-zero.
type StartError struct {
	// Pod is namespace/name.
	Pod string
	// Msg is the supervisor's report.
	Msg string
}

func (e *StartError) Error() string { return fmt.Sprintf("pod %s: %s", e.Pod, e.Msg) }

// newUID makes a random RFC 4122 version 4 uid, as the API server does.
func newUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux ≥ 3.17
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// Create builds and starts one validated, defaulted pod. On error nothing
// of it remains, except a *StartError, which leaves a created pod. It
// holds the pod's name lock from the reservation to the end, so an rm of
// the same name waits for a whole pod (or none).
func (m *Manager) Create(p *corev1.Pod) (rec *state.Record, err error) {
	return m.CreateWithSources(p, nil)
}

// CreateWithSources is Create for a pod that uses ConfigMaps and Secrets:
// src holds those it references (manifest.Objects.SourcesFor); they are
// stored with the pod, and its projected volumes written (sources.go).
func (m *Manager) CreateWithSources(p *corev1.Pod, src *manifest.Sources) (rec *state.Record, err error) {
	return m.CreateWait(p, src, StartWait{})
}

// StartWait shapes how Create waits for a pod's containers to start.
type StartWait struct {
	// Ctx ends the wait early (Ctrl-C, a timeout): the pod is then fully
	// created, its supervisor carrying on with the init containers, and
	// Create returns it with a *PendingError. nil waits to the end.
	Ctx context.Context
	// Progress, when set, is told what the pod waits for once the wait
	// passes ProgressAfter and whenever that changes.
	Progress func(waitingFor string, since time.Duration)
	// ProgressAfter is how long a wait goes unreported (default 1 s).
	ProgressAfter time.Duration
}

// PendingError is returned with a fully created pod when StartWait.Ctx
// ended the wait for its containers: nothing is rolled back, the pod is
// no CreatorLost debris for gc, and its supervisor goes on starting it.
type PendingError struct {
	// Pod is namespace/name.
	Pod string
	// WaitingFor is what the pod was waiting for ("init container setup").
	WaitingFor string
	// Err is the context's error (context.Canceled, DeadlineExceeded).
	Err error
}

func (e *PendingError) Error() string {
	return fmt.Sprintf("pod %s is created and still starting (waiting for %s): %v", e.Pod, e.WaitingFor, e.Err)
}

func (e *PendingError) Unwrap() error { return e.Err }

// CreateWait is CreateWithSources with a bounded, reported wait for the
// containers to start (StartWait).
func (m *Manager) CreateWait(p *corev1.Pod, src *manifest.Sources, wait StartWait) (rec *state.Record, err error) {
	return m.create(p, src, wait, "")
}

// create is CreateWait; a criClass runs the supervisor in CRI mode (a
// sandbox whose containers the kubelet adds and drives one by one) and
// names the sandbox's QoS class, which a pod's own is computed from its
// containers otherwise.
func (m *Manager) create(p *corev1.Pod, src *manifest.Sources, wait StartWait, criClass corev1.PodQOSClass) (rec *state.Record, err error) {
	cri := criClass != ""
	var undo cleanup.Stack
	var name *state.Held
	defer func() {
		var se *StartError
		if err != nil && !errors.As(err, &se) {
			if cerr := undo.Clean(); cerr != nil {
				err = fmt.Errorf("%w (and rollback failed: %v)", err, cerr)
			}
		}
		// Last: the rollback removed the name while still holding it.
		if name != nil {
			name.Unlock()
		}
	}()
	// A CRI sandbox's sysctls were admitted by the kubelet, against its
	// own --allowed-unsafe-sysctls (applySysctls still refuses any that is
	// not namespaced: a pod never changes the host).
	if !cri {
		if err := m.Admit(p); err != nil {
			return nil, err
		}
	}
	uid := newUID()
	p = p.DeepCopy()
	p.UID = types.UID(uid)
	tr := newTracer(m.o.Trace, "run", p.Namespace+"/"+p.Name)
	defer tr.done()
	class := criClass
	if !cri {
		class = manifest.QOSClass(&p.Spec)
	}
	rec, name, err = m.reserve(p, m.podCgroup(uid, class), &undo)
	if err != nil {
		return nil, err
	}
	if err := tr.step("reserve"); err != nil {
		return nil, err
	}
	if err := m.makeCgroupDirs(p, rec, &undo); err != nil {
		return nil, err
	}
	// The supervisor moves the first container's process into its v1
	// cgroups some 10 ms from now; the kernel's wait that move would start
	// with runs meanwhile (see cgroups.PrimeMigration). After the mkdirs:
	// the priming write holds cgroup_mutex through its wait, and a mkdir
	// in any hierarchy needs that mutex too.
	cgroups.PrimeMigration(m.cg)
	if err := tr.step("cgroup dirs"); err != nil {
		return nil, err
	}
	runDir := m.runDir(uid)
	// Unmounts the pod's tmpfs mounts (/dev/shm, memory emptyDirs) first.
	undo.Add(func() error { return removeRunDir(runDir) })
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create run dir %q: %w", runDir, err)
	}
	if err := tr.step("run dir"); err != nil {
		return nil, err
	}
	// The supervisor starts now and waits at its gate while the sandbox,
	// network, spec and cgroups are made: its exec and Go runtime start-up
	// (~2 ms) overlap them, and nothing of the pod runs before the gate
	// opens below, after the spec exists.
	sup, err := m.spawnSupervisor(rec, &undo)
	if err != nil {
		return nil, err
	}
	defer sup.close()
	if err := tr.step("supervisor spawned"); err != nil {
		return nil, err
	}
	sb, err := m.createSandbox(p, rec, &undo)
	if err != nil {
		return nil, err
	}
	if err := tr.step("sandbox"); err != nil {
		return nil, err
	}
	if err := applySysctls(p, sb); err != nil {
		return nil, err
	}
	if err := m.setupNetwork(p, rec, sb, &undo); err != nil {
		return nil, err
	}
	if err := tr.step("network"); err != nil {
		return nil, err
	}
	sp, err := m.buildSpec(p, rec, sb, src)
	if err != nil {
		return nil, err
	}
	sp.CRI = cri
	if err := tr.step("spec"); err != nil {
		return nil, err
	}
	if err := m.createCgroups(sp, rec); err != nil {
		return nil, err
	}
	if err := tr.step("cgroups"); err != nil {
		return nil, err
	}
	// The spec lives in the run dir, which does not outlive the boot: not
	// synced. Neither is this rewrite of the record, nor the next: what
	// survives a power cut is swept at the next boot, and the sweep needs
	// only what reserve wrote and synced (every resource is derived from
	// the uid; see withDerivedNames and sweepAfterReboot). An fsync here
	// cost a journal commit, 2–3 ms of each start.
	//
	// Encoded by jsonvalue: encoding/json would first build encoders for
	// the OCI spec's whole type tree (0.5–0.7 ms of this short process).
	b, err := jsonvalue.Marshal(sp)
	if err != nil {
		return nil, fmt.Errorf("failed to encode the spec of pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	if err := state.WriteBytesNoSync(layout.Run(runDir).Spec(), b); err != nil {
		return nil, err
	}
	if !cri {
		if err := writeDefaultContainer(layout.Run(runDir), p); err != nil {
			return nil, err
		}
	}
	if err := state.WriteJSONNoSync(m.recordPath(uid), rec); err != nil {
		return nil, err
	}
	if err := tr.step("spec and record"); err != nil {
		return nil, err
	}
	// From here the supervisor may have started containers: a rollback
	// kills it before anything else goes (the kill registered at the spawn
	// runs last, for a failure before the gate).
	undo.Add(func() error { return sup.proc.Signal(syscall.SIGKILL) })
	startErr, pending, err := m.awaitSupervisor(rec, sup, wait)
	if err != nil {
		return nil, err
	}
	if err := tr.step("supervisor and containers"); err != nil {
		return nil, err
	}
	rec.Phase = state.PhaseCreated
	rec.Creator = state.Proc{}
	if err := state.WriteJSONNoSync(m.recordPath(uid), rec); err != nil {
		return nil, err
	}
	if err := tr.step("record created"); err != nil {
		return nil, err
	}
	undo.Release()
	if pending != nil {
		return rec, pending
	}
	if startErr != "" {
		return rec, &StartError{Pod: rec.Namespace + "/" + rec.Name, Msg: startErr}
	}
	return rec, nil
}

// reserve claims the pod's namespace/name and records the pod (phase
// Creating, creator = this process) before anything is acquired, so a
// concurrent gc never takes a half-built pod for debris. The name index is
// made first, atomically (link(2) fails when the name exists) and already
// locked, under the root's lock: two records of one name cannot exist, and
// the name is held until the caller unlocks it (also when an error is
// returned with it: the caller's rollback removes it first).
func (m *Manager) reserve(p *corev1.Pod, cgroupParent string, undo *cleanup.Stack) (*state.Record, *state.Held, error) {
	// jsonvalue, not encoding/json: the manifest's validation walked the
	// pod with it already, and encoding/json would build encoders for
	// corev1.Pod's whole type tree first (1.1 ms of a run).
	raw, err := jsonvalue.Marshal(p)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to encode pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	uid := string(p.UID)
	rec := &state.Record{
		Version: state.Version, UID: uid, Name: p.Name, Namespace: p.Namespace,
		Phase: state.PhaseCreating, Creator: state.Self(), CreatedAt: time.Now().UTC(),
		Manifest: raw, CgroupParent: cgroupParent, CgroupDriver: m.cg.Name(),
	}
	unlock, err := state.Lock(m.lockPath())
	if err != nil {
		return nil, nil, err
	}
	defer unlock()
	name, err := state.CreateLocked(m.nameIndex(p.Namespace, p.Name), []byte(uid))
	if errors.Is(err, state.ErrExists) {
		return nil, nil, fmt.Errorf("pod %q in namespace %q: %w", p.Name, p.Namespace, ErrExists)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("failed to reserve the name of pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	// Registered first so that it runs last, once the pod dir is gone: the
	// helper mount goes with the root's last pod; the name just before.
	undo.Add(m.unbindHelperIfIdle)
	undo.Add(name.RemoveKeepLocked)
	dir := m.podDir(uid)
	undo.Add(func() error { return removeAll(dir) })
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, name, fmt.Errorf("failed to create pod dir %q: %w", dir, err)
	}
	if err := state.WriteJSON(m.recordPath(uid), rec); err != nil {
		return nil, name, err
	}
	// Under the lock, with this pod recorded: Remove unbinds the helper
	// only once the root holds no pod.
	if err := namespaces.BindHelperReadOnly(m.o.Init, m.helperMount()); err != nil {
		return nil, name, err
	}
	return rec, name, nil
}

func (m *Manager) sandboxOptions(rec *state.Record, p *corev1.Pod) namespaces.SandboxOptions {
	o := namespaces.SandboxOptions{RunDir: m.runDir(rec.UID), HostNetwork: p.Spec.HostNetwork, HostIPC: p.Spec.HostIPC}
	if !p.Spec.HostNetwork {
		o.NetnsName = m.netnsName(rec.UID)
		o.Hostname = manifest.Hostname(p)
	}
	return o
}

// reaperPIDNamespace stands in the spec for a shared PID namespace: that
// namespace exists only once the supervisor has started the pod's reaper,
// and the supervisor then points every container at /proc/<reaper>/ns/pid
// (supervisor.startReaper). The spec only needs to say it is joined.
const reaperPIDNamespace = "/proc/<reaper>/ns/pid"

// specNamespaces maps the namespaces the pod's containers join to their
// files: the sandbox's pins, plus the reaper's PID namespace when shared.
func specNamespaces(p *corev1.Pod, sb *namespaces.Sandbox) map[string]string {
	if p.Spec.ShareProcessNamespace == nil || !*p.Spec.ShareProcessNamespace {
		return sb.Paths
	}
	paths := maps.Clone(sb.Paths)
	paths[spec.NSPID] = reaperPIDNamespace
	return paths
}

// createSandbox pins the pod's shared namespaces.
func (m *Manager) createSandbox(p *corev1.Pod, rec *state.Record, undo *cleanup.Stack) (*namespaces.Sandbox, error) {
	o := m.sandboxOptions(rec, p)
	// Registered before the call: CreateSandbox may fail half-way, and
	// RemoveSandbox is idempotent.
	undo.Add(func() error { return namespaces.RemoveSandbox(o) })
	sb, err := namespaces.CreateSandbox(o)
	if err != nil {
		return nil, fmt.Errorf("failed to create sandbox of pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	rec.NetnsName = o.NetnsName
	return sb, nil
}

// setupNetwork gives the pod its IP on the bridge (or the host's address).
func (m *Manager) setupNetwork(p *corev1.Pod, rec *state.Record, sb *namespaces.Sandbox, undo *cleanup.Stack) error {
	if p.Spec.HostNetwork {
		rec.IP = hostIP()
		return nil
	}
	netns := sb.Paths[spec.NSNet]
	if m.o.Chain != nil {
		undo.Add(func() error { return m.o.Chain.Del(context.Background(), rec.UID, netns, cni.PodIfName) })
		ip, err := m.o.Chain.Add(context.Background(), rec.UID, netns, cni.PodIfName)
		if err != nil {
			return fmt.Errorf("failed to set up network of pod %s/%s through CNI chain %q: %w", p.Namespace, p.Name, m.o.Chain.Name(), err)
		}
		rec.IP = ip.String()
		return nil
	}
	if _, err := net.InterfaceByName(m.o.Network.Bridge); err != nil {
		// The network's first pod: say once what on this host would
		// silently drop pod traffic (a FORWARD policy of DROP, br_netfilter).
		for _, w := range m.unwarned(cni.Check(m.o.Network)) {
			fmt.Fprintf(m.o.Warn, "Warning: network %s: %s\n", m.o.Network.Bridge, w)
		}
	}
	// Registered before the call that may allocate half (a lease without a
	// veth); TeardownPod releases by owner and tolerates what is missing.
	undo.Add(func() error { return cni.TeardownPod(m.o.Network, netns, rec.UID, recordIP(rec)) })
	res, err := cni.SetupPod(m.o.Network, netns, rec.UID)
	if err != nil {
		return fmt.Errorf("failed to set up network of pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	rec.IP = res.IP.Addr().String()
	rec.HostVeth = res.HostVeth
	if maps := hostPorts(p); len(maps) > 0 {
		// TeardownPod (registered above) removes the mappings too.
		if err := cni.MapPorts(m.o.Network, rec.UID, res.IP.Addr(), maps); err != nil {
			return fmt.Errorf("failed to map host ports of pod %s/%s: %w", p.Namespace, p.Name, m.nameHolder(err))
		}
	}
	return nil
}

// hostPorts lists the pod's ports[].hostPort mappings.
func hostPorts(p *corev1.Pod) []cni.PortMapping {
	var out []cni.PortMapping
	for _, c := range p.Spec.Containers {
		for _, port := range c.Ports {
			if port.HostPort == 0 {
				continue
			}
			m := cni.PortMapping{HostPort: uint16(port.HostPort), ContainerPort: uint16(port.ContainerPort), Protocol: string(port.Protocol)}
			if port.HostIP != "" {
				if ip, err := netip.ParseAddr(port.HostIP); err == nil {
					m.HostIP = ip
				}
			}
			out = append(out, m)
		}
	}
	return out
}

// hostIP is a hostNetwork pod's IP: the host's first global IPv4 address.
func hostIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
			return ipn.IP.String()
		}
	}
	return ""
}

// buildSpec writes the pod's /etc files, makes its volume and rootfs
// directories and generates the supervisor's spec.
func (m *Manager) buildSpec(p *corev1.Pod, rec *state.Record, sb *namespaces.Sandbox, src *manifest.Sources) (*spec.Pod, error) {
	runDir, podDir := m.runDir(rec.UID), m.podDir(rec.UID)
	if err := m.prepareSources(p, rec, src); err != nil {
		return nil, err
	}
	hostResolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("failed to read /etc/resolv.conf: %w", err)
	}
	hostname, hosts, resolv, err := manifest.EtcFiles(p, rec.IP, hostResolv)
	if err != nil {
		return nil, err
	}
	etc := layout.Run(runDir).Etc()
	if err := os.MkdirAll(etc, 0o755); err != nil {
		return nil, fmt.Errorf("failed to create %q: %w", etc, err)
	}
	for name, data := range map[string][]byte{"hostname": hostname, "hosts": hosts, "resolv.conf": resolv} {
		if err := os.WriteFile(layout.Run(runDir).EtcFile(name), data, 0o644); err != nil {
			return nil, fmt.Errorf("failed to write %s of pod %s/%s: %w", name, p.Namespace, p.Name, err)
		}
	}
	// /dev/shm is one tmpfs bound into every container, so POSIX shared
	// memory is shared pod-wide like the IPC namespace; 64 MiB as runc's.
	// A host-IPC pod's containers bind the host's (manifest.HostShm).
	if !p.Spec.HostIPC {
		if err := namespaces.MountTmpfs(layout.Run(runDir).Shm(), 64<<20, 0o1777); err != nil {
			return nil, err
		}
	}
	for _, v := range p.Spec.Volumes {
		if v.EmptyDir == nil {
			continue
		}
		if v.EmptyDir.Medium == corev1.StorageMediumMemory {
			var size int64
			if v.EmptyDir.SizeLimit != nil {
				size = v.EmptyDir.SizeLimit.Value()
			}
			if err := namespaces.MountTmpfs(layout.Run(runDir).Volume(v.Name), size, 0o777); err != nil {
				return nil, fmt.Errorf("failed to create memory volume %q: %w", v.Name, err)
			}
			continue
		}
		if err := mkdirMode(layout.Pod(podDir).Volume(v.Name), 0o777); err != nil {
			return nil, err
		}
	}
	images, err := m.resolver()
	if err != nil {
		return nil, err
	}
	sp, warns, err := manifest.ToSpec(p, manifest.SpecInput{
		UID: rec.UID, RunDir: runDir, PodDir: podDir, Namespaces: specNamespaces(p, sb), IP: rec.IP,
		Images: images, CgroupParent: rec.CgroupParent, CgroupDriver: m.cg.Name(), Sources: src,
		BackoffInitialSeconds: m.o.BackoffInitialSeconds, BackoffMaxSeconds: m.o.BackoffMaxSeconds,
		SeccompDir: m.dirs().SeccompDir(), SeccompDefault: m.o.Pods.SeccompDefault,
	})
	if err != nil {
		return nil, fmt.Errorf("failed to build spec of pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	for _, w := range warns {
		fmt.Fprintf(m.o.Warn, "Warning: pod %s/%s: %s\n", p.Namespace, p.Name, w)
	}
	sp.Resources = withPidsLimit(sp.Resources, m.podPidsLimit())
	rec.ImageIDs = images.ids()
	for _, c := range append(append([]spec.Container{}, sp.InitContainers...), sp.Containers...) {
		if err := makeContainerDirs(&c); err != nil {
			return nil, err
		}
	}
	return sp, nil
}

func mkdirMode(dir string, mode os.FileMode) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("failed to create %q: %w", dir, err)
	}
	// MkdirAll is subject to the umask; sticky and world bits need chmod.
	if err := os.Chmod(dir, mode); err != nil {
		return fmt.Errorf("failed to chmod %q: %w", dir, err)
	}
	return nil
}

// makeCgroupDirs creates the pod's cgroup and its containers' (the paths
// buildSpec gives them), nothing set in them yet: createCgroups does that
// once the spec exists. Its rollback removes them, and whatever
// createCgroups adds.
func (m *Manager) makeCgroupDirs(p *corev1.Pod, rec *state.Record, undo *cleanup.Stack) error {
	undo.Add(func() error { return m.destroyCgroups(rec) })
	// The pod cgroup bounds the pod as a whole, as the kubelet's does.
	if err := m.cg.Create(rec.CgroupParent); err != nil {
		return fmt.Errorf("failed to create pod cgroup: %w", err)
	}
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range cs {
			if err := m.cg.Create(rec.CgroupParent + "/" + manifest.ContainerID(rec.UID, c.Name)); err != nil {
				return fmt.Errorf("failed to create cgroup of container %q: %w", c.Name, err)
			}
		}
	}
	return nil
}

// createCgroups sets the pod's and its containers' cgroups up from the
// spec (makeCgroupDirs made them and registered their rollback).
func (m *Manager) createCgroups(sp *spec.Pod, rec *state.Record) error {
	podRes := cgroupResources(sp.Resources)
	// The default limit is not worth refusing a pod on a host whose
	// hierarchy lacks the pids controller (the controller-less cgroup2 tree
	// of a hybrid host); a limit asked for is.
	podRes.PidsBestEffort = !m.o.Pods.PidsLimitSet
	if err := m.cg.Set(rec.CgroupParent, podRes); err != nil {
		return fmt.Errorf("failed to set pod resources: %w", err)
	}
	if err := m.setQoSParent(rec.CgroupParent); err != nil {
		return err
	}
	for _, c := range append(append([]spec.Container{}, sp.InitContainers...), sp.Containers...) {
		rec.ContainerCgroups = append(rec.ContainerCgroups, c.Cgroup)
		if err := m.createContainerCgroup(&c); err != nil {
			return err
		}
	}
	return nil
}

// createContainerCgroup makes one container's cgroup with its resources
// and device allow-list (a pod's containers at creation, a CRI container
// when the kubelet adds it); the caller undoes it.
func (m *Manager) createContainerCgroup(c *spec.Container) error {
	if err := m.cg.Create(c.Cgroup); err != nil {
		return fmt.Errorf("failed to create cgroup of container %q: %w", c.Name, err)
	}
	if err := m.cg.Set(c.Cgroup, cgroupResources(c.OCI.Linux.Resources)); err != nil {
		return fmt.Errorf("failed to set resources of container %q: %w", c.Name, err)
	}
	rules, err := devices.FromSpec(c.OCI.Linux)
	if err != nil {
		return fmt.Errorf("failed to read device rules of container %q: %w", c.Name, err)
	}
	if err := devices.Apply(m.cg, c.Cgroup, rules); err != nil {
		return fmt.Errorf("failed to restrict devices of container %q: %w", c.Name, err)
	}
	return nil
}

// makeContainerDirs creates a container's root, overlay upper and work
// dirs and its log dir.
func makeContainerDirs(c *spec.Container) error {
	for _, d := range []string{c.OCI.Root.Path, c.Rootfs.Upper, c.Rootfs.Work, filepath.Dir(c.LogPath)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("failed to create %q for container %q: %w", d, c.Name, err)
		}
	}
	return nil
}

// destroyCgroups kills and removes every cgroup of the pod, also those a
// record written before they were made does not name; idempotent.
func (m *Manager) destroyCgroups(rec *state.Record) error {
	var errs []error
	for _, path := range rec.ContainerCgroups {
		if err := m.cg.Destroy(path); err != nil {
			errs = append(errs, err)
		}
	}
	if err := m.destroyCgroupTree(rec.CgroupParent); err != nil {
		errs = append(errs, err)
	}
	if m.qosOfCgroup(rec.CgroupParent) == corev1.PodQOSBurstable {
		// The class's weight no longer counts this pod (its record is
		// Removing, or gone with a failed run's rollback).
		if err := m.updateBurstableShares(rec.UID); err != nil {
			fmt.Fprintf(m.o.Warn, "Warning: pod %s/%s: %v\n", rec.Namespace, rec.Name, err)
		}
	}
	return errors.Join(errs...)
}

// startingSupervisor is a supervisor spawned by run, waiting at its gate.
type startingSupervisor struct {
	proc state.Proc
	// report is the read end of its report pipe; gate the write end of
	// the pipe it waits on before it reads its spec.
	report, gate *os.File
}

// close closes both pipes; a supervisor still at its gate sees the end of
// the gate pipe and exits without starting anything.
func (s *startingSupervisor) close() {
	s.gate.Close()
	// Closing the report pipe early is harmless: the supervisor ignores
	// a failed report write (a pipe's EPIPE on fd 3 raises no SIGPIPE in
	// Go).
	s.report.Close()
}

// spawnSupervisor starts the pod's detached supervisor, which waits at its
// gate until awaitSupervisor opens it, and records it in rec.
func (m *Manager) spawnSupervisor(rec *state.Record, undo *cleanup.Stack) (*startingSupervisor, error) {
	gateR, gateW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("failed to create gate pipe of pod %s/%s: %w", rec.Namespace, rec.Name, err)
	}
	defer gateR.Close()
	sup, r, err := m.startSupervisor("run", m.runDir(rec.UID), gateR, supervisorFaultEnv...)
	if err != nil {
		gateW.Close()
		return nil, err
	}
	undo.Add(func() error { return sup.Signal(syscall.SIGKILL) })
	rec.Supervisor = sup
	return &startingSupervisor{proc: sup, report: r, gate: gateW}, nil
}

// awaitSupervisor opens the supervisor's gate and waits for its report:
// "" once every app container runs, or what failed to start. When
// wait.Ctx ends first, the supervisor is left to carry on and a
// *PendingError says what the pod was waiting for.
func (m *Manager) awaitSupervisor(rec *state.Record, sup *startingSupervisor, wait StartWait) (string, *PendingError, error) {
	runDir := m.runDir(rec.UID)
	if _, err := sup.gate.Write([]byte{supervisor.GateOpen}); err != nil {
		log, _ := os.ReadFile(layout.Run(runDir).SupervisorLog())
		return "", nil, fmt.Errorf("supervisor of pod %s/%s exited before its start (%v): %s", rec.Namespace, rec.Name, err, log)
	}
	sup.gate.Close()
	r := sup.report
	type result struct {
		rep supervisor.Report
		err error
	}
	got := make(chan result, 1)
	go func() {
		var res result
		res.err = json.NewDecoder(r).Decode(&res.rep)
		got <- res
	}()
	ctx := wait.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	after := wait.ProgressAfter
	if after <= 0 {
		after = time.Second
	}
	start := time.Now()
	// The report is the event waited for; the ticker only paces what the
	// user is told meanwhile (read from the supervisor's status file).
	tick := time.NewTicker(after)
	defer tick.Stop()
	said := ""
	for {
		select {
		case res := <-got:
			if res.err != nil {
				log, _ := os.ReadFile(layout.Run(runDir).SupervisorLog())
				return "", nil, fmt.Errorf("supervisor of pod %s/%s exited before reporting: %s", rec.Namespace, rec.Name, log)
			}
			if err := m.checkReportVersion(res.rep); err != nil {
				return "", nil, err
			}
			return res.rep.Error, nil, nil
		case <-ctx.Done():
			return "", &PendingError{Pod: rec.Namespace + "/" + rec.Name, WaitingFor: waitingFor(runDir), Err: ctx.Err()}, nil
		case <-tick.C:
			if w := waitingFor(runDir); wait.Progress != nil && w != said {
				said = w
				wait.Progress(w, time.Since(start))
			}
		}
	}
}

// waitingFor says what a starting pod waits for, from its status file:
// the first init container not yet completed, else the first app
// container not yet running.
func waitingFor(runDir string) string {
	st, err := state.ReadStatus(layout.Run(runDir).Status())
	if err != nil {
		return "its supervisor"
	}
	for _, c := range st.InitContainers {
		if c.State != state.StateTerminated || c.ExitCode != 0 {
			if c.Reason != "" {
				return fmt.Sprintf("init container %s (%s)", c.Name, c.Reason)
			}
			return "init container " + c.Name
		}
	}
	for _, c := range st.Containers {
		if c.State != state.StateRunning {
			return "container " + c.Name + " to start"
		}
	}
	return "its containers to start"
}

// startSupervisor starts `peapod-supervisor MODE RUNDIR` detached, its
// output appended to the pod's supervisor log, and returns it with the read
// end of its report pipe (fd 3 on its side), which the caller closes. A
// gate (fd 4 on its side) makes it wait for supervisor.GateOpen before it
// reads its spec.
func (m *Manager) startSupervisor(mode, runDir string, gate *os.File, extraEnv ...string) (state.Proc, *os.File, error) {
	logf, err := os.OpenFile(layout.Run(runDir).SupervisorLog(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return state.Proc{}, nil, fmt.Errorf("failed to open supervisor log: %w", err)
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return state.Proc{}, nil, fmt.Errorf("failed to create report pipe: %w", err)
	}
	cmd := exec.Command(m.o.Supervisor, mode, runDir)
	cmd.Dir = "/"
	// GOMAXPROCS=1: a supervisor mostly sleeps; one P means one mcache and
	// fewer threads resident per pod.
	cmd.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PEAPOD_INIT=" + m.helperMount(), "GOMAXPROCS=1"}, extraEnv...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{w}
	if gate != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, gate)
		cmd.Env = append(cmd.Env, supervisor.GateEnv+"=4")
	}
	cmd.Env, cmd.ExtraFiles = ktrace.PassExtraFiles(cmd.Env, cmd.ExtraFiles) // --debug: the supervisor and its inits trace to our stderr until the report
	// A session of its own: the supervisor outlives the CLI and no
	// terminal's SIGHUP or Ctrl-C reaches it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		return state.Proc{}, nil, fmt.Errorf("failed to start supervisor %q: %w", m.o.Supervisor, err)
	}
	// Reap it if it exits while we live (tests run many pods in one
	// process); once we exit, init adopts it.
	go cmd.Wait()
	return state.ProcOf(cmd.Process.Pid), r, nil
}

// checkReportVersion refuses a report of another protocol version.
func (m *Manager) checkReportVersion(rep supervisor.Report) error {
	if rep.Version != supervisor.ProtocolVersion {
		return fmt.Errorf("supervisor %q speaks %q, this peapod %q", m.o.Supervisor, rep.Version, supervisor.ProtocolVersion)
	}
	return nil
}

// removeRunDir unmounts the pod's tmpfs mounts under runDir, then removes
// it; RemoveAll alone would empty a mounted tmpfs and then fail on it.
func removeRunDir(runDir string) error {
	if err := namespaces.UnmountUnder(runDir); err != nil {
		return err
	}
	return removeAll(runDir)
}

// removeAll is os.RemoveAll with the path in the error.
func removeAll(path string) error {
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("failed to remove %q: %w", path, err)
	}
	return nil
}
