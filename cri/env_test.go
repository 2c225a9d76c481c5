package cri_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/peapod/peapod/cni"
	"github.com/peapod/peapod/cri"
	"github.com/peapod/peapod/internal/testutil"
	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/pod"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// binDir holds peapod and its helpers, built once by TestMain for root;
// busyboxTar is the test image (scripts/mkimage-busybox.sh).
var binDir, busyboxTar string

// subnets hands each test's pod network a /24 of its own.
var subnets = testutil.NewSubnets("10.227.0.0/16")

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

// runMain builds the binaries unless not root (then every kernel test
// skips, or fails under CI=true, through testutil.RequireRoot).
func runMain(m *testing.M) int {
	if os.Geteuid() != 0 {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "peapod-cri-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cri:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	b, err := testutil.BuildPeapod(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cri:", err)
		return 1
	}
	binDir, busyboxTar = dir, b.BusyboxTar
	return m.Run()
}

// env is one CRI server on a root and network of its own, reached through
// the real gRPC client over its unix socket.
type env struct {
	t testing.TB
	// dir holds the roots and the socket.
	dir, root, runRoot, sock string
	// bridge and subnet are the root's pod network.
	bridge string
	subnet cni.Config
	// m is the server's pod manager.
	m *pod.Manager
	// rt is the RuntimeService client over conn.
	rt   runtimeapi.RuntimeServiceClient
	conn *grpc.ClientConn
}

// shortTempDir makes a temp dir with a short path (unix socket paths are
// limited to 107 bytes), removed after the test.
func shortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ppcri")
	if err != nil {
		t.Fatalf("failed to make temp dir: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("failed to remove temp dir %q (a leaked mount?): %v", dir, err)
		}
	})
	return dir
}

// netConfig is a fresh test network: a random bridge on a /24 of its own.
func netConfig(t testing.TB, root string) cni.Config {
	c := cni.DefaultConfig(root)
	c.Bridge = "pc" + testutil.RandHex(t, 4)
	c.Subnet = subnets.Pick(t)
	c.Gateway = c.Subnet.Addr().Next()
	c.DataDir = layout.NetDataDir(root, c.Bridge)
	return c
}

// newEnv starts a CRI server in this process and connects to it.
func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvWith(t, false)
}

// newStreamingEnv is newEnv whose server runs a streaming server too.
func newStreamingEnv(t testing.TB) *env {
	t.Helper()
	return newEnvWith(t, true)
}

func newEnvWith(t testing.TB, streaming bool) *env {
	t.Helper()
	testutil.RequireRoot(t)
	e := &env{t: t, dir: shortTempDir(t)}
	e.root, e.runRoot, e.sock = filepath.Join(e.dir, "root"), filepath.Join(e.dir, "run"), filepath.Join(e.dir, "cri.sock")
	e.subnet = netConfig(t, e.root)
	e.bridge = e.subnet.Bridge
	m, err := pod.Open(pod.Options{
		Root: e.root, RunRoot: e.runRoot, Network: e.subnet,
		Supervisor: filepath.Join(binDir, "peapod-supervisor"), Init: filepath.Join(binDir, "peapod-init"),
	})
	if err != nil {
		t.Fatalf("failed to open the pod manager: %v", err)
	}
	e.m = m
	// Registered first, so it runs last: the bridge goes once the pods
	// (removed by the tests, or by the sweep below) are gone.
	t.Cleanup(func() {
		if err := m.RemoveNetwork(); err != nil {
			t.Errorf("failed to remove the test network: %v", err)
		}
	})
	ln, err := cri.Listen(e.sock)
	if err != nil {
		t.Fatalf("failed to listen: %v", err)
	}
	srv := cri.New(m, "test")
	if streaming {
		_, stop, err := srv.StartStreaming(cri.DefaultStreamingAddress)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stop() })
	}
	g := cri.NewGRPCServer(srv)
	served := make(chan error, 1)
	go func() { served <- g.Serve(ln) }()
	conn, err := grpc.NewClient("unix://"+e.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("failed to make a client: %v", err)
	}
	e.rt, e.conn = runtimeapi.NewRuntimeServiceClient(conn), conn
	t.Cleanup(func() {
		e.removeAll()
		conn.Close()
		g.Stop()
		if err := <-served; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	return e
}

// ctx is a bounded context for one call.
func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	e.t.Cleanup(cancel)
	return ctx
}

// removeAll removes every sandbox a failed test left.
func (e *env) removeAll() {
	l, err := e.rt.ListPodSandbox(e.ctx(), &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		e.t.Errorf("failed to list sandboxes: %v", err)
		return
	}
	for _, sb := range l.Items {
		if _, err := e.rt.RemovePodSandbox(e.ctx(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			e.t.Errorf("failed to remove sandbox %s: %v", sb.Id, err)
		}
	}
}

// roots names what the server's root owns, for the leak snapshot.
func (e *env) roots() testutil.Roots {
	return testutil.Roots{
		Root: e.root, RunRoot: e.runRoot,
		CgroupPrefixes: []string{e.m.CgroupRoot()},
		NftTablePrefix: "peapod-" + e.bridge,
		Mine:           []string{" " + e.bridge + " "},
	}
}

// snapshot warms the root up (one sandbox run and removed, so the bridge
// and the network's state, which outlive pods, exist) and takes the leak
// snapshot.
func (e *env) snapshot() *testutil.Snapshot {
	e.t.Helper()
	id := e.run(config("warmup", 0))
	v := e.status(id)
	e.remove(id)
	waitGone(e.t, v.SupervisorPID)
	return testutil.TakeSnapshot(e.t, e.roots())
}

// config is a minimal sandbox config.
func config(name string, attempt uint32) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "default", Uid: "uid-" + name, Attempt: attempt},
	}
}

// run runs a sandbox and returns its id.
func (e *env) run(cfg *runtimeapi.PodSandboxConfig) string {
	e.t.Helper()
	r, err := e.rt.RunPodSandbox(e.ctx(), &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		e.t.Fatalf("RunPodSandbox %s: %v", cfg.Metadata.Name, err)
	}
	return r.PodSandboxId
}

// remove removes a sandbox.
func (e *env) remove(id string) {
	e.t.Helper()
	if _, err := e.rt.RemovePodSandbox(e.ctx(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		e.t.Fatalf("RemovePodSandbox %s: %v", id, err)
	}
}

// sandboxStatus is PodSandboxStatus with its verbose info decoded.
type sandboxStatus struct {
	*runtimeapi.PodSandboxStatus
	info
}

// status asks for a sandbox's verbose status.
func (e *env) status(id string) sandboxStatus {
	e.t.Helper()
	r, err := e.rt.PodSandboxStatus(e.ctx(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
	if err != nil {
		e.t.Fatalf("PodSandboxStatus %s: %v", id, err)
	}
	return sandboxStatus{r.Status, decodeInfo(e.t, r.Info)}
}

// waitGone waits until pid (a process this test did not start, so it
// cannot be waited for) has exited and been reaped.
func waitGone(t testing.TB, pid int) {
	t.Helper()
	if pid <= 0 {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still exists after 10s", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// info is the verbose info of PodSandboxStatus.
type info struct {
	SupervisorPID int    `json:"supervisorPid"`
	Netns         string `json:"netns"`
	HostVeth      string `json:"hostVeth"`
	RunDir        string `json:"runDir"`
	Phase         string `json:"phase"`
}

func decodeInfo(t testing.TB, m map[string]string) info {
	t.Helper()
	var i info
	if err := json.Unmarshal([]byte(m["info"]), &i); err != nil {
		t.Fatalf("verbose info %q: %v", m["info"], err)
	}
	return i
}
