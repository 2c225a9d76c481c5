package pod

import (
	"fmt"
	"os"
	"os/exec"
	"strings"

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
	o, err := m.execOptions(ns, name, container, argv)
	if err != nil {
		return nil, err
	}
	return namespaces.ExecCommand(o), nil
}

// ExecTerminal is ExecCommand with a pty allocated from the container's own
// devpts instance: the command's stdin, stdout and stderr are the slave,
// which becomes its controlling terminal; the caller copies bytes through
// master and closes it, and closes slave once cmd started (its copy would
// keep the pty from reporting EOF/EIO on master after the command exits).
// term is the caller's TERM, passed on when the container sets none.
func (m *Manager) ExecTerminal(ns, name, container string, argv []string, term string) (cmd *exec.Cmd, master, slave *os.File, err error) {
	o, err := m.execOptions(ns, name, container, argv)
	if err != nil {
		return nil, nil, nil, err
	}
	return terminal(o, term, fmt.Sprintf("pod %s/%s", ns, name))
}

// terminal gives o a pty from the container's own devpts (see
// ExecTerminal); desc names the pod in errors.
func terminal(o namespaces.ExecOptions, term, desc string) (cmd *exec.Cmd, master, slave *os.File, err error) {
	master, slave, err = namespaces.OpenContainerPty(o.Target)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", desc, err)
	}
	o.Process.Terminal = true
	if term != "" && !hasEnv(o.Process.Env, "TERM") {
		o.Process.Env = append(append([]string(nil), o.Process.Env...), "TERM="+term)
	}
	o.Stdin, o.Stdout, o.Stderr = slave, slave, slave
	return namespaces.ExecCommand(o), master, slave, nil
}

// hasEnv reports whether env sets key.
func hasEnv(env []string, key string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, key+"=") {
			return true
		}
	}
	return false
}

// execOptions looks up the running container and the process to run in it.
func (m *Manager) execOptions(ns, name, container string, argv []string) (namespaces.ExecOptions, error) {
	v, err := m.Get(ns, name)
	if err != nil {
		return namespaces.ExecOptions{}, err
	}
	if v.stale() && v.Reason != ReasonCreating {
		return namespaces.ExecOptions{}, fmt.Errorf("pod %s/%s is %s: %s", ns, name, v.Reason, v.Message)
	}
	sp, err := spec.Load(layout.Run(m.runDir(v.Record.UID)).Spec())
	if err != nil {
		return namespaces.ExecOptions{}, fmt.Errorf("pod %s/%s has no spec (stopped?): %w", ns, name, err)
	}
	if container, err = m.ChooseContainer(v, container); err != nil {
		return namespaces.ExecOptions{}, err
	}
	c, st, err := findContainer(sp, v.Status, container)
	if err != nil {
		return namespaces.ExecOptions{}, fmt.Errorf("pod %s/%s: %w", ns, name, err)
	}
	if st == nil || st.State != state.StateRunning || !st.Proc.Alive() {
		return namespaces.ExecOptions{}, fmt.Errorf("container %q in pod %s/%s is not running", c.Name, ns, name)
	}
	return supervisor.ExecOptions(m.helperMount(), st.Proc.PID, m.cg.ProcsFiles(c.Cgroup), c, argv), nil
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
