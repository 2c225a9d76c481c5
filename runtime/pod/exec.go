package pod

import (
	"fmt"
	"os"
	"os/exec"

	"github.com/peapod/peapod/namespaces"
	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/spec"
	"github.com/peapod/peapod/runtime/state"
	"github.com/peapod/peapod/runtime/supervisor"
)

// ExecCommand prepares argv to run in every namespace and the cgroup of a
// running container, with its env, working dir, user, capabilities and
// no_new_privs. container "" means the pod's default container
// (ChooseContainer).
func (m *Manager) ExecCommand(ns, name, container string, argv []string) (*exec.Cmd, error) {
	p, err := m.execProfile(ns, name, container)
	if err != nil {
		return nil, err
	}
	helper, err := m.execHelper()
	if err != nil {
		return nil, err
	}
	return p.Command(namespaces.ExecRequest{Helper: helper, Args: argv}), nil
}

// ExecTerminal is ExecCommand with a pty allocated from the container's own
// devpts instance: the command's stdin, stdout and stderr are the slave,
// which becomes its controlling terminal; the caller copies bytes through
// master and closes it, and closes slave once cmd started (its copy would
// keep the pty from reporting EOF/EIO on master after the command exits).
// term is the caller's TERM, passed on when the container sets none.
func (m *Manager) ExecTerminal(ns, name, container string, argv []string, term string) (cmd *exec.Cmd, master, slave *os.File, err error) {
	p, err := m.execProfile(ns, name, container)
	if err != nil {
		return nil, nil, nil, err
	}
	return m.terminal(p, argv, term, fmt.Sprintf("pod %s/%s", ns, name))
}

// terminal runs argv with p on a pty from the container's own devpts (see
// ExecTerminal); desc names the pod in errors.
func (m *Manager) terminal(p namespaces.ExecProfile, argv []string, term, desc string) (cmd *exec.Cmd, master, slave *os.File, err error) {
	helper, err := m.execHelper()
	if err != nil {
		return nil, nil, nil, err
	}
	master, slave, err = namespaces.OpenContainerPty(p.Target)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", desc, err)
	}
	r := namespaces.ExecRequest{Helper: helper, Args: argv, Terminal: true, Stdin: slave, Stdout: slave, Stderr: slave}
	if term != "" && !p.HasEnv("TERM") {
		r.Env = []string{"TERM=" + term}
	}
	return p.Command(r), master, slave, nil
}

// execHelper is the helper an exec runs: this release's read-only mount,
// made now if the root's pods are all an older release's.
func (m *Manager) execHelper() (string, error) {
	if err := m.ensureHelper(); err != nil {
		return "", fmt.Errorf("exec helper: %w", err)
	}
	return m.helperMount(), nil
}

// execProfile is the exec profile of the running container of pod ns/name:
// the one its supervisor wrote when the instance started, else (a
// container name no profile file can have, an instance of an older
// supervisor) one made from the spec and status now.
func (m *Manager) execProfile(ns, name, container string) (namespaces.ExecProfile, error) {
	v, err := m.Get(ns, name)
	if err != nil {
		return namespaces.ExecProfile{}, err
	}
	if v.stale() && v.Reason != ReasonCreating {
		return namespaces.ExecProfile{}, fmt.Errorf("pod %s/%s is %s: %s", ns, name, v.Reason, v.Message)
	}
	if container, err = m.ChooseContainer(v, container); err != nil {
		return namespaces.ExecProfile{}, err
	}
	if p, ok, err := m.readExecProfile(v.Record.UID, container); err != nil || ok {
		return p, err
	}
	sp, err := spec.Load(layout.Run(m.runDir(v.Record.UID)).Spec())
	if err != nil {
		return namespaces.ExecProfile{}, fmt.Errorf("pod %s/%s has no spec (stopped?): %w", ns, name, err)
	}
	c, st, err := findContainer(sp, v.Status, container)
	if err != nil {
		return namespaces.ExecProfile{}, fmt.Errorf("pod %s/%s: %w", ns, name, err)
	}
	if st == nil || st.State != state.StateRunning || !st.Proc.Alive() {
		return namespaces.ExecProfile{}, fmt.Errorf("container %q in pod %s/%s is not running", c.Name, ns, name)
	}
	return m.makeExecProfile(st.Proc.PID, c)
}

// readExecProfile reads the profile of container of pod uid, when there is
// one of its running instance (ok).
func (m *Manager) readExecProfile(uid, container string) (p namespaces.ExecProfile, ok bool, err error) {
	if !layout.IsLabel(container) {
		return namespaces.ExecProfile{}, false, nil // no file can be named so
	}
	p, ok, err = namespaces.ReadExecProfile(layout.Run(m.runDir(uid)).ExecProfile(container))
	if err != nil {
		return p, false, fmt.Errorf("container %q of pod %s: %w", container, uid, err)
	}
	return p, ok, nil
}

// makeExecProfile makes the profile of container c whose main process is pid.
func (m *Manager) makeExecProfile(pid int, c *spec.Container) (namespaces.ExecProfile, error) {
	p, err := namespaces.NewExecProfile(supervisor.ExecOptions(m.helperMount(), pid, m.cg.ProcsFiles(c.Cgroup), c, nil))
	if err != nil {
		return p, fmt.Errorf("container %q: %w", c.Name, err)
	}
	return p, nil
}

func findContainer(sp *spec.Pod, st *state.Status, name string) (*spec.Container, *state.ContainerStatus, error) {
	if name == "" {
		if len(sp.Containers) != 1 {
			return nil, nil, fmt.Errorf("%d containers: choose one with -c", len(sp.Containers))
		}
		name = sp.Containers[0].Name
	}
	for i := range sp.Containers {
		if sp.Containers[i].Name == name {
			return &sp.Containers[i], statusAt(st, false, i), nil
		}
	}
	for i := range sp.InitContainers {
		if sp.InitContainers[i].Name == name {
			return &sp.InitContainers[i], statusAt(st, true, i), nil
		}
	}
	return nil, nil, fmt.Errorf("container %q not found", name)
}
