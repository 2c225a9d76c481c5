package cri_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/peapod/peapod/internal/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// statusGroups is the Uid:, Gid: and Groups: lines of a /proc/PID/status.
func statusGroups(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "Uid:") || strings.HasPrefix(l, "Gid:") || strings.HasPrefix(l, "Groups:") {
			out = append(out, strings.Join(strings.Fields(l), " "))
		}
	}
	return strings.Join(out, "; ")
}

// TestCriSupplementalGroupsPolicy runs containers of an image whose
// /etc/group lists its user in a group, through `peapod cri`: the runtime
// announces the feature; with Merge (the default) the group joins the
// listed one and the primary gid (from the image's /etc/passwd), with
// Strict it does not, in the main process's /proc/PID/status, in an exec's
// /proc/self/status and in ContainerStatus.user; an explicit gid 0 is
// kept. An unknown policy is InvalidArgument naming the field, and creates
// nothing.
func TestCriSupplementalGroupsPolicy(t *testing.T) {
	d := startDaemon(t)
	reg := testutil.StartRegistry(t)
	base, err := os.ReadFile(busyboxTar)
	if err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(base)), nil })
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/predefined-group:1"
	if err := remote.Write(mustRef(t, ref), critestImageOf(t, layer, predefinedGroupFiles, nil, "1000", nil)); err != nil {
		t.Fatal(err)
	}
	d.run("crictl", "pull", ref)
	conn, err := grpc.NewClient("unix://"+d.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	ctx := t.Context()
	st, err := rt.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil || !st.GetFeatures().GetSupplementalGroupsPolicy() {
		t.Fatalf("Status = %v, %v; want the SupplementalGroupsPolicy feature", st, err)
	}

	sbCfg := &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "groups", Namespace: "default", Uid: "uid-groups"}}
	warm, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sbCfg})
	if err != nil {
		t.Fatal(err)
	}
	d.run("crictl", "rmp", "-f", warm.PodSandboxId)
	before := testutil.TakeSnapshot(t, d.roots())
	sbCfg.Metadata.Attempt = 1
	sb, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sbCfg})
	if err != nil {
		t.Fatal(err)
	}
	ctrCfg := func(name string, sc *runtimeapi.LinuxContainerSecurityContext) *runtimeapi.ContainerConfig {
		return &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: name}, Image: &runtimeapi.ImageSpec{Image: ref},
			Command: []string{"sleep", "1000"}, Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: sc},
		}
	}

	bad := ctrCfg("bad", &runtimeapi.LinuxContainerSecurityContext{SupplementalGroupsPolicy: runtimeapi.SupplementalGroupsPolicy(7)})
	if _, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb.PodSandboxId, Config: bad, SandboxConfig: sbCfg}); status.Code(err) != codes.InvalidArgument ||
		!strings.Contains(err.Error(), "config.linux.security_context.supplemental_groups_policy") {
		t.Errorf("CreateContainer with policy 7: %v, want InvalidArgument naming supplemental_groups_policy", err)
	}
	if l, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{}); err != nil || len(l.Containers) != 0 {
		t.Errorf("after a refused create: %v, %v; want no container", l, err)
	}

	for _, tc := range []struct {
		name string
		sc   *runtimeapi.LinuxContainerSecurityContext
		// uid, gid and groups the process has.
		gid    int64
		groups []int64
	}{
		{"merge", &runtimeapi.LinuxContainerSecurityContext{RunAsUser: &runtimeapi.Int64Value{Value: 1000}, SupplementalGroups: []int64{1234}},
			1000, []int64{1000, 1234, 50000}},
		{"strict", &runtimeapi.LinuxContainerSecurityContext{RunAsUser: &runtimeapi.Int64Value{Value: 1000}, SupplementalGroups: []int64{1234},
			SupplementalGroupsPolicy: runtimeapi.SupplementalGroupsPolicy_Strict}, 1000, []int64{1000, 1234}},
		// The image's user, and a gid given as 0, which /etc/passwd
		// must not replace.
		{"image-user-gid-0", &runtimeapi.LinuxContainerSecurityContext{RunAsUser: &runtimeapi.Int64Value{Value: 1000}, RunAsGroup: &runtimeapi.Int64Value{Value: 0}},
			0, []int64{0, 50000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb.PodSandboxId, Config: ctrCfg(tc.name, tc.sc), SandboxConfig: sbCfg})
			if err != nil {
				t.Fatal(err)
			}
			id := r.ContainerId
			if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
				t.Fatal(err)
			}
			var strs []string
			for _, g := range tc.groups {
				strs = append(strs, fmt.Sprint(g))
			}
			want := fmt.Sprintf("Uid: 1000 1000 1000 1000; Gid: %d %d %d %d; Groups: %s", tc.gid, tc.gid, tc.gid, tc.gid, strings.Join(strs, " "))
			// The main process, read on the host.
			pid := d.inspect(id).Info.PID
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			if err != nil {
				t.Fatal(err)
			}
			if got := statusGroups(string(b)); got != want {
				t.Errorf("main process (pid %d): %s, want %s", pid, got, want)
			}
			// An exec, which must be given the same groups.
			ex, err := rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"cat", "/proc/self/status"}, Timeout: 30})
			if err != nil || ex.ExitCode != 0 {
				t.Fatalf("ExecSync: %v, %v", ex, err)
			}
			if got := statusGroups(string(ex.Stdout)); got != want {
				t.Errorf("exec: %s, want %s", got, want)
			}
			cs, err := rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
			if err != nil {
				t.Fatal(err)
			}
			u := cs.Status.GetUser().GetLinux()
			if u.GetUid() != 1000 || u.GetGid() != tc.gid || !slices.Equal(u.GetSupplementalGroups(), tc.groups) {
				t.Errorf("ContainerStatus.user = %v, want uid 1000 gid %d groups %v", u, tc.gid, tc.groups)
			}
		})
	}
	d.run("crictl", "rmp", "-f", sb.PodSandboxId)
	testutil.AssertNoLeak(t, before, d.roots())
}
