package cri_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
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

// critestImage describes one test image critest pulls: its original
// reference, its user and command, and what its second layer adds to
// busybox.
type critestImage struct {
	ref, user string
	// cmd is the image's command (default sh).
	cmd []string
	// files are added (path → content, mode 0644); exes are added with
	// their modes (the helper's copies).
	files map[string]string
	exes  []tarEntry
}

// critestHelperPath is where critestImages find the helper binary
// (cri/testdata/critest-helper), built by TestCritest.
const critestHelperPath = "<critest-helper>"

// The registries critest's images come from: registry.k8s.io for the e2e
// images and the pause image (k8s.gcr.io's too), gcr.io for cri-tools'
// own.
const (
	e2eImages      = "registry.k8s.io/e2e-test-images/"
	criToolsImages = "gcr.io/k8s-staging-cri-tools/"
)

// webPage is what the web server stand-ins serve.
const webPage = "<title>Welcome to nginx!</title>\n"

// critestImages are the images of the groups run, built from busybox as
// cri-tools' images/build script builds them (same users), with the
// stand-ins of nginx, httpd and nonewprivs, under their original names
// and tags: the daemon's registry config mirrors their registries to the
// local registry.
var critestImages = []critestImage{
	{ref: e2eImages + "busybox:1.29-2"},
	// nginx: the helper under its name (a pid file, "master process" in
	// its cmdline, a page on port 80), as Networking, port-forward and
	// the PID namespace specs need.
	{ref: e2eImages + "nginx:1.14-2", cmd: []string{"nginx", "-g", "daemon off;"},
		exes: []tarEntry{{name: "usr/sbin/nginx", body: critestHelperPath, mode: 0o755}}},
	// The host-network nginx of the port-forward spec, on port 12003.
	{ref: criToolsImages + "hostnet-nginx-amd64:latest", cmd: []string{"nginx", "-p", "12003"},
		exes: []tarEntry{{name: "usr/sbin/nginx", body: critestHelperPath, mode: 0o755}}},
	// httpd: busybox's, saying its name in the log first (Multiple
	// Containers checks the log holds "httpd").
	{ref: e2eImages + "httpd:2.4.39-4", cmd: []string{"sh", "-c", "echo httpd: serving /var/www on port 80; exec httpd -f -p 80 -h /var/www"},
		files: map[string]string{"var/www/index.html": webPage}},
	// nonewprivs: the helper setuid root, printing its effective uid.
	{ref: e2eImages + "nonewprivs:1.3", cmd: []string{"/usr/local/bin/nonewprivs"},
		exes: []tarEntry{{name: "usr/local/bin/nonewprivs", body: critestHelperPath, mode: 0o4755}}},
	// The same image from two registries (one image, two names).
	{ref: "registry.k8s.io/pause:3.9", files: map[string]string{"pause": "pause\n"}},
	{ref: "k8s.gcr.io/pause:3.9", files: map[string]string{"pause": "pause\n"}},
	{ref: criToolsImages + "test-image-latest:latest", files: map[string]string{"latest": "latest\n"}},
	{ref: criToolsImages + "test-image-tag:test", files: map[string]string{"tag": "tag\n"}},
	{ref: criToolsImages + "test-image-tag:all", files: map[string]string{"tag": "tag\n"}},
	{ref: criToolsImages + "test-image-1:latest", files: map[string]string{"1": "1\n"}},
	{ref: criToolsImages + "test-image-2:latest", files: map[string]string{"2": "2\n"}},
	{ref: criToolsImages + "test-image-3:latest", files: map[string]string{"3": "3\n"}},
	{ref: criToolsImages + "test-image-tags:1", files: map[string]string{"tags": "tags\n"}},
	{ref: criToolsImages + "test-image-tags:2", files: map[string]string{"tags": "tags\n"}},
	{ref: criToolsImages + "test-image-tags:3", files: map[string]string{"tags": "tags\n"}},
	{ref: criToolsImages + "test-image-user-uid:latest", user: "1002"},
	{ref: criToolsImages + "test-image-user-username:latest", user: "www-data"},
	{ref: criToolsImages + "test-image-user-uid-group:latest", user: "1003:1004"},
	{ref: criToolsImages + "test-image-user-username-group:latest", user: "www-data:1004"},
	{ref: criToolsImages + "test-image-predefined-group:latest", user: "1000", files: predefinedGroupFiles},
}

// predefinedGroupFiles are test-image-predefined-group's /etc/passwd and
// /etc/group: default-user (uid 1000) is a member of group-defined-in-image
// (gid 50000).
var predefinedGroupFiles = map[string]string{
	"etc/passwd": "root:x:0:0:root:/root:/bin/sh\ndefault-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh\n",
	"etc/group":  "root:x:0:\ndefault-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n",
}

// mirrored are the registries the daemon's registry config sends to the
// local registry.
var mirrored = []string{"registry.k8s.io", "k8s.gcr.io", "gcr.io"}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// localPath is ref's repository and tag on the mirror: the original ones
// without the registry, as a registry mirror holds them.
func localPath(t *testing.T, ref string) string {
	t.Helper()
	r := mustRef(t, ref)
	return r.Context().RepositoryStr() + ":" + r.Identifier()
}

// pushCritestImages pushes critestImages to host under their original
// paths and tags, with helper (a file) where they ask for the helper.
func pushCritestImages(t *testing.T, host, helper string) {
	t.Helper()
	base, err := os.ReadFile(busyboxTar)
	if err != nil {
		t.Fatal(err)
	}
	helperBin, err := os.ReadFile(helper)
	if err != nil {
		t.Fatal(err)
	}
	baseLayer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(base)), nil })
	if err != nil {
		t.Fatal(err)
	}
	for _, ci := range critestImages {
		var exes []tarEntry
		for _, e := range ci.exes {
			if e.body == critestHelperPath {
				e.body = string(helperBin)
			}
			exes = append(exes, e)
		}
		img := critestImageOf(t, baseLayer, ci.files, exes, ci.user, ci.cmd)
		ref := mustRef(t, host+"/"+localPath(t, ci.ref))
		if err := remote.Write(ref, img); err != nil {
			t.Fatalf("failed to push %s as %s: %v", ci.ref, ref, err)
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

// ipcsScript stands in for `ipcs -m` (util-linux's; busybox-static has
// no ipcs), which critest's host IPC specs run: the SysV shared memory
// segments of the caller's IPC namespace, which /proc/sysvipc/shm lists
// for whoever reads it. The header holds no digit, so a namespace without
// segments shows no id.
const ipcsScript = `#!/bin/sh
echo "------ Shared Memory Segments --------"
echo "key        shmid      owner      perms      bytes      nattch     status"
tail -n +2 /proc/sysvipc/shm | while read -r key shmid perms size cpid lpid nattch uid rest; do
	printf '0x%08x %-10s %-10s %-10s %-10s %-10s\n' "$((key & 0xffffffff))" "$shmid" "$uid" "$perms" "$size" "$nattch"
done
`

// critestImageOf is busybox with files, exes and bin/pgrep in a second
// layer, running cmd (default sh) as user, as cri-tools' images are.
func critestImageOf(t *testing.T, base ggcrv1.Layer, files map[string]string, exes []tarEntry, user string, cmd []string) ggcrv1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, base, fileLayer(t, files, exes))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	if cmd == nil {
		cmd = []string{"sh"}
	}
	cfg.Config = ggcrv1.Config{Cmd: cmd, Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, User: user}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	return img
}

// fileLayer is a layer holding files (path → content, mode 0644), exes,
// bin/pgrep and bin/ipcs.
func fileLayer(t *testing.T, files map[string]string, exes []tarEntry) ggcrv1.Layer {
	t.Helper()
	entries := append([]tarEntry{{name: "bin/pgrep", body: pgrepScript, mode: 0o755}, {name: "bin/ipcs", body: ipcsScript, mode: 0o755}}, exes...)
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

// critestFocus is the spec groups peapod supports so far: all but
// AppArmor, SELinux and NRI (not supported), Image Volume (not supported)
// and the benchmarks.
const critestFocus = `\[k8s\.io\] (Runtime info|PodSandbox|Container|Idempotence|Streaming|Image Manager|Image Consistency|Image Identifier Consistency|Networking|Multiple Containers|Security Context) `

// critestSkip are specs of those groups that need what peapod does not
// have yet: the image pinned to an upstream digest, which no image built
// here can have; and MaskedPaths, which masks /bin/ls and expects `sh -c
// ls` to fail: Debian's busybox-static, the only static busybox here, has
// a standalone shell that runs its ls applet in-process without executing
// /bin/ls, so no image built from it can show the mask (the masks are
// tested in tests/e2e and namespaces/containerinit). The host PID and IPC
// specs, the sysctls ones and bidirectional ('rshared') propagation run:
// the test gives critest and the daemon a mount and IPC namespace of their
// own (privateHost).
const critestSkip = `MaskedPaths|image with digest`

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
// and pulled by their original names from a local registry that the
// daemon's registry config mirrors registry.k8s.io, k8s.gcr.io and gcr.io
// to; an egress guard fails the test if the daemon reaches anything
// beyond loopback. It fails on any spec that fails. PEAPOD_CRITEST_FOCUS
// and PEAPOD_CRITEST_SKIP replace the regular expressions;
// PEAPOD_CRITEST_TABLE names a file that gets the per-group table
// (README's); PEAPOD_CRITEST_RESULTS names a directory that gets the
// counts as peapod-cri.json (scripts/bench/s10-critest.sh reads it).
func TestCritest(t *testing.T) {
	if testing.Short() {
		t.Skip("critest takes minutes")
	}
	// Before anything touches root's tool cache (the logic tier runs the
	// tests as nobody: this one must skip there, not fail).
	testutil.RequireRoot(t)
	e := setupCritest(t)
	// The daemon pulls through a registry config that mirrors critest's
	// registries to the local registry, so every image keeps its original
	// name and tag; anything the mirror cannot serve falls back to the
	// registry itself, which the egress guard stands in for.
	regConfig := filepath.Join(t.TempDir(), "registries.toml")
	var toml strings.Builder
	for _, r := range mirrored {
		fmt.Fprintf(&toml, "[registry.%q]\nmirrors = [%q]\n\n", r, e.reg.Host)
	}
	if err := os.WriteFile(regConfig, []byte(toml.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemonWith(t, daemonOptions{args: []string{"--registry-config", regConfig}, env: e.guard.env()})
	e.checkEgress(t, "peapod cri", d.try)
	res := e.run(t, "unix://"+d.sock)
	// What a failed spec left, so the daemon's root is empty at the end.
	if ids := strings.Fields(d.run("crictl", "pods", "-q")); len(ids) > 0 {
		d.run("crictl", append([]string{"rmp", "-f"}, ids...)...)
	}
	res.report(t, "peapod cri", "peapod-cri")
	if p := os.Getenv("PEAPOD_CRITEST_TABLE"); p != "" {
		os.WriteFile(p, []byte(res.table()), 0o644)
	}
	for _, f := range res.Failed {
		t.Errorf("critest: %s", f)
	}
	for _, f := range res.Flaky {
		t.Errorf("critest: a spec failed once: %s", f)
	}
	if res.runErr != nil && len(res.Failed) == 0 {
		t.Errorf("critest failed without a failed spec (%v):\n%s", res.runErr, res.out)
	}
	if t.Failed() {
		t.Logf("critest output:\n%s", res.out)
		if p := os.Getenv("PEAPOD_CRITEST_OUT"); p != "" {
			os.WriteFile(p, []byte(res.out), 0o644)
		}
	}
}

// critestEnv is what a critest run needs whatever the runtime: critest
// itself, the local registry holding the test images, the egress guard
// the runtime's HTTP(S) goes through, and the shared mount critest's
// temp dirs go in.
type critestEnv struct {
	bin, helper, shared string
	reg                 *testutil.Registry
	guard               *egressGuard
}

// setupCritest builds critest and the helper, starts the registry with
// the test images pushed under their original names and the egress
// guard, and makes the shared mount; all undone after the test.
func setupCritest(t *testing.T) *critestEnv {
	t.Helper()
	e := &critestEnv{bin: critest(t), helper: buildCritestHelper(t), reg: testutil.StartRegistry(t)}
	pushCritestImages(t, e.reg.Host, e.helper)
	e.guard = startEgressGuard(t)
	// critest's temp dirs (host paths it mounts on and makes shared): the
	// runtime and critest run in a mount and IPC namespace of the test's
	// own, with / rshared (bidirectional propagation needs a shared mount
	// under the host path; the host's / is private here), and the test
	// checks afterwards that none of their mounts reached the host. The
	// caller starts the runtime and critest from this goroutine.
	e.shared = t.TempDir()
	privateHost(t, e.shared)
	return e
}

// checkEgress checks, with crictl (try) against the runtime, that a pull
// the mirror cannot serve goes on to registry.k8s.io itself, that is to
// the guard, which refuses it; and, after the test, that nothing else
// reached the guard.
func (e *critestEnv) checkEgress(t *testing.T, runtime string, try func(args ...string) (string, error)) {
	t.Helper()
	if out, err := try("pull", "registry.k8s.io/e2e-test-images/absent:1"); err == nil {
		t.Fatalf("%s: a pull of an image the mirror lacks succeeded:\n%s", runtime, out)
	}
	if got := e.guard.take(); len(got) != 1 || got[0] != "registry.k8s.io:443" {
		t.Fatalf("the egress guard saw %q after a pull by %s the mirror could not serve, want [registry.k8s.io:443]", got, runtime)
	}
	t.Cleanup(func() {
		if got := e.guard.take(); len(got) > 0 {
			t.Errorf("%s reached beyond the local registry during critest: %q", runtime, got)
		}
	})
}

// critestCounts are one spec group's outcomes.
type critestCounts struct {
	Group                   string
	Passed, Failed, Skipped int
}

// critestResult is one critest run's outcome, per group.
type critestResult struct {
	Runtime string
	// Focus and Skip are the expressions critest ran with.
	Focus, Skip string
	// Seconds is critest's wall time.
	Seconds float64
	// Groups are the focused groups, sorted; Failed names each failed
	// spec with the first line of its message; Flaky the specs that
	// passed at a second attempt.
	Groups                 []critestCounts
	Failed, Skipped, Flaky []string
	runErr                 error
	out                    string
}

// run runs critest against the CRI endpoint ep (runtime and image
// service) with the focus and skip expressions (critestFocus,
// critestSkip, or PEAPOD_CRITEST_FOCUS and PEAPOD_CRITEST_SKIP) and reads
// its report.
func (e *critestEnv) run(t *testing.T, ep string) *critestResult {
	t.Helper()
	focus, skip := critestFocus, critestSkip
	if f := os.Getenv("PEAPOD_CRITEST_FOCUS"); f != "" {
		focus = f
	}
	if s, ok := os.LookupEnv("PEAPOD_CRITEST_SKIP"); ok {
		skip = s
	}
	report := filepath.Join(t.TempDir(), "report.json")
	args := []string{"--runtime-endpoint", ep, "--image-endpoint", ep,
		"--ginkgo.focus", focus, "--ginkgo.json-report", report, "--ginkgo.no-color", "--ginkgo.timeout", "15m",
		// A second attempt keeps the containerd anchor's table about
		// its features: runc's stop can reach busybox's top, the specs'
		// PID 1, before it installed its SIGTERM handler, and the kernel
		// drops the signal. peapod sends it again once the handler is
		// there (runtime/supervisor/stopsignal.go), and TestCritest
		// fails on a spec that needed a second attempt.
		"--ginkgo.flake-attempts", "2"}
	if skip != "" {
		args = append(args, "--ginkgo.skip", skip)
	}
	cmd := exec.Command(e.bin, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "TMPDIR="+e.shared)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	runErr := cmd.Run()
	res := &critestResult{Focus: focus, Skip: skip, Seconds: time.Since(start).Seconds(), runErr: runErr, out: out.String()}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("critest wrote no report (%v):\n%s", runErr, out.String())
	}
	if err := res.parse(b, focus); err != nil {
		t.Fatalf("critest's report: %v", err)
	}
	return res
}

// parse reads ginkgo's JSON report b into r: per spec group (the first
// container's text without "[k8s.io] "), the passed, failed and skipped
// specs (skipped by the skip expression, by critest itself, or not
// focused), for the groups with a spec matching focus.
func (r *critestResult) parse(b []byte, focus string) error {
	var rep critestReport
	if err := json.Unmarshal(b, &rep); err != nil {
		return err
	}
	focused, err := regexp.Compile(focus)
	if err != nil {
		return fmt.Errorf("focus %q: %w", focus, err)
	}
	groups := map[string]*critestCounts{}
	// A group is in the table when a spec of it matches the focus, even
	// if the runtime ran none (critest skips some by what the runtime
	// answers): the tables of two runtimes have the same rows.
	inFocus := map[string]bool{}
	for _, suite := range rep {
		for _, s := range suite.SpecReports {
			if len(s.ContainerHierarchyTexts) == 0 {
				continue // a suite node
			}
			spec := strings.Join(s.ContainerHierarchyTexts, " ") + " " + s.LeafNodeText
			g := strings.TrimPrefix(s.ContainerHierarchyTexts[0], "[k8s.io] ")
			c := groups[g]
			if c == nil {
				c = &critestCounts{Group: g}
				groups[g] = c
			}
			if focused.MatchString(spec) {
				inFocus[g] = true
			}
			switch s.State {
			case "passed":
				c.Passed++
				if s.NumAttempts > 1 {
					r.Flaky = append(r.Flaky, fmt.Sprintf("passed at attempt %d: %s", s.NumAttempts, spec))
				}
			case "skipped", "pending":
				c.Skipped++
				if strings.HasPrefix(s.ContainerHierarchyTexts[0], "[k8s.io] ") {
					r.Skipped = append(r.Skipped, spec)
				}
			default:
				c.Failed++
				msg := ""
				if s.Failure != nil {
					msg = s.Failure.Message
				}
				r.Failed = append(r.Failed, fmt.Sprintf("%s: %s: %s", spec, s.State, msg))
			}
		}
	}
	for g, c := range groups {
		if inFocus[g] {
			r.Groups = append(r.Groups, *c)
		}
	}
	slices.SortFunc(r.Groups, func(a, b critestCounts) int { return strings.Compare(a.Group, b.Group) })
	sort.Strings(r.Skipped)
	return nil
}

// total is the sum over the groups.
func (r *critestResult) total() critestCounts {
	all := critestCounts{Group: "all"}
	for _, c := range r.Groups {
		all.Passed, all.Failed, all.Skipped = all.Passed+c.Passed, all.Failed+c.Failed, all.Skipped+c.Skipped
	}
	return all
}

// table is the per-group table, README's.
func (r *critestResult) table() string {
	var b strings.Builder
	b.WriteString("| group | passed | failed | skipped |\n| --- | --- | --- | --- |\n")
	for _, c := range r.Groups {
		fmt.Fprintf(&b, "| %s | %d | %d | %d |\n", c.Group, c.Passed, c.Failed, c.Skipped)
	}
	all := r.total()
	fmt.Fprintf(&b, "| all (%s) | %d | %d | %d |\n", time.Duration(r.Seconds*float64(time.Second)).Round(time.Second), all.Passed, all.Failed, all.Skipped)
	return b.String()
}

// report logs r's table, skipped and flaky specs, and writes r as
// FILE.json into PEAPOD_CRITEST_RESULTS if set. It fails the test when
// no spec passed (a runtime that was never reached).
func (r *critestResult) report(t *testing.T, runtime, file string) {
	t.Helper()
	r.Runtime = runtime
	t.Logf("critest %s against %s:\n%s", crictlVersion, runtime, r.table())
	t.Logf("skipped:\n%s", strings.Join(r.Skipped, "\n"))
	for _, f := range r.Flaky {
		t.Logf("critest: %s", f)
	}
	if dir := os.Getenv("PEAPOD_CRITEST_RESULTS"); dir != "" {
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, file+".json"), b, 0o644); err != nil {
			t.Errorf("failed to write critest's results: %v", err)
		}
	}
	if r.total().Passed == 0 {
		t.Errorf("critest passed no spec against %s:\n%s", runtime, r.out)
	}
}

// privateHost moves the rest of the test (its goroutine, locked to its OS
// thread for good, and every process it starts: the daemon, its
// supervisors and containers, critest) into a mount and an IPC namespace
// of its own, which stand in for the host's and go when the test ends:
//   - / and every mount below it are made shared (rshared, as on a systemd
//     host; / is private on this one), so the bidirectional propagation
//     spec can see a container's mount reach "the host" without a mount
//     of it ever reaching the real host;
//   - critest makes SysV shared memory segments on "the host" (ipcmk) for
//     the host IPC specs and never removes them: they go with the IPC
//     namespace;
//   - /dev/shm, which a host-IPC sandbox binds, is a tmpfs of its own.
//
// Cleanups registered after it run on the same thread, so in the same
// namespaces. One registered here checks that the real host's / kept its
// propagation and that no mount under tmp (critest's host paths) is in the
// host's mount table.
func privateHost(t *testing.T, tmp string) {
	t.Helper()
	// Never unlocked: the thread ends with the test's goroutine, and no
	// other goroutine ever runs in these namespaces.
	runtime.LockOSThread()
	hostMounts := hostMountinfo(t)
	rootBefore := rootPropagation(t, hostMounts)
	t.Cleanup(func() {
		// Picked again: a thread may have ended meanwhile. This one, the
		// test's, is still the one in the private namespaces.
		hostMounts := hostMountinfo(t)
		if got := rootPropagation(t, hostMounts); got != rootBefore {
			t.Errorf("the host's / changed its propagation from %q to %q", rootBefore, got)
		}
		b, err := os.ReadFile(hostMounts)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 4 && (f[4] == tmp || strings.HasPrefix(f[4], tmp+"/")) {
				t.Errorf("a mount of the test reached the host: %s", line)
			}
		}
	})
	if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_NEWIPC); err != nil {
		t.Fatalf("failed to unshare the mount and IPC namespaces: %v", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		t.Fatalf("failed to make / rshared in the test's mount namespace: %v", err)
	}
	if err := unix.Mount("peapod-critest", "/dev/shm", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size=65536k"); err != nil {
		t.Fatalf("failed to mount a tmpfs on /dev/shm: %v", err)
	}
}

// hostMountinfo is the mountinfo of a thread of this process other than
// the calling one, which privateHost is about to move into a mount
// namespace of its own: that thread stays in the host's. (The main thread
// is no answer: the test's goroutine may be running on it. It was, once,
// and the check below compared the private namespace with the host's.)
func hostMountinfo(t *testing.T) string {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	self := strconv.Itoa(unix.Gettid())
	for _, task := range tasks {
		if task.Name() != self {
			return fmt.Sprintf("/proc/%d/task/%s/mountinfo", os.Getpid(), task.Name())
		}
	}
	t.Fatal("the test process has no thread but this one")
	return ""
}

// rootPropagation is the optional fields (shared:N, master:N) of / in a
// mountinfo file, "" for a private /.
func rootPropagation(t *testing.T, mountinfo string) string {
	t.Helper()
	b, err := os.ReadFile(mountinfo)
	if err != nil {
		t.Fatal(err)
	}
	root := "missing"
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 7 || f[4] != "/" {
			continue
		}
		var opt []string
		for _, o := range f[6:] {
			if o == "-" {
				break
			}
			opt = append(opt, o)
		}
		root = strings.Join(opt, " ") // the last line of / is the one on top
	}
	return root
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

// buildCritestHelper builds cri/testdata/critest-helper, static, for the
// images' stand-ins.
func buildCritestHelper(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "critest-helper")
	build := exec.Command(goBin, "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./cri/testdata/critest-helper")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("failed to build the critest helper: %v\n%s", err, b)
	}
	return out
}

// egressGuard is an HTTP proxy on loopback that refuses every request and
// records the hosts asked for. A daemon with HTTP_PROXY and HTTPS_PROXY
// pointing at it sends it every registry request not for a loopback
// address (Go's transport never proxies those), so what it records is
// what the daemon would have reached beyond this machine.
type egressGuard struct {
	url   string
	mu    sync.Mutex
	hosts map[string]bool
}

// startEgressGuard starts a guard, stopped after the test.
func startEgressGuard(t *testing.T) *egressGuard {
	t.Helper()
	g := &egressGuard{hosts: map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host // host:port of a CONNECT; the URL's host otherwise
		if r.Method != http.MethodConnect && r.URL.Host != "" {
			host = r.URL.Host
		}
		g.mu.Lock()
		g.hosts[host] = true
		g.mu.Unlock()
		http.Error(w, "the test allows no traffic beyond loopback", http.StatusForbidden)
	}))
	t.Cleanup(srv.Close)
	g.url = srv.URL
	return g
}

// env is the environment that sends a process's non-loopback HTTP(S)
// through the guard.
func (g *egressGuard) env() []string {
	return []string{"HTTP_PROXY=" + g.url, "HTTPS_PROXY=" + g.url, "http_proxy=" + g.url, "https_proxy=" + g.url, "NO_PROXY=", "no_proxy="}
}

// take returns the hosts asked for since the last take, sorted.
func (g *egressGuard) take() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := slices.Sorted(maps.Keys(g.hosts))
	clear(g.hosts)
	return out
}

// TestCriRegistryConfigRefused starts `peapod cri` with registry configs
// that are wrong: it exits non-zero before serving, naming the file and
// what is wrong, and leaves no socket.
func TestCriRegistryConfigRefused(t *testing.T) {
	testutil.RequireRoot(t)
	dir := shortTempDir(t)
	for _, c := range []struct{ name, toml, want string }{
		{"missing", "", "no such file"},
		{"unknown-key", "[registry.\"gcr.io\"]\nmirror = [\"127.0.0.1:5000\"]\n", "unknown key"},
		{"bad-mirror", "[registry.\"gcr.io\"]\nmirrors = [\"http://127.0.0.1:5000/x\"]\n", "want HOST[:PORT]"},
		{"not-toml", "[registry.\"gcr.io\"\n", "registry config"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name+".toml")
			if c.name != "missing" {
				if err := os.WriteFile(path, []byte(c.toml), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			sock, root := filepath.Join(dir, c.name+".sock"), filepath.Join(dir, c.name+"-root")
			cmd := exec.Command(filepath.Join(binDir, "peapod"), "--root", root, "--run-root", filepath.Join(dir, c.name+"-run"),
				"--bridge", "pc"+testutil.RandHex(t, 4), "--subnet", subnets.Pick(t).String(), "cri", "--listen", sock, "--registry-config", path)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("peapod cri with %s served:\n%s", c.name, out)
			}
			if !strings.Contains(string(out), path) || !strings.Contains(string(out), c.want) {
				t.Errorf("peapod cri with %s said %q, want the file and %q", c.name, out, c.want)
			}
			for _, p := range []string{sock, root} {
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					t.Errorf("%s exists after a refused start: %v", p, err)
				}
			}
		})
	}
}
