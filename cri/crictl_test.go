package cri_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/peapod/peapod/internal/testutil"
)

// crictlVersion is the cri-tools release the tests build: the one of the
// Kubernetes minor go.mod's libraries (and k8s.io/cri-api) are at.
const crictlVersion = "v1.37.0"

// toolsDir caches tools the tests build, outside the repository.
func toolsDir() string {
	if d := os.Getenv("PEAPOD_TOOLS"); d != "" {
		return d
	}
	return "/root/.cache/peapod-tools"
}

// crictl returns the path of crictl, building it from the module proxy
// into the tools cache if it is not there (about 35 s on 2 cores).
func crictl(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(toolsDir(), "crictl")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	cmd := exec.Command(goBin, "install", "sigs.k8s.io/cri-tools/cmd/crictl@"+crictlVersion)
	cmd.Dir = os.TempDir() // outside the module: no go.mod of ours applies
	cmd.Env = append(os.Environ(), "GOBIN="+toolsDir(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("failed to build crictl %s: %v\n%s", crictlVersion, err, out)
	}
	return bin
}

// daemon is `peapod cri` running as its own process.
type daemon struct {
	t                      *testing.T
	root, runRoot, sock    string
	bridge, subnet, crictl string
	// cmd is the running daemon; exited receives its Wait; log holds its
	// stderr.
	cmd    *exec.Cmd
	exited chan error
	log    *bytes.Buffer
	// opts are the daemon's extra flags and environment.
	opts daemonOptions
}

// daemonOptions add to the daemon's command line and environment.
type daemonOptions struct {
	args, env []string
}

// startDaemon starts `peapod cri` on a fresh root.
func startDaemon(t *testing.T) *daemon {
	t.Helper()
	return startDaemonWith(t, daemonOptions{})
}

// startDaemonWith starts `peapod cri` on a fresh root with opts.
func startDaemonWith(t *testing.T, opts daemonOptions) *daemon {
	t.Helper()
	testutil.RequireRoot(t)
	dir := shortTempDir(t)
	d := &daemon{
		t: t, root: filepath.Join(dir, "root"), runRoot: filepath.Join(dir, "run"), sock: filepath.Join(dir, "cri.sock"),
		bridge: "pc" + testutil.RandHex(t, 4), subnet: subnets.Pick(t).String(), crictl: crictl(t), opts: opts,
	}
	// Runs after the flows' own cleanup and the daemon's stop (registered
	// later, run earlier).
	t.Cleanup(func() { d.run("peapod", "net", "rm") })
	d.start()
	return d
}

// start starts the daemon on d's root and waits until it says it serves.
func (d *daemon) start() {
	t := d.t
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "peapod"), append([]string{"--root", d.root, "--run-root", d.runRoot,
		"--bridge", d.bridge, "--subnet", d.subnet, "cri", "--listen", d.sock}, d.opts.args...)...)
	cmd.Env = append(os.Environ(), d.opts.env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("failed to start peapod cri: %v", err)
	}
	d.cmd, d.exited, d.log = cmd, make(chan error, 1), &bytes.Buffer{}
	exited, log := d.exited, d.log
	serving := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		said := false
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if !said && strings.Contains(sc.Text(), "serving the CRI on") {
				said = true
				serving <- true
			}
		}
		if !said {
			serving <- false
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if d.cmd != cmd {
			return // killed and restarted by the test
		}
		// By its pid: the daemon this test started, and nothing else.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("peapod cri exited with %v:\n%s", err, log.String())
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("peapod cri did not exit 30 s after SIGTERM")
		}
		if _, err := os.Stat(d.sock); !os.IsNotExist(err) {
			t.Errorf("socket %s left after the daemon exited: %v", d.sock, err)
		}
	})
	if !<-serving {
		t.Fatalf("peapod cri exited before serving:\n%s", log.String())
	}
}

// kill SIGKILLs the daemon (by its pid) and waits for its exit.
func (d *daemon) kill() {
	_ = d.cmd.Process.Kill()
	<-d.exited
	d.cmd = nil
}

// run runs crictl (tool "crictl") or the peapod CLI on the daemon's root
// and returns its stdout, failing the test on error.
func (d *daemon) run(tool string, args ...string) string {
	d.t.Helper()
	var cmd *exec.Cmd
	if tool == "crictl" {
		ep := "unix://" + d.sock
		cmd = exec.Command(d.crictl, append([]string{"--runtime-endpoint", ep, "--image-endpoint", ep, "--timeout", "60s"}, args...)...)
	} else {
		cmd = exec.Command(filepath.Join(binDir, "peapod"), append([]string{"--root", d.root, "--run-root", d.runRoot}, args...)...)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		d.t.Fatalf("%s %s: %v\n%s%s", tool, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// roots names what the daemon's root owns, for the leak snapshot.
func (d *daemon) roots() testutil.Roots {
	sum := sha256.Sum256([]byte(filepath.Clean(d.root)))
	return testutil.Roots{
		Root: d.root, RunRoot: d.runRoot,
		CgroupPrefixes: []string{"peapod-" + hex.EncodeToString(sum[:])[:6]},
		NftTablePrefix: "peapod-" + d.bridge,
		Mine:           []string{" " + d.bridge + " "},
	}
}

// inspectp is what `crictl inspectp` prints, in the parts the test reads.
type inspectp struct {
	Status struct {
		ID       string `json:"id"`
		State    string `json:"state"`
		Metadata struct {
			Name, Namespace, UID string
			Attempt              int
		} `json:"metadata"`
		Network struct {
			IP string `json:"ip"`
		} `json:"network"`
		Labels map[string]string `json:"labels"`
	} `json:"status"`
}

// TestCrictlSandboxFlow drives `peapod cri` with crictl: runp, pods,
// inspectp, stopp, rmp.
func TestCrictlSandboxFlow(t *testing.T) {
	d := startDaemon(t)
	if out := d.run("crictl", "version"); !strings.Contains(out, "RuntimeName:  peapod") {
		t.Errorf("crictl version:\n%s", out)
	}
	cfg := filepath.Join(t.TempDir(), "sandbox.json")
	sandbox := `{
  "metadata": {"name": "nginx-sandbox", "namespace": "default", "attempt": 1, "uid": "hdishd83djaidwnduwk28bcsb"},
  "hostname": "nginx",
  "log_directory": "/tmp",
  "labels": {"app": "nginx"},
  "port_mappings": [{"protocol": 0, "container_port": 80, "host_port": 31081}],
  "linux": {}
}`
	if err := os.WriteFile(cfg, []byte(sandbox), 0o600); err != nil {
		t.Fatal(err)
	}
	// A warm-up sandbox: the bridge and the network's state, which outlive
	// pods, exist before the snapshot.
	warm := strings.TrimSpace(d.run("crictl", "runp", cfg))
	// A daemon killed with SIGKILL leaves its sandboxes running, and the
	// next one (over the stale socket file) answers for them at once.
	d.kill()
	d.start()
	if got := strings.Fields(d.run("crictl", "pods", "-q", "--state", "ready")); len(got) != 1 || got[0] != warm {
		t.Errorf("after a restart of the daemon: ready pods %q, want [%s]", got, warm)
	}
	d.run("crictl", "rmp", "-f", warm)
	before := testutil.TakeSnapshot(t, d.roots())

	id := strings.TrimSpace(d.run("crictl", "runp", cfg))
	if id == "" {
		t.Fatal("crictl runp printed no id")
	}
	if got := strings.Fields(d.run("crictl", "pods", "-q")); len(got) != 1 || got[0] != id {
		t.Errorf("crictl pods -q = %q, want [%s]", got, id)
	}
	if got := strings.Fields(d.run("crictl", "pods", "-q", "--label", "app=nginx", "--state", "ready")); len(got) != 1 {
		t.Errorf("crictl pods --label app=nginx --state ready = %q, want one", got)
	}
	if got := strings.Fields(d.run("crictl", "pods", "-q", "--label", "app=other")); len(got) != 0 {
		t.Errorf("crictl pods --label app=other = %q, want none", got)
	}
	var in inspectp
	if err := json.Unmarshal([]byte(d.run("crictl", "inspectp", id)), &in); err != nil {
		t.Fatalf("crictl inspectp: %v", err)
	}
	ip, err := netip.ParseAddr(in.Status.Network.IP)
	if in.Status.State != "SANDBOX_READY" || err != nil || !netip.MustParsePrefix(d.subnet).Contains(ip) ||
		in.Status.Metadata.Name != "nginx-sandbox" || in.Status.Metadata.Attempt != 1 || in.Status.Labels["app"] != "nginx" {
		t.Errorf("crictl inspectp = %+v, want READY with an IP in %s and the metadata given", in.Status, d.subnet)
	}
	// peapod's own CLI sees the sandbox as a pod of the root.
	if out := d.run("peapod", "ps"); !strings.Contains(out, "nginx-sandbox-") {
		t.Errorf("peapod ps on the CRI root:\n%s", out)
	}
	d.run("crictl", "stopp", id)
	d.run("crictl", "stopp", id)
	if err := json.Unmarshal([]byte(d.run("crictl", "inspectp", id)), &in); err != nil {
		t.Fatalf("crictl inspectp: %v", err)
	}
	if in.Status.State != "SANDBOX_NOTREADY" {
		t.Errorf("after stopp: state %s, want SANDBOX_NOTREADY", in.Status.State)
	}
	d.run("crictl", "rmp", id)
	if got := strings.TrimSpace(d.run("crictl", "pods", "-q")); got != "" {
		t.Errorf("crictl pods after rmp = %q, want none", got)
	}
	testutil.AssertNoLeak(t, before, d.roots())
}
