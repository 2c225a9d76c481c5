package pod

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/peapod/peapod/cni"
	"github.com/peapod/peapod/namespaces"
	"github.com/peapod/peapod/runtime/state"
	"github.com/peapod/peapod/runtime/supervisor"
)

// Stop stops a pod gracefully and finally: restarts cease, preStop hooks
// run, the stop signal, the grace period, SIGKILL; then the pod's network
// is released. Status and logs stay until Remove.
func (m *Manager) Stop(ns, name string, grace *int64) error {
	rec, err := m.lookup(ns, name)
	if err != nil {
		return err
	}
	defer m.holdAdoption(rec)() // no replacement supervisor meanwhile
	v := m.view(rec)
	if v.SupervisorAlive {
		err := supervisor.Call(m.runDir(rec.UID), supervisor.Request{Op: supervisor.OpStop, GracePeriodSeconds: grace})
		if err != nil && !errors.Is(err, supervisor.ErrNoSupervisor) {
			return fmt.Errorf("failed to stop pod %s/%s: %w", ns, name, err)
		}
	}
	// Whatever the supervisor did (or if it is gone), nothing of the pod
	// may run after stop.
	if err := m.killAll(rec); err != nil {
		return err
	}
	if err := m.releaseNetwork(rec); err != nil {
		return err
	}
	rec.Phase = state.PhaseStopped
	return state.WriteJSON(m.recordPath(rec.UID), rec)
}

// killNowWait bounds how long rm -f waits for a live supervisor to kill
// and reap the pod's processes before it kills everything itself.
const killNowWait = 2 * time.Second

// Remove deletes a pod. A running pod is refused unless force, which kills
// everything at once (SIGKILL), like podman rm -f.
func (m *Manager) Remove(ns, name string, force bool) error {
	rec, err := m.lookup(ns, name)
	if err != nil {
		return err
	}
	defer m.holdAdoption(rec)() // no replacement supervisor meanwhile
	v := m.view(rec)
	if !force {
		if v.SupervisorAlive && !v.Final {
			return fmt.Errorf("pod %s/%s: %w: stop it first, or use rm -f", ns, name, ErrRunning)
		}
		if rec.Phase == state.PhaseCreating && rec.Creator.Alive() {
			return fmt.Errorf("pod %s/%s is still being created by pid %d", ns, name, rec.Creator.PID)
		}
	}
	if v.SupervisorAlive && !v.Final {
		m.quiesce(rec, v)
	}
	if err := m.releaseResources(rec); err != nil {
		return err
	}
	if err := m.removeNameIndex(rec); err != nil {
		return err
	}
	if err := removeAll(m.podDir(rec.UID)); err != nil {
		return err
	}
	return m.unbindHelperIfIdle()
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
func (m *Manager) helperMount() string { return filepath.Join(m.o.RunRoot, "bin", "peapod-init") }

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
	entries, err := os.ReadDir(filepath.Join(m.o.Root, "pods"))
	if err != nil {
		return fmt.Errorf("failed to list pods: %w", err)
	}
	if len(entries) > 0 {
		return nil
	}
	return namespaces.UnbindHelper(m.helperMount())
}

// killAll SIGKILLs the supervisor, the reaper and every process in the
// pod's cgroups. Idempotent.
func (m *Manager) killAll(rec *state.Record) error {
	st, _ := state.ReadStatus(filepath.Join(m.runDir(rec.UID), supervisor.StatusFile))
	if st != nil {
		st.Supervisor.Signal(syscall.SIGKILL)
		st.Reaper.Signal(syscall.SIGKILL)
	}
	rec.Supervisor.Signal(syscall.SIGKILL)
	var errs []error
	for _, path := range rec.ContainerCgroups {
		if err := m.cg.Kill(path); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// releaseNetwork removes the pod's veth, lease and namespace pins.
func (m *Manager) releaseNetwork(rec *state.Record) error {
	var errs []error
	if rec.NetnsName != "" {
		netns := filepath.Join("/run/netns", rec.NetnsName)
		var err error
		if m.o.Chain != nil {
			err = m.o.Chain.Del(context.Background(), rec.UID, netns, cni.PodIfName)
		} else {
			err = cni.TeardownPod(m.o.Network, netns, rec.UID)
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
// works whatever state a crash left.
func (m *Manager) releaseResources(rec *state.Record) error {
	tr := newTracer(m.o.Trace, "release "+rec.Namespace+"/"+rec.Name)
	defer tr.done()
	var errs []error
	if err := m.killAll(rec); err != nil {
		errs = append(errs, err)
	}
	tr.step("kill")
	// Both of these mostly wait on the kernel — the killed processes to
	// leave their cgroups, the synchronous veth delete (~25 ms here) — and
	// neither needs the other, so they wait side by side.
	netErr := make(chan error, 1)
	go func() { netErr <- m.releaseNetwork(rec) }()
	if err := m.destroyCgroups(rec); err != nil {
		errs = append(errs, err)
	}
	tr.step("cgroups")
	if err := <-netErr; err != nil {
		errs = append(errs, err)
	}
	tr.step("network (after cgroups)")
	// Last: releaseNetwork unmounted the namespace pins inside the run dir.
	if err := removeRunDir(m.runDir(rec.UID)); err != nil {
		errs = append(errs, err)
	}
	tr.step("run dir")
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("failed to release pod %s/%s: %w", rec.Namespace, rec.Name, err)
	}
	return nil
}
