package supervisor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/peapod/peapod/probes"
	"github.com/peapod/peapod/runtime/spec"
	"github.com/peapod/peapod/runtime/state"
)

// TestPhaseDerivation tables the pod phase the supervisor derives from its
// containers' states, as the kubelet's TestGetPhase does: every change
// goes through update, which derives the phase and writes it.
func TestPhaseDerivation(t *testing.T) {
	var (
		waiting   = state.ContainerStatus{State: state.StateWaiting, Reason: "ContainerCreating"}
		running   = state.ContainerStatus{State: state.StateRunning}
		succeeded = state.ContainerStatus{State: state.StateTerminated, ExitCode: 0}
		failed    = state.ContainerStatus{State: state.StateTerminated, ExitCode: 1}
		// backoff is a container waiting out a crash loop after an exit.
		backoffAfter = func(code int) state.ContainerStatus {
			return state.ContainerStatus{State: state.StateWaiting, Reason: probes.ReasonCrashLoopBackOff, Last: &state.Terminated{ExitCode: code}}
		}
	)
	tests := []struct {
		name                         string
		policy                       string
		initialized, stopping, final bool
		inits, apps                  []state.ContainerStatus
		want                         state.PodPhase
	}{
		{"init running", spec.RestartAlways, false, false, false, []state.ContainerStatus{running}, []state.ContainerStatus{waiting}, state.PodPending},
		{"init failed, Never", spec.RestartNever, false, false, false, []state.ContainerStatus{failed}, []state.ContainerStatus{waiting}, state.PodFailed},
		{"init failed, OnFailure retries", spec.RestartOnFailure, false, false, false, []state.ContainerStatus{failed}, []state.ContainerStatus{waiting}, state.PodPending},
		{"stopped before initialized", spec.RestartAlways, false, true, false, []state.ContainerStatus{running}, []state.ContainerStatus{waiting}, state.PodFailed},
		{"an app not started yet", spec.RestartAlways, true, false, false, []state.ContainerStatus{succeeded}, []state.ContainerStatus{running, waiting}, state.PodPending},
		{"all running", spec.RestartAlways, true, false, false, nil, []state.ContainerStatus{running, running}, state.PodRunning},
		{"one ran to completion, one runs", spec.RestartOnFailure, true, false, false, nil, []state.ContainerStatus{succeeded, running}, state.PodRunning},
		{"all completed, OnFailure", spec.RestartOnFailure, true, false, false, nil, []state.ContainerStatus{succeeded, succeeded}, state.PodSucceeded},
		{"all completed, Never", spec.RestartNever, true, false, false, nil, []state.ContainerStatus{succeeded}, state.PodSucceeded},
		{"all completed, Always restarts", spec.RestartAlways, true, false, false, nil, []state.ContainerStatus{succeeded}, state.PodRunning},
		{"one failed, Never", spec.RestartNever, true, false, false, nil, []state.ContainerStatus{succeeded, failed}, state.PodFailed},
		{"one failed, OnFailure restarts", spec.RestartOnFailure, true, false, false, nil, []state.ContainerStatus{succeeded, failed}, state.PodRunning},
		{"crash loop counts as stopped", spec.RestartAlways, true, false, false, nil, []state.ContainerStatus{backoffAfter(1)}, state.PodRunning},
		{"backoff after success, OnFailure", spec.RestartOnFailure, true, false, false, nil, []state.ContainerStatus{backoffAfter(0)}, state.PodSucceeded},
		{"final, all succeeded", spec.RestartAlways, true, true, true, nil, []state.ContainerStatus{succeeded, succeeded}, state.PodSucceeded},
		{"final, one failed", spec.RestartAlways, true, true, true, nil, []state.ContainerStatus{succeeded, failed}, state.PodFailed},
		{"stopping, nothing runs", spec.RestartAlways, true, true, false, nil, []state.ContainerStatus{backoffAfter(1)}, state.PodFailed},
		{"final, never started", spec.RestartAlways, true, true, true, nil, []state.ContainerStatus{waiting}, state.PodFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := spec.Pod{UID: "u1", Name: "p", Namespace: "ns", RestartPolicy: tt.policy}
			for i := range tt.inits {
				p.InitContainers = append(p.InitContainers, spec.Container{Name: fmt.Sprintf("i%d", i), ID: fmt.Sprintf("u1-i%d", i)})
			}
			for i := range tt.apps {
				p.Containers = append(p.Containers, spec.Container{Name: fmt.Sprintf("c%d", i), ID: fmt.Sprintf("u1-c%d", i)})
			}
			s := newTestSupervisor(t, p, probes.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
			s.update(func() {
				s.status.Initialized, s.status.Stopping, s.status.Final = tt.initialized, tt.stopping, tt.final
				copy(s.status.InitContainers, tt.inits)
				copy(s.status.Containers, tt.apps)
			})
			st, err := state.ReadStatus(filepath.Join(s.pod.RunDir, StatusFile))
			if err != nil {
				t.Fatalf("update wrote no status: %v", err)
			}
			if st.Phase != tt.want {
				t.Errorf("phase %s, want %s", st.Phase, tt.want)
			}
		})
	}
}

// fakeRuntime fails every start as namespaces.StartContainer does: its
// error names the container.
type fakeRuntime struct{ err error }

func (f fakeRuntime) StartContainer(_ *spec.Pod, c *spec.Container, _ [3]*os.File, _ func(int) error) (int, error) {
	return 0, fmt.Errorf("failed to start container %q: %w", c.Name, f.err)
}
func (fakeRuntime) StartReaper() (int, error) { return 0, errors.New("no reaper") }
func (fakeRuntime) ExecCommand(int, *spec.Container, []string, *os.File, *os.File) *exec.Cmd {
	return nil
}

// fakeCgroups records nothing: the fake runtime starts no process.
type fakeCgroups struct{}

func (fakeCgroups) Join(string, int) error { return nil }
func (fakeCgroups) Kill(string) error      { return nil }

// TestFailedStartSaysItOnce starts a container the runtime cannot start:
// the status shows RunContainerError, a Pending pod, and a message that
// names the container once (the caller adds only what the callee does not
// know).
func TestFailedStartSaysItOnce(t *testing.T) {
	p := spec.Pod{UID: "u1", Name: "p", Namespace: "ns", RestartPolicy: spec.RestartAlways,
		Containers: []spec.Container{{Name: "web", ID: "u1-web", LogPath: filepath.Join(t.TempDir(), "web", "0.log")}}}
	s := newTestSupervisor(t, p, probes.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
	s.rt, s.cg, s.reap = fakeRuntime{err: errors.New("exec: no such file")}, fakeCgroups{}, newReaper()
	s.status.Initialized = true
	err := s.startInstance(s.apps[0])
	if err == nil {
		t.Fatal("startInstance succeeded with a runtime that fails")
	}
	st, rerr := state.ReadStatus(filepath.Join(s.pod.RunDir, StatusFile))
	if rerr != nil {
		t.Fatal(rerr)
	}
	c := st.Containers[0]
	if c.State != state.StateWaiting || c.Reason != reasonRunContainerError || st.Phase != state.PodPending {
		t.Errorf("status %s/%s, phase %s; want waiting/%s, Pending", c.State, c.Reason, st.Phase, reasonRunContainerError)
	}
	want := `failed to start container "web": exec: no such file`
	if c.Message != want || err.Error() != want {
		t.Errorf("message %q, error %q; want %q", c.Message, err, want)
	}
	if n := strings.Count(c.Message, `"web"`); n != 1 {
		t.Errorf("message names the container %d times: %q", n, c.Message)
	}
}

// TestExecOptions checks the one exec rule: the container's process with
// argv and no terminal, its own spec left as it was.
func TestExecOptions(t *testing.T) {
	c := &spec.Container{Name: "web", OCI: specs.Spec{Process: &specs.Process{Terminal: true, Args: []string{"nginx"},
		Env: []string{"A=1"}, Cwd: "/srv", User: specs.User{UID: 101}, NoNewPrivileges: true}}}
	o := ExecOptions("/run/helper", 42, []string{"/sys/fs/cgroup/p/cgroup.procs"}, c, []string{"cat", "/etc/hostname"})
	if o.Helper != "/run/helper" || o.Target != 42 || len(o.Cgroups) != 1 || o.Cgroups[0] != "/sys/fs/cgroup/p/cgroup.procs" {
		t.Errorf("options %+v: helper, target or cgroups lost", o)
	}
	p := o.Process
	if p.Terminal || strings.Join(p.Args, " ") != "cat /etc/hostname" || p.Cwd != "/srv" || p.User.UID != 101 || !p.NoNewPrivileges || len(p.Env) != 1 {
		t.Errorf("process %+v, want the container's with argv and no terminal", p)
	}
	if got := c.OCI.Process; !got.Terminal || len(got.Args) != 1 || got.Args[0] != "nginx" {
		t.Errorf("the container's own process changed to %+v", got)
	}
}
