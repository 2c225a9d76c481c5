package cri_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
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
	"golang.org/x/sys/unix"
)

// critest returns the path of critest (cri-tools' validation suite, a Go
// test binary), building it into the tools cache from the module proxy if
// it is not there (`go test -c` of cmd/critest in the module's source, as
// cri-tools' Makefile does; about 2 minutes on 2 cores).
func critest(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(toolsDir(), "critest")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	dl := exec.Command(goBin, "mod", "download", "-json", "sigs.k8s.io/cri-tools@"+crictlVersion)
	dl.Dir = os.TempDir() // outside the module: no go.mod of ours applies
	out, err := dl.Output()
	if err != nil {
		t.Fatalf("failed to download cri-tools %s: %v", crictlVersion, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download said %s: %v", out, err)
	}
	if err := os.MkdirAll(toolsDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := bin + ".tmp"
	build := exec.Command(goBin, "test", "-c", "-o", tmp, "./cmd/critest")
	build.Dir = mod.Dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=readonly")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("failed to build critest %s: %v\n%s", crictlVersion, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// criImage describes one test image critest pulls: its path under the
// registry, its user and a file that makes it an image of its own.
type critestImage struct {
	path, user, file string
	// passwd and group replace the image's /etc files when set.
	passwd, group string
}

// critestImages are the images of the groups run, built from busybox as
// cri-tools' images/build script builds them (same users), and pushed
// under the registry prefix.
var critestImages = []critestImage{
	{path: "e2e-test-images/busybox:1.29-2"},
	{path: "k8s-staging-cri-tools/test-image-latest:latest", file: "latest"},
	{path: "k8s-staging-cri-tools/test-image-tag:test", file: "tag"},
	{path: "k8s-staging-cri-tools/test-image-tag:all", file: "tag"},
	{path: "k8s-staging-cri-tools/test-image-1:latest", file: "1"},
	{path: "k8s-staging-cri-tools/test-image-2:latest", file: "2"},
	{path: "k8s-staging-cri-tools/test-image-3:latest", file: "3"},
	{path: "k8s-staging-cri-tools/test-image-tags:1", file: "tags"},
	{path: "k8s-staging-cri-tools/test-image-tags:2", file: "tags"},
	{path: "k8s-staging-cri-tools/test-image-tags:3", file: "tags"},
	{path: "k8s-staging-cri-tools/test-image-user-uid:latest", user: "1002"},
	{path: "k8s-staging-cri-tools/test-image-user-username:latest", user: "www-data"},
	{path: "k8s-staging-cri-tools/test-image-user-uid-group:latest", user: "1003:1004"},
	{path: "k8s-staging-cri-tools/test-image-user-username-group:latest", user: "www-data:1004"},
	{path: "k8s-staging-cri-tools/test-image-predefined-group:latest", user: "1000",
		passwd: "root:x:0:0:root:/root:/bin/sh\ndefault-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh\n",
		group:  "root:x:0:\ndefault-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n"},
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// pushCritestImages pushes critestImages to host.
func pushCritestImages(t *testing.T, host string) {
	t.Helper()
	base, err := os.ReadFile(busyboxTar)
	if err != nil {
		t.Fatal(err)
	}
	baseLayer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(base)), nil })
	if err != nil {
		t.Fatal(err)
	}
	for _, ci := range critestImages {
		files := map[string]string{}
		if ci.file != "" {
			files[ci.file] = ci.file + "\n"
		}
		if ci.passwd != "" {
			files["etc/passwd"], files["etc/group"] = ci.passwd, ci.group
		}
		img := critestImageOf(t, baseLayer, files, ci.user)
		// critest's --registry-prefix drops the tag (PrepareImageName
		// keeps only the path and adds ":latest"), so each image is
		// pushed under :latest too; the tags that tell images apart need
		// the registry mirror instead.
		repo, _, _ := strings.Cut(ci.path, ":")
		for _, p := range []string{ci.path, repo + ":latest"} {
			ref, err := name.ParseReference(host + "/" + p)
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Write(ref, img); err != nil {
				t.Fatalf("failed to push %s: %v", ref, err)
			}
		}
	}
}

// pgrepScript stands in for busybox's pgrep applet, which Debian's
// busybox-static lacks and critest's exec timeout spec calls: it prints
// the pids whose command name holds the pattern.
const pgrepScript = `#!/bin/sh
found=1
for d in /proc/[0-9]*; do
	read -r comm 2>/dev/null <"$d/comm" || continue
	case "$comm" in *"$1"*) echo "${d#/proc/}"; found=0 ;; esac
done
exit $found
`

// critestImageOf is busybox with files and bin/pgrep in a second layer,
// running sh as user, as cri-tools' images are.
func critestImageOf(t *testing.T, base ggcrv1.Layer, files map[string]string, user string) ggcrv1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, base, fileLayer(t, files))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config = ggcrv1.Config{Cmd: []string{"sh"}, Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, User: user}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	return img
}

// fileLayer is a layer holding files (path → content, mode 0644) and
// bin/pgrep.
func fileLayer(t *testing.T, files map[string]string) ggcrv1.Layer {
	t.Helper()
	entries := []tarEntry{{name: "bin/pgrep", body: pgrepScript, mode: 0o755}}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		entries = append(entries, tarEntry{name: n, body: files[n]})
	}
	data := tarOfEntries(t, entries)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// critestFocus is the spec groups peapod supports so far.
//
// Image Manager is left out until the daemon's registry configuration
// mirrors registry.k8s.io and gcr.io to the local registry: its specs ask
// for images by their original names, which --registry-prefix does not
// rename.
//
// Security Context (16 more specs pass, and it adds about 70 s) runs by
// hand with PEAPOD_CRITEST_FOCUS.
const critestFocus = `\[k8s\.io\] (Runtime info|PodSandbox|Container|Idempotence|Streaming) `

// critestSkip are specs of those groups that need what peapod does not
// have yet: sandbox metrics, sandbox sysctls,
// bidirectional mount propagation (refused with InvalidArgument), host
// PID and IPC namespaces, seccomp; and Security Context specs whose
// images the test does not build yet (nginx for the PID specs, the
// nonewprivs image, ipcs, a real /bin/ls to mask: Debian's busybox is one
// binary and its applets symlinks, so masking /bin/ls masks busybox); and
// the port-forward specs, whose nginx images the test does not build yet.
const critestSkip = `metrics|sysctls|'rshared'|HostPID|HostIpc|PodPID|ContainerPID|MaskedPaths|SeccompProfilePath|NoNewPrivs|support portforward`

// critestReport is the part of ginkgo's JSON report the test reads.
type critestReport []struct {
	SpecReports []struct {
		ContainerHierarchyTexts []string
		LeafNodeText            string
		State                   string
		NumAttempts             int
		Failure                 *struct {
			Message string
		}
	}
}

// TestCritest runs cri-tools' critest against `peapod cri` for the spec
// groups peapod supports, with the test images built here from busybox
// and pulled from a local registry through --registry-prefix, and fails
// on any spec that fails. PEAPOD_CRITEST_FOCUS and PEAPOD_CRITEST_SKIP
// replace the regular expressions; PEAPOD_CRITEST_TABLE names a file that
// gets the per-group table (README's).
func TestCritest(t *testing.T) {
	if testing.Short() {
		t.Skip("critest takes minutes")
	}
	d := startDaemon(t)
	bin := critest(t)
	reg := testutil.StartRegistry(t)
	pushCritestImages(t, reg.Host)
	// The specs create containers of the default image by its original
	// name (only pulls get the prefix): the store holds it by that name,
	// imported from a `docker save` archive of the pushed image.
	saved := filepath.Join(t.TempDir(), "busybox.tar")
	const defaultImage = "registry.k8s.io/e2e-test-images/busybox:1.29-2"
	tag, err := name.NewTag(defaultImage)
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := remote.Image(mustRef(t, reg.Host+"/e2e-test-images/busybox:1.29-2"))
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(saved, tag, pushed); err != nil {
		t.Fatal(err)
	}
	d.run("peapod", "image", "import", saved, "--name", defaultImage)
	// Bidirectional propagation needs a shared mount under the host path;
	// / is private here, so critest's temp dirs go in a shared mount of
	// the test's own.
	shared := t.TempDir()
	if err := unix.Mount(shared, shared, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(shared, unix.MNT_DETACH); err != nil {
			t.Errorf("failed to unmount %s: %v", shared, err)
		}
	})
	if err := unix.Mount("", shared, "", unix.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	focus, skip := critestFocus, critestSkip
	if f := os.Getenv("PEAPOD_CRITEST_FOCUS"); f != "" {
		focus = f
	}
	if s, ok := os.LookupEnv("PEAPOD_CRITEST_SKIP"); ok {
		skip = s
	}
	report := filepath.Join(t.TempDir(), "report.json")
	ep := "unix://" + d.sock
	args := []string{"--runtime-endpoint", ep, "--image-endpoint", ep, "--registry-prefix", reg.Host,
		"--ginkgo.focus", focus, "--ginkgo.json-report", report, "--ginkgo.no-color", "--ginkgo.timeout", "15m",
		// A stop right after a start can find busybox's top, the
		// specs' PID 1, before it installed its SIGTERM handler: the
		// signal is then dropped (a namespace's init ignores what it
		// does not handle), the stop waits out its timeout, and critest
		// fails the spec at that same instant. On a loaded machine that
		// window is wide enough to hit; a second attempt is reported.
		"--ginkgo.flake-attempts", "2"}
	if skip != "" {
		args = append(args, "--ginkgo.skip", skip)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "TMPDIR="+shared)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	runErr := cmd.Run()
	took := time.Since(start)
	// What a failed spec left, so the daemon's root is empty at the end.
	if ids := strings.Fields(d.run("crictl", "pods", "-q")); len(ids) > 0 {
		d.run("crictl", append([]string{"rmp", "-f"}, ids...)...)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("critest wrote no report (%v):\n%s", runErr, out.String())
	}
	var rep critestReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("critest's report: %v", err)
	}
	type counts struct{ passed, failed, skipped int }
	groups := map[string]*counts{}
	var failed, skipped []string
	for _, suite := range rep {
		for _, s := range suite.SpecReports {
			if len(s.ContainerHierarchyTexts) == 0 {
				continue // a suite node
			}
			g := strings.TrimPrefix(s.ContainerHierarchyTexts[0], "[k8s.io] ")
			c := groups[g]
			if c == nil {
				c = &counts{}
				groups[g] = c
			}
			switch s.State {
			case "passed":
				c.passed++
				if s.NumAttempts > 1 {
					t.Logf("critest: passed at attempt %d: %s %s", s.NumAttempts, strings.Join(s.ContainerHierarchyTexts, " "), s.LeafNodeText)
				}
			case "skipped", "pending":
				c.skipped++
				if c := s.ContainerHierarchyTexts; len(c) > 0 && strings.HasPrefix(c[0], "[k8s.io] ") {
					skipped = append(skipped, strings.Join(c, " ")+" "+s.LeafNodeText)
				}
			default:
				c.failed++
				msg := ""
				if s.Failure != nil {
					msg = s.Failure.Message
				}
				failed = append(failed, fmt.Sprintf("%s %s: %s: %s", strings.Join(s.ContainerHierarchyTexts, " "), s.LeafNodeText, s.State, msg))
			}
		}
	}
	var names []string
	for g := range groups {
		names = append(names, g)
	}
	sort.Strings(names)
	var table strings.Builder
	table.WriteString("| group | passed | failed | skipped |\n| --- | --- | --- | --- |\n")
	var total counts
	for _, g := range names {
		c := groups[g]
		if c.passed+c.failed == 0 {
			continue // not focused
		}
		total.passed, total.failed, total.skipped = total.passed+c.passed, total.failed+c.failed, total.skipped+c.skipped
		fmt.Fprintf(&table, "| %s | %d | %d | %d |\n", g, c.passed, c.failed, c.skipped)
	}
	fmt.Fprintf(&table, "| all (%s) | %d | %d | %d |\n", took.Round(time.Second), total.passed, total.failed, total.skipped)
	t.Logf("critest %s against peapod cri:\n%s", crictlVersion, table.String())
	sort.Strings(skipped)
	t.Logf("skipped:\n%s", strings.Join(skipped, "\n"))
	if p := os.Getenv("PEAPOD_CRITEST_TABLE"); p != "" {
		os.WriteFile(p, []byte(table.String()), 0o644)
	}
	for _, f := range failed {
		t.Errorf("critest: %s", f)
	}
	if runErr != nil && len(failed) == 0 {
		t.Errorf("critest failed without a failed spec (%v):\n%s", runErr, out.String())
	}
	if total.passed == 0 {
		t.Errorf("critest passed no spec:\n%s", out.String())
	}
	if t.Failed() {
		t.Logf("critest output:\n%s", out.String())
		if p := os.Getenv("PEAPOD_CRITEST_OUT"); p != "" {
			os.WriteFile(p, out.Bytes(), 0o644)
		}
	}
}

// tarEntry is a regular file of a test layer (mode 0644 unless set).
type tarEntry struct {
	name, body string
	mode       int64
}

// tarOfEntries is a layer tar of entries (mode 0644, owned by root), with
// a directory entry for each parent.
func tarOfEntries(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, e := range entries {
		for d := filepath.Dir(e.name); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
				t.Fatal(err)
			}
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(e.body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
