package cri_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/peapod/peapod/internal/testutil"
)

// try runs crictl and returns its stdout and stderr together and its
// error, for the calls that are meant to fail.
func (d *daemon) try(args ...string) (string, error) {
	ep := "unix://" + d.sock
	cmd := exec.Command(d.crictl, append([]string{"--runtime-endpoint", ep, "--image-endpoint", ep, "--timeout", "60s"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// writeJSON writes v (a JSON text) into dir/name and returns the path.
func writeJSON(t *testing.T, dir, name, v string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// inspect is what `crictl inspect` prints, in the parts the tests read.
type inspect struct {
	Info struct {
		PID        int    `json:"pid"`
		PeapodName string `json:"peapodName"`
	} `json:"info"`
	Status struct {
		ID         string `json:"id"`
		State      string `json:"state"`
		ExitCode   int    `json:"exitCode"`
		Reason     string `json:"reason"`
		StartedAt  string `json:"startedAt"`
		FinishedAt string `json:"finishedAt"`
		ImageRef   string `json:"imageRef"`
		LogPath    string `json:"logPath"`
		Metadata   struct {
			Name    string `json:"name"`
			Attempt int    `json:"attempt"`
		} `json:"metadata"`
		Labels map[string]string `json:"labels"`
		Mounts []struct {
			ContainerPath string `json:"containerPath"`
			HostPath      string `json:"hostPath"`
			Readonly      bool   `json:"readonly"`
		} `json:"mounts"`
	} `json:"status"`
}

func (d *daemon) inspect(id string) inspect {
	d.t.Helper()
	var in inspect
	if err := json.Unmarshal([]byte(d.run("crictl", "inspect", id)), &in); err != nil {
		d.t.Fatalf("crictl inspect %s: %v", id, err)
	}
	return in
}

// waitFile waits until path holds want (the supervisor writes the log as
// the container prints; there is no event to wait for from here).
func waitFile(t *testing.T, path, want string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), want) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not hold %q after 10s:\n%s", path, want, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCrictlContainerFlow drives containers through `peapod cri` with
// crictl: create, start, ps, inspect, exec -s (output, exit code,
// timeout, the container's user, env and read-only mount), logs in the
// kubelet's path and format, logs -r after a rotation, a daemon killed
// with SIGKILL while the container runs, stop (timeout then SIGKILL),
// stop again, rm, and the sandbox's stopp and rmp, leaving nothing.
func TestCrictlContainerFlow(t *testing.T) {
	d := startDaemon(t)
	d.run("peapod", "image", "import", busyboxTar, "--name", "busybox:latest")
	dir, logDir, data := t.TempDir(), t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "f"), []byte("hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sb := writeJSON(t, dir, "sandbox.json", fmt.Sprintf(`{
  "metadata": {"name": "flow", "namespace": "default", "attempt": 0, "uid": "uid-flow"},
  "log_directory": %q, "linux": {}}`, logDir))
	ctrCfg := func(name string) string {
		return writeJSON(t, dir, name+".json", fmt.Sprintf(`{
  "metadata": {"name": %q}, "image": {"image": "busybox:latest"},
  "command": ["sh", "-c", "echo hello; echo err >&2; i=0; while true; i=$((i+1)); do echo tick $i; sleep 0.2; done"],
  "envs": [{"key": "FOO", "value": "bar$(NOT_EXPANDED)"}],
  "labels": {"tier": "test"},
  "log_path": %q,
  "mounts": [{"container_path": "/data", "host_path": %q, "readonly": true}],
  "linux": {"security_context": {"run_as_user": {"value": 1000}, "supplemental_groups": [5, 6]}}}`, name, name+".log", data))
	}
	app := ctrCfg("app")

	// Warm-up: the bridge, the network's state and the root's cgroup,
	// which outlive pods, exist before the snapshot. A daemon killed with
	// SIGKILL leaves the container running, and the next one lists it at
	// once and can exec in it (before the snapshot: the daemon's pid
	// changes).
	warm := strings.TrimSpace(d.run("crictl", "runp", sb))
	wid := strings.TrimSpace(d.run("crictl", "create", warm, app, sb))
	d.run("crictl", "start", wid)
	d.kill()
	d.start()
	if got := strings.Fields(d.run("crictl", "ps", "-q", "--state", "running")); len(got) != 1 || got[0] != wid {
		t.Errorf("after a restart of the daemon: running containers %q, want [%s]", got, wid)
	}
	if out := d.run("crictl", "exec", "-s", wid, "cat", "/data/f"); strings.TrimSpace(out) != "hi" {
		t.Errorf("exec after a restart of the daemon = %q", out)
	}
	d.run("crictl", "rmp", "-f", warm)
	before := testutil.TakeSnapshot(t, d.roots())

	pod := strings.TrimSpace(d.run("crictl", "runp", sb))
	id := strings.TrimSpace(d.run("crictl", "create", pod, app, sb))
	if in := d.inspect(id); in.Status.State != "CONTAINER_CREATED" || in.Status.Metadata.Name != "app" || in.Status.Labels["tier"] != "test" {
		t.Errorf("after create: %+v, want CONTAINER_CREATED with the metadata and labels given", in.Status)
	}
	if out, err := d.try("create", pod, app, sb); err == nil || !strings.Contains(out, "AlreadyExists") {
		t.Errorf("a second create of name app attempt 0: %v\n%s, want AlreadyExists", err, out)
	}
	d.run("crictl", "start", id)
	if out, err := d.try("start", id); err == nil || !strings.Contains(out, "only a created container can be started") {
		t.Errorf("a second start: %v\n%s, want a refusal", err, out)
	}
	if got := strings.Fields(d.run("crictl", "ps", "-q", "--state", "running", "--label", "tier=test", "--pod", pod)); len(got) != 1 || got[0] != id {
		t.Errorf("crictl ps --state running = %q, want [%s]", got, id)
	}
	in := d.inspect(id)
	logPath := filepath.Join(logDir, "app.log")
	if in.Status.State != "CONTAINER_RUNNING" || in.Status.LogPath != logPath || !strings.HasPrefix(in.Status.ImageRef, "sha256:") ||
		in.Info.PID <= 0 || len(in.Status.Mounts) != 1 || in.Status.Mounts[0].HostPath != data || !in.Status.Mounts[0].Readonly {
		t.Errorf("after start: %+v, want CONTAINER_RUNNING, log %s, an image id, a pid and the mount", in, logPath)
	}

	// exec -s: the container's own user, groups and env, the mount. The
	// image's /etc/passwd has no uid 1000, so its gid is 0, which joins
	// the groups (as containerd makes them).
	if out := d.run("crictl", "exec", "-s", id, "id"); !strings.Contains(out, "uid=1000 gid=0(root)") || !strings.Contains(out, "groups=0(root),5,6") {
		t.Errorf("exec id = %q, want uid 1000, gid 0 and groups 0,5,6", out)
	}
	// (crictl adds a blank line for each stream.)
	if out := d.run("crictl", "exec", "-s", id, "sh", "-c", "echo $FOO; cat /data/f"); strings.TrimSpace(out) != "bar$(NOT_EXPANDED)\nhi" {
		t.Errorf("exec env and mount = %q", out)
	}
	if out, err := d.try("exec", "-s", id, "touch", "/data/x"); err == nil || !strings.Contains(out, "Read-only file system") {
		t.Errorf("touch on the read-only mount: %v\n%s", err, out)
	}
	if out, err := d.try("exec", "-s", id, "sh", "-c", "echo out; echo oops >&2; exit 3"); err == nil || !strings.Contains(out, "exited with 3") || !strings.Contains(out, "oops") {
		t.Errorf("exec exit 3: %v\n%s, want exit code 3 and the stderr", err, out)
	}
	start := time.Now()
	if out, err := d.try("exec", "-s", "--timeout", "1", id, "sleep", "30"); err == nil || !strings.Contains(out, "timed out") {
		t.Errorf("exec past its timeout: %v\n%s, want a timeout", err, out)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("exec with a 1 s timeout took %v", took)
	}

	// The log: the kubelet's path and the CRI format, both streams.
	log := waitFile(t, logPath, " stdout F tick 1\n")
	for _, want := range []string{" stdout F hello\n", " stderr F err\n"} {
		if !strings.Contains(log, want) {
			t.Errorf("log %s lacks %q:\n%s", logPath, want, log)
		}
	}
	if out := d.run("crictl", "logs", id); !strings.Contains(out, "hello\n") {
		t.Errorf("crictl logs = %q", out)
	}
	// Rotation, as the kubelet does it: rename, then ReopenContainerLog.
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	d.run("crictl", "logs", "-r", id)
	waitFile(t, logPath, " stdout F tick ")

	// sh as the PID 1 of its namespace ignores SIGTERM: SIGKILL follows
	// the timeout.
	start = time.Now()
	d.run("crictl", "stop", "-t", "1", id)
	took := time.Since(start)
	in = d.inspect(id)
	if in.Status.State != "CONTAINER_EXITED" || in.Status.ExitCode != 137 || in.Status.FinishedAt == "" || took < time.Second || took > 10*time.Second {
		t.Errorf("after stop -t 1 (took %v): %+v, want CONTAINER_EXITED with 137 after about 1 s", took, in.Status)
	}
	d.run("crictl", "stop", id)
	if got := strings.Fields(d.run("crictl", "ps", "-a", "-q", "--state", "exited")); len(got) != 1 || got[0] != id {
		t.Errorf("crictl ps -a --state exited = %q, want [%s]", got, id)
	}
	d.run("crictl", "rm", id)
	if got := strings.TrimSpace(d.run("crictl", "ps", "-a", "-q")); got != "" {
		t.Errorf("crictl ps -a after rm = %q, want none", got)
	}

	// A container the sandbox's stop finds running ends with it.
	second := strings.TrimSpace(d.run("crictl", "create", pod, ctrCfg("second"), sb))
	d.run("crictl", "start", second)
	d.run("crictl", "stopp", pod)
	if in := d.inspect(second); in.Status.State != "CONTAINER_EXITED" {
		t.Errorf("after stopp: %+v, want CONTAINER_EXITED", in.Status)
	}
	d.run("crictl", "rm", second)
	d.run("crictl", "rmp", pod)
	if got := strings.TrimSpace(d.run("crictl", "pods", "-q")); got != "" {
		t.Errorf("crictl pods after rmp = %q, want none", got)
	}
	testutil.AssertNoLeak(t, before, d.roots())
}

// pushBusybox writes busybox as a one-layer image whose user is user to
// ref.
func pushBusybox(t *testing.T, ref, user string) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(busyboxTar)
	if err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config = ggcrv1.Config{Cmd: []string{"sleep", "1000"}, Env: []string{"PATH=/bin"}, User: user}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("failed to push %s: %v", ref, err)
	}
}

// TestCrictlImages drives the ImageService with crictl: images, pull
// from a local registry, inspecti (the image's user), rmi, and info and
// version of the runtime.
func TestCrictlImages(t *testing.T) {
	d := startDaemon(t)
	reg := testutil.StartRegistry(t)
	ref := reg.Host + "/app:1"
	pushBusybox(t, ref, "1234:5")
	pushBusybox(t, reg.Host+"/named:1", "nobody")
	if out := d.run("crictl", "version"); !strings.Contains(out, "RuntimeName:  peapod") || !strings.Contains(out, "RuntimeApiVersion:  v1") {
		t.Errorf("crictl version:\n%s", out)
	}
	if out := d.run("crictl", "info"); !strings.Contains(out, `"RuntimeReady"`) {
		t.Errorf("crictl info:\n%s", out)
	}
	if out := strings.TrimSpace(d.run("crictl", "images", "-q")); out != "" {
		t.Errorf("crictl images on a fresh root = %q", out)
	}
	out := d.run("crictl", "pull", ref)
	if !strings.Contains(out, "Image is up to date for sha256:") {
		t.Errorf("crictl pull %s:\n%s", ref, out)
	}
	id := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), "Image is up to date for "))
	d.run("crictl", "pull", reg.Host+"/named:1")
	var st struct {
		Status struct {
			ID          string   `json:"id"`
			RepoTags    []string `json:"repoTags"`
			RepoDigests []string `json:"repoDigests"`
			UID         *struct {
				Value string `json:"value"`
			} `json:"uid"`
			Username string `json:"username"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(d.run("crictl", "inspecti", ref)), &st); err != nil {
		t.Fatalf("crictl inspecti: %v", err)
	}
	if st.Status.ID != id || len(st.Status.RepoTags) != 1 || st.Status.RepoTags[0] != ref || st.Status.UID == nil || st.Status.UID.Value != "1234" || len(st.Status.RepoDigests) != 1 {
		t.Errorf("crictl inspecti %s = %+v, want id %s, its tag, uid 1234 and a repo digest", ref, st.Status, id)
	}
	st.Status.UID = nil
	if err := json.Unmarshal([]byte(d.run("crictl", "inspecti", reg.Host+"/named:1")), &st); err != nil {
		t.Fatalf("crictl inspecti: %v", err)
	}
	if st.Status.Username != "nobody" || st.Status.UID != nil {
		t.Errorf("crictl inspecti of an image with a user name = %+v, want username nobody and no uid", st.Status)
	}
	if got := strings.Fields(d.run("crictl", "images", "-q")); len(got) != 2 {
		t.Errorf("crictl images -q = %q, want two", got)
	}
	if out := d.run("crictl", "images", ref); !strings.Contains(out, reg.Host+"/app") {
		t.Errorf("crictl images %s:\n%s", ref, out)
	}
	if out, err := d.try("pull", reg.Host+"/missing:1"); err == nil {
		t.Errorf("crictl pull of a missing image succeeded:\n%s", out)
	}
	d.run("crictl", "rmi", ref)
	d.run("crictl", "rmi", reg.Host+"/named:1")
	if out := strings.TrimSpace(d.run("crictl", "images", "-q")); out != "" {
		t.Errorf("crictl images after rmi = %q", out)
	}
}
