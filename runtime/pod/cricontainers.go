package pod

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/peapod/peapod/cgroups"
	"github.com/peapod/peapod/internal/cleanup"
	"github.com/peapod/peapod/manifest"
	"github.com/peapod/peapod/namespaces"
	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/spec"
	"github.com/peapod/peapod/runtime/state"
	"github.com/peapod/peapod/runtime/supervisor"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// Entry points for the CRI server's containers. A CRI sandbox's
// supervisor runs in CRI mode (spec.Pod.CRI): containers are added to the
// running pod one at a time and started, stopped and removed on request
// (the supervisor's cri-* operations); the kubelet owns restarts.

// ErrContainerNotFound: the pod has no container of that id.
var ErrContainerNotFound = errors.New("container not found")

// PodSpec returns the spec of the pod with that uid as its supervisor
// keeps it (with the containers it has now).
func (m *Manager) PodSpec(uid string) (*spec.Pod, error) {
	return spec.Load(layout.Run(m.runDir(uid)).Spec())
}

// BuildContainer converts container c (of the sandbox pod p, which does
// not list it) into the spec of a container of the pod with that uid,
// with runtime id id: image, command, env, user, capabilities, mounts of
// the pod's /etc files, cgroup under the pod's. The caller adds what a
// v1.Container cannot say.
func (m *Manager) BuildContainer(uid string, p *corev1.Pod, c *corev1.Container, id string) (*spec.Container, []string, error) {
	rec, err := state.ReadRecord(m.recordPath(uid))
	if err != nil {
		return nil, nil, fmt.Errorf("pod with uid %q: %w", uid, err)
	}
	sp, err := m.PodSpec(uid)
	if err != nil {
		return nil, nil, err
	}
	images, err := m.resolver()
	if err != nil {
		return nil, nil, err
	}
	return manifest.ContainerSpec(p, c, id, manifest.SpecInput{
		UID: uid, RunDir: m.runDir(uid), PodDir: m.podDir(uid), Namespaces: sp.Namespaces, IP: rec.IP,
		Images: images, CgroupParent: rec.CgroupParent, CgroupDriver: m.cg.Name(),
		BackoffInitialSeconds: m.o.BackoffInitialSeconds, BackoffMaxSeconds: m.o.BackoffMaxSeconds,
	})
}

// AddContainer creates c in the running CRI pod with that uid: its rootfs
// and writable directories, its cgroup with its limits and device rules,
// then the supervisor's record of it (created, not started). On error
// nothing of it remains.
func (m *Manager) AddContainer(uid string, c *spec.Container) (err error) {
	var undo cleanup.Stack
	defer func() {
		if err != nil {
			if cerr := undo.Clean(); cerr != nil {
				err = fmt.Errorf("%w (and rollback failed: %v)", err, cerr)
			}
		}
	}()
	undo.Add(func() error { return m.removeContainerDirs(uid, c) })
	if err := makeContainerDirs(c); err != nil {
		return err
	}
	undo.Add(func() error { return m.cg.Destroy(c.Cgroup) })
	if err := m.createContainerCgroup(c); err != nil {
		return err
	}
	// A kubelet starts a container right after creating it: the kernel's
	// wait that the start's cgroup migration would begin with runs now
	// (see cgroups.PrimeMigration). After the mkdir, which the priming
	// write would hold up (it keeps cgroup_mutex through its wait).
	cgroups.PrimeMigration(m.cg)
	if err := supervisor.Call(m.runDir(uid), supervisor.Request{Op: supervisor.OpCRICreate, CRIContainer: c}); err != nil {
		return fmt.Errorf("failed to create container %q: %w", c.Name, err)
	}
	return nil
}

// removeContainerDirs removes c's writable layer and rootfs mount point
// (the container's log belongs to whoever named its path).
func (m *Manager) removeContainerDirs(uid string, c *spec.Container) error {
	upper := layout.Pod(m.podDir(uid)).Upper(c.Name)
	return errors.Join(removeAll(filepath.Dir(upper)), removeAll(layout.Run(m.runDir(uid)).Rootfs(c.Name)))
}

// containerCall sends a cri-* request about container id to the pod's
// supervisor; ErrContainerNotFound when it does not know the container.
func (m *Manager) containerCall(uid, id string, req supervisor.Request) error {
	req.ContainerID = id
	err := supervisor.Call(m.runDir(uid), req)
	if errors.Is(err, supervisor.ErrContainerNotFound) {
		return fmt.Errorf("container %q of pod %s: %w", id, uid, ErrContainerNotFound)
	}
	return err
}

// StartContainer starts a created container; it returns once the
// container's entrypoint was exec'd.
func (m *Manager) StartContainer(uid, id string) error {
	return m.containerCall(uid, id, supervisor.Request{Op: supervisor.OpCRIStart})
}

// StopContainer stops a container with grace seconds before SIGKILL; one
// that does not run is stopped already, and so is any container of a pod
// whose supervisor finished.
func (m *Manager) StopContainer(uid, id string, grace int64) error {
	v, err := m.GetByUID(uid)
	if err != nil {
		return err
	}
	if v.Final || !v.SupervisorAlive {
		return nil
	}
	return m.containerCall(uid, id, supervisor.Request{Op: supervisor.OpCRIStop, GracePeriodSeconds: &grace})
}

// ReopenContainerLog makes a running container's log writer reopen its
// path (the kubelet renamed the file to rotate it).
func (m *Manager) ReopenContainerLog(uid, id string) error {
	return m.containerCall(uid, id, supervisor.Request{Op: supervisor.OpCRIReopenLog})
}

// RemoveContainer removes a container: killed at once if it runs,
// forgotten by the supervisor, its cgroup and directories gone. A
// container the pod does not have is removed already. In a pod whose
// supervisor finished (a stopped sandbox) the spec and status files are
// rewritten without it.
func (m *Manager) RemoveContainer(uid, id string) error {
	v, err := m.GetByUID(uid)
	if err != nil {
		return err
	}
	sp, err := m.PodSpec(uid)
	if err != nil {
		return err
	}
	c := criContainerByID(sp, id)
	if c == nil {
		return nil
	}
	if v.Final || !v.SupervisorAlive {
		if err := m.forgetContainer(uid, sp, id); err != nil {
			return err
		}
	} else if err := m.containerCall(uid, id, supervisor.Request{Op: supervisor.OpCRIRemove}); err != nil && !errors.Is(err, ErrContainerNotFound) {
		return err
	}
	// The supervisor killed its processes; the cgroup is empty.
	return errors.Join(m.cg.Destroy(c.Cgroup), m.removeContainerDirs(uid, c))
}

// forgetContainer rewrites the spec and status of a pod whose supervisor
// finished (nobody else writes them then) without container id.
func (m *Manager) forgetContainer(uid string, sp *spec.Pod, id string) error {
	run := layout.Run(m.runDir(uid))
	kept := sp.Containers[:0]
	for _, c := range sp.Containers {
		if c.ID != id {
			kept = append(kept, c)
		}
	}
	sp.Containers = kept
	// The run dir does not outlive the boot: its files are not synced.
	if err := state.WriteJSONNoSync(run.Spec(), sp); err != nil {
		return err
	}
	st, err := state.ReadStatus(run.Status())
	if errors.Is(err, state.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	ks := st.Containers[:0]
	for _, c := range st.Containers {
		if c.ID != id {
			ks = append(ks, c)
		}
	}
	st.Containers = ks
	return state.WriteJSONNoSync(run.Status(), st)
}

// ErrExecTimeout: ExecSync's command did not finish in time (it was
// killed).
var ErrExecTimeout = errors.New("exec timed out")

// ExecSync runs argv in the running container id of pod uid, as the
// container's own process (env, user, working dir, capabilities), and
// returns its stdout, stderr (each capped at max bytes) and exit code. A
// timeout above zero kills the command and returns ErrExecTimeout.
func (m *Manager) ExecSync(uid, id string, argv []string, timeout time.Duration, max int64) (stdout, stderr []byte, code int, err error) {
	p, c, err := m.criExecProfile(uid, id)
	if err != nil {
		return nil, nil, -1, err
	}
	helper, err := m.execHelper()
	if err != nil {
		return nil, nil, -1, err
	}
	var out, errb capped
	out.max, errb.max = max, max
	cmd := p.Command(namespaces.ExecRequest{Helper: helper, Args: argv, Stdout: &out, Stderr: &errb})
	if err := cmd.Start(); err != nil {
		return nil, nil, -1, fmt.Errorf("failed to exec %q in container %q: %w", argv, c.Name, err)
	}
	done := make(chan unix.WaitStatus, 1)
	go func() {
		cmd.Wait()
		var ws unix.WaitStatus
		if st, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
			ws = unix.WaitStatus(st)
		}
		done <- ws
	}()
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-done:
	case <-expired:
		// The command runs as the helper's child inside the container's
		// PID namespace: its tree dies leaves first, so each parent reaps
		// its child and nothing is left to the container's init.
		supervisor.KillTree(cmd.Process, done)
		return out.Bytes(), errb.Bytes(), -1, fmt.Errorf("command %q in container %q: %w after %v", argv, c.Name, ErrExecTimeout, timeout)
	}
	return out.Bytes(), errb.Bytes(), cmd.ProcessState.ExitCode(), nil
}

// capped keeps the first max bytes written to it and discards the rest.
type capped struct {
	bytes.Buffer
	max int64
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - int64(c.Len()); room > 0 {
		if int64(len(p)) > room {
			c.Buffer.Write(p[:room])
		} else {
			c.Buffer.Write(p)
		}
	}
	return len(p), nil
}

var _ io.Writer = (*capped)(nil)

// criExecProfile looks up the running CRI container id of pod uid and its
// exec profile (see Manager.execProfile).
func (m *Manager) criExecProfile(uid, id string) (namespaces.ExecProfile, *spec.Container, error) {
	v, err := m.GetByUID(uid)
	if err != nil {
		return namespaces.ExecProfile{}, nil, err
	}
	sp, err := m.PodSpec(uid)
	if err != nil {
		return namespaces.ExecProfile{}, nil, err
	}
	c := criContainerByID(sp, id)
	var st *state.ContainerStatus
	if v.Status != nil {
		for i := range v.Status.Containers {
			if v.Status.Containers[i].ID == id {
				st = &v.Status.Containers[i]
			}
		}
	}
	if c == nil {
		return namespaces.ExecProfile{}, nil, fmt.Errorf("container %q of pod %s: %w", id, uid, ErrContainerNotFound)
	}
	if st == nil || st.State != state.StateRunning || !st.Proc.Alive() {
		return namespaces.ExecProfile{}, nil, fmt.Errorf("container %q is not running", c.Name)
	}
	if p, ok, err := m.readExecProfile(uid, c.Name); err != nil || (ok && p.Target == st.Proc.PID) {
		return p, c, err
	}
	p, err := m.makeExecProfile(st.Proc.PID, c)
	return p, c, err
}

// CRIExecCommand is ExecCommand for the CRI container id of pod uid: the
// streaming server's exec without a tty; the caller sets its streams.
func (m *Manager) CRIExecCommand(uid, id string, argv []string) (*exec.Cmd, error) {
	p, _, err := m.criExecProfile(uid, id)
	if err != nil {
		return nil, err
	}
	helper, err := m.execHelper()
	if err != nil {
		return nil, err
	}
	return p.Command(namespaces.ExecRequest{Helper: helper, Args: argv}), nil
}

// CRIExecTerminal is ExecTerminal for the CRI container id of pod uid.
func (m *Manager) CRIExecTerminal(uid, id string, argv []string, term string) (cmd *exec.Cmd, master, slave *os.File, err error) {
	p, _, err := m.criExecProfile(uid, id)
	if err != nil {
		return nil, nil, nil, err
	}
	return m.terminal(p, argv, term, fmt.Sprintf("pod %s", uid))
}

// UpdateContainerResources rewrites the CPU and memory limits of CRI
// container id of the running pod uid to r (zero fields are left as they
// are) and records them in its spec. The pod cgroup keeps its own limits:
// the container's grow and shrink under it in the order resizeOrdered
// keeps. A memory limit below the container's working set now is refused
// rather than left to the OOM killer. ErrContainerNotFound when the pod
// has no such container or it has exited.
func (m *Manager) UpdateContainerResources(uid, id string, r *specs.LinuxResources) error {
	v, err := m.GetByUID(uid)
	if err != nil {
		return err
	}
	rec := v.Record
	if v.Final || !v.SupervisorAlive {
		return fmt.Errorf("container %q of pod %s: the pod is stopped: %w", id, uid, ErrContainerNotFound)
	}
	sp, err := m.PodSpec(uid)
	if err != nil {
		return err
	}
	c := criContainerByID(sp, id)
	if c == nil {
		return fmt.Errorf("container %q of pod %s: %w", id, uid, ErrContainerNotFound)
	}
	if v.Status != nil {
		for _, st := range v.Status.Containers {
			if st.ID == id && st.State == state.StateTerminated {
				return fmt.Errorf("container %q of pod %s has exited: %w", c.Name, uid, ErrContainerNotFound)
			}
		}
	}
	cg, err := m.driverFor(rec)
	if err != nil {
		return err
	}
	oldRes, newRes := cgroupResources(c.OCI.Linux.Resources), cgroupResources(r)
	if newRes.MemoryLimit > 0 {
		now, err := cgroups.ReadStats(cg, c.Cgroup)
		if err != nil {
			return fmt.Errorf("failed to read stats of container %q of pod %s: %w", c.Name, uid, err)
		}
		if now.Has[cgroups.StatMemory] && newRes.MemoryLimit < now.MemoryWorkingSet {
			return fmt.Errorf("container %q of pod %s uses %d bytes now: a memory limit of %d bytes is below it: %w",
				c.Name, uid, now.MemoryWorkingSet, newRes.MemoryLimit, ErrResourceBelowUsage)
		}
	}
	if err := resizeOrdered(cg, rec.CgroupParent, c.Cgroup, "container "+c.Name, oldRes, newRes, cgroups.Resources{}); err != nil {
		return fmt.Errorf("pod %s: %w", uid, err)
	}
	return m.containerCall(uid, id, supervisor.Request{Op: supervisor.OpCRIUpdate, CRIResources: r})
}

// ErrResourceBelowUsage: a new limit is below what the container uses.
var ErrResourceBelowUsage = errors.New("limit below current usage")

// CRIAttach is Attach for the CRI container id of pod uid: the streaming
// server's attach, through the same supervisor operation as `peapod
// attach` (the supervisor holds the pty master or the stdin pipe for the
// container's life). ErrContainerNotFound when the pod has no such
// container.
func (m *Manager) CRIAttach(uid, id string, streams supervisor.AttachStreams) error {
	sp, err := m.PodSpec(uid)
	if err != nil {
		return err
	}
	for i := range sp.Containers {
		if c := &sp.Containers[i]; c.ID == id {
			return supervisor.Attach(m.runDir(uid), c.Name, streams, nil)
		}
	}
	return fmt.Errorf("container %q of pod %s: %w", id, uid, ErrContainerNotFound)
}

// criContainerByID is the CRI container with that id in sp, or nil.
func criContainerByID(sp *spec.Pod, id string) *spec.Container {
	for i := range sp.Containers {
		if sp.Containers[i].ID == id {
			return &sp.Containers[i]
		}
	}
	return nil
}
