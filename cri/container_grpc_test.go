package cri_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peapod/peapod/internal/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// importBusybox puts the test image into the env's store as busybox:latest.
func (e *env) importBusybox() {
	e.t.Helper()
	st, err := e.m.Images()
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := st.ImportPath(busyboxTar, "busybox:latest"); err != nil {
		e.t.Fatalf("failed to import busybox: %v", err)
	}
}

// ctrConfig is a container running sh's sleep loop.
func ctrConfig(name string, attempt uint32) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name, Attempt: attempt},
		Image:    &runtimeapi.ImageSpec{Image: "busybox:latest"},
		Command:  []string{"sh", "-c", "while true; do sleep 1; done"},
	}
}

// create creates a container and returns its id.
func (e *env) create(sb string, cfg *runtimeapi.ContainerConfig, sbCfg *runtimeapi.PodSandboxConfig) string {
	e.t.Helper()
	r, err := e.rt.CreateContainer(e.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: sb, Config: cfg, SandboxConfig: sbCfg})
	if err != nil {
		e.t.Fatalf("CreateContainer %s: %v", cfg.Metadata.Name, err)
	}
	return r.ContainerId
}

func (e *env) containerStatus(id string) *runtimeapi.ContainerStatus {
	e.t.Helper()
	r, err := e.rt.ContainerStatus(e.ctx(), &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		e.t.Fatalf("ContainerStatus %s: %v", id, err)
	}
	return r.Status
}

// TestContainerIdempotence: stopping and removing what is stopped or gone
// succeeds, as the CRI asks; asking about what does not exist is NotFound;
// what cannot be done in the state a container or sandbox is in fails
// with the code that says so, changing nothing.
func TestContainerIdempotence(t *testing.T) {
	e := newEnv(t)
	e.importBusybox()
	unknown := strings.Repeat("ab", 32)
	if _, err := e.rt.StopContainer(e.ctx(), &runtimeapi.StopContainerRequest{ContainerId: unknown}); err != nil {
		t.Errorf("StopContainer of an unknown id: %v", err)
	}
	if _, err := e.rt.RemoveContainer(e.ctx(), &runtimeapi.RemoveContainerRequest{ContainerId: unknown}); err != nil {
		t.Errorf("RemoveContainer of an unknown id: %v", err)
	}
	for what, err := range map[string]error{
		"ContainerStatus": func() error {
			_, err := e.rt.ContainerStatus(e.ctx(), &runtimeapi.ContainerStatusRequest{ContainerId: unknown})
			return err
		}(),
		"StartContainer": func() error {
			_, err := e.rt.StartContainer(e.ctx(), &runtimeapi.StartContainerRequest{ContainerId: unknown})
			return err
		}(),
		"ExecSync": func() error {
			_, err := e.rt.ExecSync(e.ctx(), &runtimeapi.ExecSyncRequest{ContainerId: unknown, Cmd: []string{"true"}})
			return err
		}(),
		"CreateContainer in an unknown sandbox": func() error {
			_, err := e.rt.CreateContainer(e.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: unknown, Config: ctrConfig("a", 0)})
			return err
		}(),
	} {
		if status.Code(err) != codes.NotFound {
			t.Errorf("%s: %v, want NotFound", what, err)
		}
	}

	sbCfg := config("idem", 0)
	sb := e.run(sbCfg)
	missing := ctrConfig("missing-image", 0)
	missing.Image.Image = "nothere:1"
	if _, err := e.rt.CreateContainer(e.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: sb, Config: missing, SandboxConfig: sbCfg}); status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "nothere:1") {
		t.Errorf("CreateContainer with an image not stored: %v, want NotFound naming it", err)
	}
	id := e.create(sb, ctrConfig("app", 0), sbCfg)
	if st := e.containerStatus(id); st.State != runtimeapi.ContainerState_CONTAINER_CREATED || st.CreatedAt == 0 || st.StartedAt != 0 {
		t.Errorf("created container: %v", st)
	}
	if _, err := e.rt.ExecSync(e.ctx(), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"true"}}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("ExecSync in a created container: %v, want FailedPrecondition", err)
	}
	// Stopping a created container leaves it created (and startable).
	if _, err := e.rt.StopContainer(e.ctx(), &runtimeapi.StopContainerRequest{ContainerId: id}); err != nil {
		t.Errorf("StopContainer of a created container: %v", err)
	}
	if _, err := e.rt.StartContainer(e.ctx(), &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	for range 2 {
		if _, err := e.rt.StopContainer(e.ctx(), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 0}); err != nil {
			t.Errorf("StopContainer: %v", err)
		}
	}
	st := e.containerStatus(id)
	if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 137 || st.FinishedAt < st.StartedAt {
		t.Errorf("stopped container: %v", st)
	}
	if _, err := e.rt.StartContainer(e.ctx(), &runtimeapi.StartContainerRequest{ContainerId: id}); err == nil {
		t.Errorf("StartContainer of an exited container succeeded")
	}
	// A stopped sandbox takes no new container; its exited one can still
	// be removed, twice.
	if _, err := e.rt.StopPodSandbox(e.ctx(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rt.CreateContainer(e.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: sb, Config: ctrConfig("late", 0), SandboxConfig: sbCfg}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("CreateContainer in a stopped sandbox: %v, want FailedPrecondition", err)
	}
	for range 2 {
		if _, err := e.rt.RemoveContainer(e.ctx(), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
			t.Errorf("RemoveContainer in a stopped sandbox: %v", err)
		}
	}
	l, err := e.rt.ListContainers(e.ctx(), &runtimeapi.ListContainersRequest{})
	if err != nil || len(l.Containers) != 0 {
		t.Errorf("ListContainers after removal: %v %v", l, err)
	}
	e.remove(sb)
}

// TestContainerRaces: concurrent creates in one sandbox all land (each
// listed once, with its own cgroup), concurrent starts of one container
// start it once, and a RemovePodSandbox racing creates leaves nothing.
func TestContainerRaces(t *testing.T) {
	e := newEnv(t)
	e.importBusybox()
	before := e.snapshot()
	sbCfg := config("race", 0)
	sb := e.run(sbCfg)
	const n = 6
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := e.rt.CreateContainer(e.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: sb, Config: ctrConfig(fmt.Sprintf("c%d", i), 0), SandboxConfig: sbCfg})
			if err != nil {
				t.Errorf("CreateContainer c%d: %v", i, err)
				return
			}
			ids[i] = r.ContainerId
		}()
	}
	wg.Wait()
	l, err := e.rt.ListContainers(e.ctx(), &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: sb}})
	if err != nil || len(l.Containers) != n {
		t.Fatalf("ListContainers = %d containers (%v), want %d", len(l.Containers), err, n)
	}
	var started sync.WaitGroup
	var ok, refused int
	var mu sync.Mutex
	for range 4 {
		started.Add(1)
		go func() {
			defer started.Done()
			_, err := e.rt.StartContainer(e.ctx(), &runtimeapi.StartContainerRequest{ContainerId: ids[0]})
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				ok++
			} else {
				refused++
			}
		}()
	}
	started.Wait()
	if ok != 1 || refused != 3 {
		t.Errorf("4 concurrent starts: %d succeeded, %d refused, want 1 and 3", ok, refused)
	}
	if st := e.containerStatus(ids[0]); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("started container: %v", st.State)
	}
	// Removal of the sandbox while more containers are being created.
	var racing sync.WaitGroup
	for i := range 3 {
		racing.Add(1)
		go func() {
			defer racing.Done()
			// Either outcome is fine; what must not happen is a leak.
			e.rt.CreateContainer(e.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: sb, Config: ctrConfig(fmt.Sprintf("late%d", i), 0), SandboxConfig: sbCfg})
		}()
	}
	e.remove(sb)
	racing.Wait()
	e.remove(sb)
	if l, err := e.rt.ListContainers(e.ctx(), &runtimeapi.ListContainersRequest{}); err != nil || len(l.Containers) != 0 {
		t.Errorf("ListContainers after the sandbox's removal: %v %v", l, err)
	}
	testutil.AssertNoLeak(t, before, e.roots())
}

// TestExecSyncOutput: stdout and stderr come apart, capped; the exit code
// is the command's; a timeout kills the command and nothing of it stays.
func TestExecSyncOutput(t *testing.T) {
	e := newEnv(t)
	e.importBusybox()
	sbCfg := config("exec", 0)
	sb := e.run(sbCfg)
	id := e.create(sb, ctrConfig("app", 0), sbCfg)
	if _, err := e.rt.StartContainer(e.ctx(), &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	r, err := e.rt.ExecSync(e.ctx(), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 7"}})
	if err != nil || string(r.Stdout) != "out\n" || string(r.Stderr) != "err\n" || r.ExitCode != 7 {
		t.Errorf("ExecSync = %q %q %d %v, want out, err, 7", r.GetStdout(), r.GetStderr(), r.GetExitCode(), err)
	}
	if r, err := e.rt.ExecSync(e.ctx(), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"/no/such"}}); err != nil || r.ExitCode != 127 {
		t.Errorf("ExecSync of a missing binary = %v %v, want exit code 127", r, err)
	}
	if _, err := e.rt.ExecSync(e.ctx(), &runtimeapi.ExecSyncRequest{ContainerId: id}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("ExecSync without a command: %v, want InvalidArgument", err)
	}
	start := time.Now()
	_, err = e.rt.ExecSync(e.ctx(), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c", "sleep 60 & sleep 61"}, Timeout: 1})
	if status.Code(err) != codes.DeadlineExceeded || time.Since(start) > 10*time.Second {
		t.Errorf("ExecSync past its timeout: %v after %v, want DeadlineExceeded", err, time.Since(start))
	}
	// Nothing of the command is left in the container's cgroup.
	r, err = e.rt.ExecSync(e.ctx(), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c", "ps -o comm= | grep -c sleep || true"}})
	if err != nil {
		t.Fatal(err)
	}
	// The container's own loop may be in its "sleep 1".
	if n := strings.TrimSpace(string(r.Stdout)); n != "0" && n != "1" {
		t.Errorf("sleeps left in the container after the timeout: %s", n)
	}
	e.remove(sb)
}
