package pod

import (
	"fmt"
	"os/exec"
	"path/filepath"

	"github.com/peapod/peapod/namespaces"
	"github.com/peapod/peapod/runtime/spec"
	"github.com/peapod/peapod/runtime/state"
	"github.com/peapod/peapod/runtime/supervisor"
)

// ExecCommand prepares argv to run in every namespace and the cgroup of a
// running container, with its env, working dir, user, capabilities and
// no_new_privs. container "" means the pod's only app container.
func (m *Manager) ExecCommand(ns, name, container string, argv []string) (*exec.Cmd, error) {
	v, err := m.Get(ns, name)
	if err != nil {
		return nil, err
	}
	if v.stale() && v.Reason != ReasonCreating {
		return nil, fmt.Errorf("pod %s/%s is %s: %s", ns, name, v.Reason, v.Message)
	}
	sp, err := spec.Load(filepath.Join(m.runDir(v.Record.UID), supervisor.SpecFile))
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s has no spec (stopped?): %w", ns, name, err)
	}
	c, st, err := findContainer(sp, v.Status, container)
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s: %w", ns, name, err)
	}
	if st == nil || st.State != state.StateRunning || !st.Proc.Alive() {
		return nil, fmt.Errorf("container %q in pod %s/%s is not running", c.Name, ns, name)
	}
	return namespaces.ExecCommand(supervisor.ExecOptions(m.helperMount(), st.Proc.PID, m.cg.ProcsFiles(c.Cgroup), c, argv)), nil
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
