package cri_test

import (
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestStatsUpdateBadInputAndRaces: bad requests name the field, unknown
// ids are NotFound, and stats and updates racing a container's removal
// answer OK or NotFound — never a half-read figure or an Internal error.
func TestStatsUpdateBadInputAndRaces(t *testing.T) {
	e := newEnv(t)
	e.importBusybox()
	cfg := config("statsrace", 0)
	sb := e.run(cfg)
	defer e.remove(sb)
	for _, tc := range []struct {
		name  string
		call  func() error
		code  codes.Code
		field string
	}{
		{"stats without id", func() error {
			_, err := e.rt.ContainerStats(e.ctx(), &runtimeapi.ContainerStatsRequest{})
			return err
		}, codes.InvalidArgument, "container_id"},
		{"stats of an unknown container", func() error {
			_, err := e.rt.ContainerStats(e.ctx(), &runtimeapi.ContainerStatsRequest{ContainerId: "feedface"})
			return err
		}, codes.NotFound, "feedface"},
		{"statsp of an unknown sandbox", func() error {
			_, err := e.rt.PodSandboxStats(e.ctx(), &runtimeapi.PodSandboxStatsRequest{PodSandboxId: "feedface"})
			return err
		}, codes.NotFound, "feedface"},
		{"statsp without id", func() error {
			_, err := e.rt.PodSandboxStats(e.ctx(), &runtimeapi.PodSandboxStatsRequest{})
			return err
		}, codes.InvalidArgument, "pod_sandbox_id"},
		{"update without linux", func() error {
			_, err := e.rt.UpdateContainerResources(e.ctx(), &runtimeapi.UpdateContainerResourcesRequest{ContainerId: "x"})
			return err
		}, codes.InvalidArgument, "linux"},
		{"update with windows", func() error {
			_, err := e.rt.UpdateContainerResources(e.ctx(), &runtimeapi.UpdateContainerResourcesRequest{ContainerId: "x", Windows: &runtimeapi.WindowsContainerResources{}})
			return err
		}, codes.InvalidArgument, "windows"},
		{"update of an unknown container", func() error {
			_, err := e.rt.UpdateContainerResources(e.ctx(), &runtimeapi.UpdateContainerResourcesRequest{ContainerId: "feedface", Linux: &runtimeapi.LinuxContainerResources{}})
			return err
		}, codes.NotFound, "feedface"},
	} {
		if err := tc.call(); status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: %v, want %s naming %s", tc.name, err, tc.code, tc.field)
		}
	}

	// Races: for a few rounds, a container is removed while stats and
	// updates of it run.
	for round := 0; round < 3; round++ {
		c := ctrConfig("racer", uint32(round))
		c.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20, CpuQuota: 50000, CpuPeriod: 100000}}
		id := e.create(sb, c, cfg)
		if _, err := e.rt.StartContainer(e.ctx(), &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for i := 0; i < 4; i++ {
			wg.Add(3)
			go func(i int) {
				defer wg.Done()
				_, err := e.rt.UpdateContainerResources(e.ctx(), &runtimeapi.UpdateContainerResourcesRequest{ContainerId: id,
					Linux: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: int64(64+i) << 20, CpuQuota: 50000, CpuPeriod: 100000}})
				errs <- err
			}(i)
			go func() {
				defer wg.Done()
				_, err := e.rt.ListContainerStats(e.ctx(), &runtimeapi.ListContainerStatsRequest{})
				errs <- err
			}()
			go func() {
				defer wg.Done()
				_, err := e.rt.ListPodSandboxStats(e.ctx(), &runtimeapi.ListPodSandboxStatsRequest{})
				errs <- err
			}()
		}
		if _, err := e.rt.RemoveContainer(e.ctx(), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
			t.Fatalf("RemoveContainer: %v", err)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil && status.Code(err) != codes.NotFound {
				t.Errorf("round %d: a call racing the removal: %v", round, err)
			}
		}
		if r, err := e.rt.ListContainerStats(e.ctx(), &runtimeapi.ListContainerStatsRequest{}); err != nil || len(r.Stats) != 0 {
			t.Errorf("round %d: stats after the removal: %v %v, want none", round, r, err)
		}
	}
}
