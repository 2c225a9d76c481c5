package supervisor

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/peapod/peapod/probes"
	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/spec"
	"github.com/peapod/peapod/runtime/state"
)

// TestCRIMode drives a CRI-mode supervisor through its socket operations
// with containers that are shell commands: nothing starts by itself;
// create adds a container to status.json and spec.json; start runs it
// once; an exit is never restarted (restartPolicy Always notwithstanding);
// stop kills; remove forgets (the others' statuses stay theirs); unknown
// ids are found nowhere, and stop/remove of them succeed; a new
// supervisor of the run dir (adoption) knows the containers left.
func TestCRIMode(t *testing.T) {
	logs := t.TempDir()
	s := newTestSupervisor(t, spec.Pod{UID: "u1", Name: "p", Namespace: "ns", RestartPolicy: spec.RestartAlways, CRI: true},
		probes.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
	s.now = time.Now
	s.rt, s.cg, s.reap = shRuntime{}, fakeCgroups{}, testReaper()
	started := make(chan error, 1)
	ran := make(chan error, 1)
	go func() { ran <- s.Run(func(err error) { started <- err }) }()
	if err := <-started; err != nil {
		t.Fatalf("Run reported %v", err)
	}
	ctr := func(name, cmd string) *spec.Container {
		return &spec.Container{Name: name, ID: "id-" + name, LogPath: filepath.Join(logs, name+".log"),
			OCI: specs.Spec{Process: &specs.Process{Args: []string{cmd}}, Root: &specs.Root{Path: "/"}}}
	}
	call := func(req Request) string {
		t.Helper()
		return s.serveCRI(&req)
	}
	for _, c := range []*spec.Container{ctr("a", "echo out; exit 3"), ctr("b", "sleep 30")} {
		if e := call(Request{Op: OpCRICreate, CRIContainer: c}); e != "" {
			t.Fatalf("create %s: %s", c.Name, e)
		}
	}
	if e := call(Request{Op: OpCRICreate, CRIContainer: ctr("a", "true")}); !strings.Contains(e, "of that name or id") {
		t.Errorf("a second create of a: %q", e)
	}
	if e := call(Request{Op: OpCRICreate}); e == "" {
		t.Errorf("create without a container succeeded")
	}
	sp, err := spec.Load(layout.Run(s.pod.RunDir).Spec())
	if err != nil || len(sp.Containers) != 2 || sp.Containers[1].Name != "b" {
		t.Fatalf("spec.json after two creates: %+v %v", sp, err)
	}
	st := readStatus(t, s)
	if len(st.Containers) != 2 || st.Containers[0].State != state.StateWaiting || st.Containers[0].Reason != ReasonCreated {
		t.Fatalf("status after create: %+v", st.Containers)
	}

	if e := call(Request{Op: OpCRIStart, ContainerID: "id-a"}); e != "" {
		t.Fatalf("start a: %s", e)
	}
	s.mu.Lock()
	a := s.apps[0]
	exited := a.exited
	s.mu.Unlock()
	<-exited
	s.mu.Lock()
	timer, ast := a.timer, *a.st()
	s.mu.Unlock()
	if timer != nil || ast.State != state.StateTerminated || ast.ExitCode != 3 || ast.LogPath != filepath.Join(logs, "a.log") {
		t.Errorf("a after its exit: %+v (restart timer %v), want terminated with 3, its log at the path given and no restart", ast, timer != nil)
	}
	if e := call(Request{Op: OpCRIStart, ContainerID: "id-a"}); !strings.Contains(e, "only a created container") {
		t.Errorf("a second start of a: %q", e)
	}

	if e := call(Request{Op: OpCRIStart, ContainerID: "id-b"}); e != "" {
		t.Fatalf("start b: %s", e)
	}
	zero := int64(0)
	if e := call(Request{Op: OpCRIStop, ContainerID: "id-b", GracePeriodSeconds: &zero}); e != "" {
		t.Fatalf("stop b: %s", e)
	}
	if e := call(Request{Op: OpCRIStop, ContainerID: "id-b"}); e != "" {
		t.Errorf("stop of a stopped b: %s", e)
	}
	if e := call(Request{Op: OpCRIReopenLog, ContainerID: "id-b"}); !strings.Contains(e, "not running") {
		t.Errorf("reopen the log of a stopped container: %q", e)
	}

	if e := call(Request{Op: OpCRIRemove, ContainerID: "id-a"}); e != "" {
		t.Fatalf("remove a: %s", e)
	}
	for _, op := range []string{OpCRIRemove, OpCRIStop} {
		if e := call(Request{Op: op, ContainerID: "id-gone"}); e != "" {
			t.Errorf("%s of an unknown container: %s", op, e)
		}
	}
	for _, op := range []string{OpCRIStart, OpCRIReopenLog} {
		if e := call(Request{Op: op, ContainerID: "id-gone"}); e != notFoundPrefix+"id-gone" {
			t.Errorf("%s of an unknown container: %q", op, e)
		}
	}
	// cri-update records the resources in spec.json; an unknown
	// container is not found.
	limit := int64(64 << 20)
	if e := call(Request{Op: OpCRIUpdate, ContainerID: "id-b", CRIResources: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}}); e != "" {
		t.Fatalf("update b: %s", e)
	}
	if e := call(Request{Op: OpCRIUpdate, ContainerID: "id-gone"}); e != notFoundPrefix+"id-gone" {
		t.Errorf("update of an unknown container: %q", e)
	}
	if sp, err := spec.Load(layout.Run(s.pod.RunDir).Spec()); err != nil || len(sp.Containers) != 1 || sp.Containers[0].OCI.Linux.Resources.Memory == nil || *sp.Containers[0].OCI.Linux.Resources.Memory.Limit != limit {
		t.Errorf("spec.json after update: %+v %v, want b with a 64 MiB limit", sp, err)
	}
	st = readStatus(t, s)
	if len(st.Containers) != 1 || st.Containers[0].Name != "b" || st.Containers[0].State != state.StateTerminated || st.Containers[0].ExitCode != 137 {
		t.Errorf("status after removing a: %+v, want b alone, killed", st.Containers)
	}
	s.mu.Lock()
	if got := s.apps[0].st().Name; got != "b" {
		t.Errorf("b's status handle points at %q after a's removal", got)
	}
	s.mu.Unlock()

	s.Stop(0)
	if err := <-ran; err != nil {
		t.Fatalf("Run: %v", err)
	}
	// What an adopting supervisor loads.
	next, err := New(s.pod.RunDir, nil, nil)
	if err != nil || len(next.apps) != 1 || next.apps[0].spec.ID != "id-b" || !next.pod.CRI {
		t.Errorf("a new supervisor of the run dir: %v, %+v", err, next)
	}
}

// TestCRIOpsNeedCRIMode: a pod of peapod run refuses the cri-* ops, so
// no request can add to it what its manifest does not say.
func TestCRIOpsNeedCRIMode(t *testing.T) {
	s := newTestSupervisor(t, spec.Pod{UID: "u1", Name: "p", Namespace: "ns", RestartPolicy: spec.RestartAlways},
		probes.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
	for _, op := range []string{OpCRICreate, OpCRIStart, OpCRIStop, OpCRIRemove, OpCRIReopenLog, OpCRIUpdate} {
		if e := s.serveCRI(&Request{Op: op, ContainerID: "x"}); !strings.Contains(e, "not in CRI mode") {
			t.Errorf("%s on a pod not in CRI mode: %q", op, e)
		}
	}
}

// TestNotFoundTravels: the client turns the supervisor's not-found answer
// back into ErrContainerNotFound.
func TestNotFoundTravels(t *testing.T) {
	if !errors.Is(answerError("sock", notFoundPrefix+"x"), ErrContainerNotFound) {
		t.Error("a not-found answer does not wrap ErrContainerNotFound")
	}
	if errors.Is(answerError("sock", "other"), ErrContainerNotFound) {
		t.Error("another answer wraps ErrContainerNotFound")
	}
}

func readStatus(t *testing.T, s *Supervisor) *state.Status {
	t.Helper()
	st, err := state.ReadStatus(layout.Run(s.pod.RunDir).Status())
	if err != nil {
		t.Fatal(err)
	}
	return st
}
