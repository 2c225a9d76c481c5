package pod

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/peapod/peapod/cni"
	"github.com/peapod/peapod/namespaces"
	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/spec"
	"github.com/peapod/peapod/runtime/state"
	"github.com/peapod/peapod/runtime/supervisor"
	corev1 "k8s.io/api/core/v1"
)

// Stop stops a pod gracefully and finally: restarts cease, preStop hooks
// run, the stop signal, the grace period, SIGKILL; then the pod's network
// is released. Status and logs stay until Remove.
func (m *Manager) Stop(ns, name string, grace *int64) error {
	// The name lock only to wait for a run of this name to finish: held
	// through a grace period it would keep rm -f waiting.
	h, err := m.lockName(ns, name)
	if err != nil {
		return err
	}
	rec, err := state.ReadRecord(m.recordPath(string(h.Data)))
	h.Unlock()
	if err != nil {
		return fmt.Errorf("pod %s/%s: %w", ns, name, err)
	}
	if rec.Phase == state.PhaseCreating || rec.Phase == state.PhaseRemoving {
		return fmt.Errorf("pod %s/%s is %s: %s", ns, name, m.view(rec).Reason, m.view(rec).Message)
	}
	defer m.holdAdoption(rec)() // no replacement supervisor meanwhile
	// Without a grace period nothing of the pod gets to use the network
	// again, so it goes while the processes are being killed: the veth's
	// delete waits for an RCU grace period (15–30 ms here), the kill for
	// the processes to exit, and neither needs the other. With one, the
	// containers keep their network until they have exited.
	// release releases the network after the kill; settle is what an
	// error return before it must wait for (the early release, which must
	// not outlive the call).
	release := func() error { return m.releaseNetwork(rec) }
	settle := func() error { return nil }
	if grace != nil && *grace == 0 {
		netErr := make(chan error, 1)
		go func() { netErr <- m.releaseNetwork(rec) }()
		release = func() error { return <-netErr }
		settle = release
	}
	v := m.view(rec)
	if v.SupervisorAlive {
		err := supervisor.Call(m.runDir(rec.UID), supervisor.Request{Op: supervisor.OpStop, GracePeriodSeconds: grace})
		if err != nil && !errors.Is(err, supervisor.ErrNoSupervisor) {
			return errors.Join(fmt.Errorf("failed to stop pod %s/%s: %w", ns, name, err), settle())
		}
	}
	// Whatever the supervisor did (or if it is gone), nothing of the pod
	// may run after stop.
	if err := m.killAll(rec); err != nil {
		return errors.Join(err, settle())
	}
	if err := release(); err != nil {
		return err
	}
	rec.Phase = state.PhaseStopped
	return state.WriteJSON(m.recordPath(rec.UID), rec)
}

// killNowWait bounds how long rm -f waits for a live supervisor to kill
// and reap the pod's processes before it kills everything itself.
const killNowWait = 2 * time.Second

// Remove deletes a pod. A running pod is refused unless force, which kills
// everything at once (SIGKILL), like podman rm -f. It holds the pod's name
// lock throughout, so it waits for a run of the same name to finish (or
// roll back) and removes a whole pod. The record says Removing before
// anything is torn down: if this rm dies half-way, ps says so and gc
// finishes the removal. A record that cannot be read is removed (with
// force) from the live facts still found: the uid in the name index, the
// run dir, pins, cgroups and lease named after it, and the supervisor.
func (m *Manager) Remove(ns, name string, force bool) error {
	tr := newTracer(m.o.Trace, "rm", ns+"/"+name)
	defer tr.done()
	h, err := m.lockName(ns, name)
	if err != nil {
		return err
	}
	defer h.Unlock()
	if err := tr.step("lock"); err != nil {
		return err
	}
	uid := string(h.Data)
	rec, recErr := state.ReadRecord(m.recordPath(uid))
	if recErr != nil {
		if !force && !errors.Is(recErr, state.ErrNotFound) {
			return fmt.Errorf("pod %s/%s: %w; rm -f removes it from what it can still find", ns, name, recErr)
		}
		rec = m.salvage(uid, ns, name)
	}
	releaseAdoption := m.holdAdoption(rec) // no replacement supervisor meanwhile
	defer releaseAdoption()
	v := m.view(rec)
	if !force && rec.Phase != state.PhaseRemoving && v.SupervisorAlive && !v.Final {
		return fmt.Errorf("pod %s/%s: %w: stop it first, or use rm -f", ns, name, ErrRunning)
	}
	if recErr == nil {
		rec.Phase, rec.Remover = state.PhaseRemoving, state.Self()
		// Unsynced: the pod goes anyway, and a power cut takes its
		// processes and run dir with it (the reboot sweep does the rest).
		if err := state.WriteJSONNoSync(m.recordPath(uid), rec); err != nil {
			return fmt.Errorf("failed to mark pod %s/%s as being removed: %w", ns, name, err)
		}
	}
	// No new exec by the fast path (cmd/peapod/internal/fastexec), which
	// reads no record: without the profiles it leaves exec to Go, which
	// refuses a pod being removed.
	os.RemoveAll(layout.Run(m.runDir(uid)).ExecDir())
	if err := tr.step("marked removing"); err != nil {
		return err
	}
	if v.SupervisorAlive && !v.Final {
		m.quiesce(rec, v)
	}
	if err := m.purge(rec, h, tr); err != nil {
		return err
	}
	// Lock order (see lockPath): never the root's lock while holding an
	// adopt.lock — gc waits for adopt.lock under the root's lock.
	releaseAdoption()
	return m.unbindHelperIfIdle()
}

// purge removes everything of a pod, its record and, last, its name
// (with the name's lock held, so a waiter finds it gone).
func (m *Manager) purge(rec *state.Record, name *state.Held, tr *tracer) error {
	if err := m.releaseResources(rec, tr); err != nil {
		return err
	}
	if err := removeAll(m.podDir(rec.UID)); err != nil {
		return err
	}
	if err := tr.step("pod dir"); err != nil {
		return err
	}
	if name != nil {
		if err := name.RemoveKeepLocked(); err != nil {
			return err
		}
	}
	return tr.step("name")
}

// salvage makes the record of a pod whose record cannot be read (or is
// gone) from what the host still shows under its uid: every host-global
// name is derived from the uid, the lease is released by owner, and the
// container cgroups are those of its spec (DestroyTree finds the rest).
func (m *Manager) salvage(uid, ns, name string) *state.Record {
	rec := &state.Record{
		Version: state.Version, UID: uid, Namespace: ns, Name: name,
		CgroupParent: m.findPodCgroup(uid), CgroupDriver: m.cg.Name(), NetnsName: m.netnsName(uid),
	}
	if sp, err := spec.Load(layout.Run(m.runDir(uid)).Spec()); err == nil {
		for _, c := range append(append([]spec.Container{}, sp.InitContainers...), sp.Containers...) {
			rec.ContainerCgroups = append(rec.ContainerCgroups, c.Cgroup)
		}
	}
	return rec
}

// quiesce prepares a running pod for rm -f. It stops the supervisor
// (SIGSTOP), so it can neither restart a container nor start an exec, and
// looks at its children. Container main processes and the reaper die with
// the cgroups below, and the stopped supervisor with SIGKILL, as before.
// Any other child — an exec probe or hook, a container still in its init
// stage, the prober — may have a process in the pod's PID namespace that,
// killed together with its parent, would be left to the host's PID 1 to
// reap, and the container's init waits for that in zap_pid_ns_processes
// (seconds on some VMs). Then the supervisor resumes and stops the pod
// itself, reaping on the way (supervisor.KillNow); one that does not
// answer in time is killed with the rest.
func (m *Manager) quiesce(rec *state.Record, v *View) {
	st := v.Status
	if st == nil {
		_ = supervisor.KillNow(m.runDir(rec.UID), killNowWait)
		return
	}
	if err := st.Supervisor.Signal(syscall.SIGSTOP); err != nil {
		return
	}
	known := map[int]bool{}
	if st.Reaper.PID > 0 {
		known[st.Reaper.PID] = true
	}
	for _, c := range append(append([]state.ContainerStatus{}, st.InitContainers...), st.Containers...) {
		if c.Proc.PID > 0 {
			known[c.Proc.PID] = true
		}
	}
	for _, pid := range supervisor.Children(st.Supervisor.PID) {
		if !known[pid] {
			_ = st.Supervisor.Signal(syscall.SIGCONT)
			_ = supervisor.KillNow(m.runDir(rec.UID), killNowWait)
			return
		}
	}
}

// helperMount is where peapod-init is bound read-only for this root's
// pods (see namespaces.BindHelperReadOnly).
func (m *Manager) helperMount() string { return m.dirs().HelperMount() }

// ensureHelper binds this release's helper when the root has none yet: its
// pods were all made by an older release, whose supervisors use the
// legacy mount (layout.HelperMount says why the two differ).
func (m *Manager) ensureHelper() error {
	if namespaces.HelperBound(m.o.Init, m.helperMount()) {
		return nil
	}
	unlock, err := state.Lock(m.lockPath())
	if err != nil {
		return err
	}
	defer unlock()
	return namespaces.BindHelperReadOnly(m.o.Init, m.helperMount())
}

// unbindHelperIfIdle removes the read-only helper mount once the root
// holds no pod: it exists exactly while pods (which restart containers and
// run exec probes through it) do. It takes the root's lock, as run's
// reservation does.
func (m *Manager) unbindHelperIfIdle() error {
	unlock, err := state.Lock(m.lockPath())
	if err != nil {
		return err
	}
	defer unlock()
	return m.unbindHelperIfIdleLocked()
}

// unbindHelperIfIdleLocked is unbindHelperIfIdle for a caller holding the
// root's lock.
func (m *Manager) unbindHelperIfIdleLocked() error {
	entries, err := os.ReadDir(m.dirs().PodsDir())
	if err != nil {
		return fmt.Errorf("failed to list pods: %w", err)
	}
	if len(entries) > 0 {
		return nil
	}
	err = errors.Join(namespaces.UnbindHelper(m.helperMount()), namespaces.UnbindHelper(m.dirs().LegacyHelperMount()))
	// The protocol's directory goes with its mount point (an older
	// release's bin/ holds its mount point directly).
	if rmErr := os.Remove(filepath.Dir(m.helperMount())); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
		err = errors.Join(err, fmt.Errorf("failed to remove %s: %w", filepath.Dir(m.helperMount()), rmErr))
	}
	return err
}

// killAll SIGKILLs the supervisor, the reaper and every process in the
// pod's cgroups. Idempotent. The supervisor is found from the status and
// the record and, when either does not name it, from /proc (its command
// line names the run dir): a run killed right after spawning it, or a
// garbled status, must not leave a supervisor behind.
func (m *Manager) killAll(rec *state.Record) error {
	runDir := m.runDir(rec.UID)
	st, _ := state.ReadStatus(layout.Run(runDir).Status())
	if st != nil {
		st.Supervisor.Signal(syscall.SIGKILL)
		st.Reaper.Signal(syscall.SIGKILL)
	}
	rec.Supervisor.Signal(syscall.SIGKILL)
	if st == nil || rec.Supervisor.PID == 0 {
		for _, sup := range supervisorsOf(runDir) {
			// Its reaper is known only to it: stop it so it forks no more,
			// kill its children, then it.
			sup.Signal(syscall.SIGSTOP)
			for _, pid := range supervisor.Children(sup.PID) {
				state.ProcOf(pid).Signal(syscall.SIGKILL)
			}
			sup.Signal(syscall.SIGKILL)
		}
	}
	var errs []error
	for _, path := range rec.ContainerCgroups {
		if err := m.cg.Kill(path); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// supervisorsOf finds the supervisor processes of a run dir by their
// command line, "peapod-supervisor run RUNDIR" (or adopt RUNDIR).
func supervisorsOf(runDir string) []state.Proc {
	entries, _ := os.ReadDir("/proc")
	var out []state.Proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
		if len(args) == 3 && (args[1] == "run" || args[1] == "adopt") && args[2] == runDir {
			out = append(out, state.ProcOf(pid))
		}
	}
	return out
}

// recordIP is the pod address rec names, or the zero Addr when it names
// none (a pod whose network was never made, a garbled record): the lease is
// then found by owner.
func recordIP(rec *state.Record) netip.Addr {
	ip, _ := netip.ParseAddr(rec.IP)
	return ip
}

// releaseNetwork removes the pod's veth, lease and namespace pins.
func (m *Manager) releaseNetwork(rec *state.Record) error {
	var errs []error
	if rec.NetnsName != "" {
		netns := layout.NetnsPath(rec.NetnsName)
		var err error
		if m.o.Chain != nil {
			err = m.o.Chain.Del(context.Background(), rec.UID, netns, cni.PodIfName)
		} else if _, serr := os.Stat(m.o.Network.DataDir); serr == nil {
			// Without the network's data dir no lease and no veth of this
			// root exist (and TeardownPod would make the dir).
			err = cni.TeardownPod(m.o.Network, netns, rec.UID, recordIP(rec))
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	o := namespaces.SandboxOptions{RunDir: m.runDir(rec.UID), NetnsName: rec.NetnsName, HostNetwork: rec.NetnsName == ""}
	if err := namespaces.RemoveSandbox(o); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// releaseResources tears down everything a pod holds on the host except
// its record: processes, cgroups, network, pins, run dir. Idempotent, and
// works whatever state a crash left: a record written before the network
// and cgroups were (phase Creating) names none of them, so every name is
// derived from the uid again here.
func (m *Manager) releaseResources(rec *state.Record, tr *tracer) error {
	rec = m.withDerivedNames(rec)
	var errs []error
	// The network goes while the processes are killed and their cgroups
	// removed: all of it mostly waits on the kernel — the killed processes
	// to leave their cgroups, the synchronous veth delete (15–30 ms here)
	// — and neither needs the other, so they wait side by side. A pod
	// that is going has no use for its network any more.
	netErr := make(chan error, 1)
	go func() { netErr <- m.releaseNetwork(rec) }()
	if err := m.killAll(rec); err != nil {
		errs = append(errs, err)
	}
	if err := tr.step("kill"); err != nil {
		return errors.Join(err, <-netErr)
	}
	if err := m.destroyCgroups(rec); err != nil {
		errs = append(errs, err)
	}
	if err := <-netErr; err != nil {
		errs = append(errs, err)
	}
	if err := tr.step("cgroups and network"); err != nil {
		return err
	}
	// Last: releaseNetwork unmounted the namespace pins inside the run dir.
	if err := removeRunDir(m.runDir(rec.UID)); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("failed to release pod %s/%s: %w", rec.Namespace, rec.Name, err)
	}
	return tr.step("run dir")
}

// withDerivedNames returns rec with the host-global names that its uid
// determines filled in where the record does not say them yet.
func (m *Manager) withDerivedNames(rec *state.Record) *state.Record {
	r := *rec
	if r.CgroupParent == "" {
		r.CgroupParent = m.CgroupRoot() + "/" + r.UID
	}
	if r.NetnsName == "" && r.Phase != state.PhaseCreated && r.Phase != state.PhaseStopped {
		var p corev1.Pod
		if manifestOf(&r, &p) != nil || !p.Spec.HostNetwork {
			r.NetnsName = m.netnsName(r.UID)
		}
	}
	return &r
}
