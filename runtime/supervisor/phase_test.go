package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/peapod/peapod/namespaces"
	"github.com/peapod/peapod/probes"
	"github.com/peapod/peapod/runtime/layout"
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
		{"stopping before initialized, the init still runs", spec.RestartAlways, false, true, false, []state.ContainerStatus{running}, []state.ContainerStatus{waiting}, state.PodPending},
		{"stopped before initialized", spec.RestartAlways, false, true, false, []state.ContainerStatus{failed}, []state.ContainerStatus{waiting}, state.PodFailed},
		{"stopping, one container still in its grace period", spec.RestartAlways, true, true, false, nil, []state.ContainerStatus{succeeded, running}, state.PodRunning},
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
			st, err := state.ReadStatus(layout.Run(s.pod.RunDir).Status())
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
func (fakeRuntime) ExecProfile(int, *spec.Container) (namespaces.ExecProfile, error) {
	return namespaces.ExecProfile{}, errors.New("no exec in this runtime")
}

func (fakeRuntime) ExecCommand(namespaces.ExecProfile, []string, *os.File, *os.File) *exec.Cmd {
	return nil
}

// shRuntime starts each container as `sh -c CMD`, CMD being the
// container's first arg, outside any namespace: the supervisor's reaper,
// status and restart policy see a real process exit.
type shRuntime struct{ fakeRuntime }

func (shRuntime) StartContainer(_ *spec.Pod, c *spec.Container, stdio [3]*os.File, _ func(int) error) (int, error) {
	p, err := os.StartProcess("/bin/sh", []string{"sh", "-c", c.OCI.Process.Args[0]}, &os.ProcAttr{Files: stdio[:]})
	if err != nil {
		return 0, fmt.Errorf("failed to start container %q: %w", c.Name, err)
	}
	pid := p.Pid // Release sets it to -1
	// Never Wait: the supervisor's reaper collects it with wait4(-1).
	return pid, p.Release()
}

// TestPhaseThroughLifecycle runs pods to their end with a runtime whose
// containers are shell commands: the phase and the final flag the
// supervisor writes come from the real call sites (start, exit, policy,
// finish), each a change through update.
func TestPhaseThroughLifecycle(t *testing.T) {
	sh := func(name, cmd string) spec.Container {
		return spec.Container{Name: name, ID: "u1-" + name, OCI: specs.Spec{Process: &specs.Process{Args: []string{cmd}}}}
	}
	tests := []struct {
		name        string
		policy      string
		inits, apps []spec.Container
		want        state.PodPhase
		wantApps    []string // each app container's final state
	}{
		{"exit 0, Never", spec.RestartNever, nil, []spec.Container{sh("a", "exit 0"), sh("b", "exit 0")}, state.PodSucceeded, []string{"terminated/Completed", "terminated/Completed"}},
		{"exit 3, Never", spec.RestartNever, nil, []spec.Container{sh("a", "exit 0"), sh("b", "exit 3")}, state.PodFailed, []string{"terminated/Completed", "terminated/Error"}},
		{"exit 0, OnFailure", spec.RestartOnFailure, nil, []spec.Container{sh("a", "exit 0")}, state.PodSucceeded, []string{"terminated/Completed"}},
		{"init fails, Never", spec.RestartNever, []spec.Container{sh("i", "exit 1")}, []spec.Container{sh("a", "exit 0")}, state.PodFailed, []string{"waiting/ContainerCreating"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := t.TempDir()
			p := spec.Pod{UID: "u1", Name: "p", Namespace: "ns", RestartPolicy: tt.policy, InitContainers: tt.inits, Containers: tt.apps}
			for _, cs := range [][]spec.Container{p.InitContainers, p.Containers} {
				for i := range cs {
					cs[i].LogPath = filepath.Join(logs, cs[i].Name, "0.log")
				}
			}
			st := runShellPod(t, p)
			if st.Phase != tt.want || !st.Final {
				t.Errorf("phase %s, final %v; want %s, final", st.Phase, st.Final, tt.want)
			}
			for i, want := range tt.wantApps {
				if got := st.Containers[i].State + "/" + st.Containers[i].Reason; got != want {
					t.Errorf("container %s: %s, want %s", st.Containers[i].Name, got, want)
				}
			}
		})
	}
}

// runShellPod runs p with shRuntime to its end and returns the status the
// supervisor wrote last.
func runShellPod(t *testing.T, p spec.Pod) *state.Status {
	t.Helper()
	s := newTestSupervisor(t, p, probes.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
	s.now = time.Now
	s.rt, s.cg, s.reap = shRuntime{}, fakeCgroups{}, testReaper()
	if err := s.Run(func(error) {}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	st, err := state.ReadStatus(layout.Run(s.pod.RunDir).Status())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// testReaper is the one reaper of the test process: each reaps every
// child with wait4(-1), so a second would steal the first one's.
var testReaper = sync.OnceValue(newReaper)

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
	s.rt, s.cg, s.reap = fakeRuntime{err: errors.New("exec: no such file")}, fakeCgroups{}, testReaper()
	s.status.Initialized = true
	err := s.startInstance(s.apps[0])
	if err == nil {
		t.Fatal("startInstance succeeded with a runtime that fails")
	}
	st, rerr := state.ReadStatus(layout.Run(s.pod.RunDir).Status())
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

// TestLogCompleteAtExit: a container's output is in its log before its exit
// is recorded, so whoever saw it terminated (peapod logs once the pod
// Succeeded, a kubelet after ContainerStatus) reads all of it. The shell
// writes thousands of short lines at once and exits: they sit in the pipe,
// each a log entry of its own still to write.
func TestLogCompleteAtExit(t *testing.T) {
	const lines = 4000
	c := spec.Container{Name: "a", ID: "u1-a", LogPath: filepath.Join(t.TempDir(), "a", "0.log"),
		OCI: specs.Spec{Process: &specs.Process{Args: []string{fmt.Sprintf(`s=$(seq -f line%%.0f 0 %d); echo "$s"`, lines-1)}}}}
	p := spec.Pod{UID: "u1", Name: "p", Namespace: "ns", RestartPolicy: spec.RestartNever, Containers: []spec.Container{c}}
	st := runShellPod(t, p)
	if got := st.Containers[0].State; got != state.StateTerminated {
		t.Fatalf("container state %s, want terminated", got)
	}
	b, err := os.ReadFile(c.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(b, []byte("\n")); n != lines || !bytes.Contains(b, []byte(fmt.Sprintf(" stdout F line%d\n", lines-1))) {
		t.Errorf("the log holds %d lines when the exit is recorded, want %d ending with line%d", n, lines, lines-1)
	}
}
