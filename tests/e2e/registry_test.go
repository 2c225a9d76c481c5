package e2e

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	mathrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/peapod/peapod/internal/testutil"
	corev1 "k8s.io/api/core/v1"
)

// writeRegistryConfig writes a registries.toml and returns its path.
func writeRegistryConfig(t *testing.T, dir, text string) string {
	t.Helper()
	p := filepath.Join(dir, "registries.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPullMirror_11: the Pod names docker.io/library/busybox:1; the
// registry config mirrors docker.io to a local docker-registry and points
// docker.io's own server at a closed loopback port, so the real docker.io
// can never be contacted. The pod runs from the mirror (its access log has
// the pull) and its status' imageID is docker.io/library/busybox@sha256:….
// With the mirror down, run fails naming the mirror and the
// registry, and creates nothing.
func TestPullMirror_11(t *testing.T) {
	e := newEnv(t)
	reg := testutil.StartRegistry(t)
	pushBusybox(t, reg.Host+"/library/busybox:1")
	dir := t.TempDir()
	server := testutil.FreeLoopbackAddr(t).String() // down by design
	cfg := writeRegistryConfig(t, dir, fmt.Sprintf("[registry.\"docker.io\"]\nmirrors = [%q]\nserver = %q\n", reg.Host, server))
	out, stderr, code := e.run(pullPod("mirrored", "docker.io/library/busybox:1", "IfNotPresent"), "run", "-d", "-f", "-", "--registry-config", cfg)
	if code != 0 {
		t.Fatalf("run through the mirror: code %d\nstdout: %s\nstderr: %s", code, out, stderr)
	}
	e.waitPod("mirrored", 30*time.Second, phaseIs(corev1.PodRunning))
	if !strings.Contains(reg.Log(), `"GET /v2/library/busybox/manifests/1 `) {
		t.Errorf("the mirror's access log has no manifest GET:\n%s", reg.Log())
	}
	if id := e.get("mirrored").Status.ContainerStatuses[0].ImageID; !strings.HasPrefix(id, "docker.io/library/busybox@sha256:") {
		t.Errorf("imageID = %q, want docker.io/library/busybox@sha256:… as the kubelet shows it", id)
	}
	if ls := e.mustRun("image", "ls"); !strings.Contains(ls, "busybox ") || !strings.Contains(e.mustRun("image", "inspect", "busybox:1"), `"docker.io/library/busybox@sha256:`) {
		t.Errorf("the mirrored image is not stored under its docker.io name:\n%s", ls)
	}

	dead := testutil.FreeLoopbackAddr(t).String()
	down := writeRegistryConfig(t, t.TempDir(), fmt.Sprintf("[registry.\"docker.io\"]\nmirrors = [%q]\nserver = %q\n", dead, server))
	before := testutil.TakeSnapshot(t, e.roots())
	out, stderr, code = e.run(pullPod("down", "docker.io/library/busybox:2", "IfNotPresent"), "run", "-d", "-f", "-", "--registry-config", down)
	if code == 0 || !strings.Contains(stderr, "ErrImagePull") || !strings.Contains(stderr, "mirror "+dead) ||
		!strings.Contains(stderr, "registry docker.io (server "+server+")") {
		t.Fatalf("run with the mirror down: code %d\nstdout: %s\nstderr: %s\nwant ErrImagePull naming the mirror and the registry", code, out, stderr)
	}
	e.assertNoLeak(before)

	_, stderr, code = e.run(pullPod("bad", "docker.io/library/busybox:1", "Always"), "run", "-d", "-f", "-", "--registry-config", filepath.Join(dir, "absent.toml"))
	if code == 0 || !strings.Contains(stderr, "absent.toml") {
		t.Errorf("run with a missing --registry-config: code %d, stderr %s", code, stderr)
	}
}

// TestPullSecretAndLogin_11 runs docker-registry with TLS (a CA the test
// makes, trusted through the registry config) and htpasswd basic auth. A
// Pod without credentials fails with ErrImagePull and 401; one whose
// imagePullSecrets name a kubernetes.io/dockerconfigjson Secret of the same
// manifest runs; a named but absent Secret is a validation error. Then
// `peapod login --password-stdin` stores credentials that `image pull`
// uses, and `logout` removes them.
func TestPullSecretAndLogin_11(t *testing.T) {
	dir := t.TempDir()
	authFile := filepath.Join(dir, "auth.json")
	// Credentials only from what the test gives: no host logins.
	e := newEnv(t).withEnv("REGISTRY_AUTH_FILE="+authFile, "DOCKER_CONFIG="+t.TempDir(), "HOME="+t.TempDir())
	certs := testutil.NewTestCA(t, dir)
	reg := testutil.StartRegistryWith(t, testutil.RegistryOptions{TLS: certs, Htpasswd: testutil.WriteHtpasswd(t, dir, "alice", "s3cret")})
	ref := reg.Host + "/private/busybox:1"
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img := imageOf(t, []string{"sleep", "1000"}, layerOf(t, tarOf(t, busyboxTar)))
	if err := remote.Write(r, img, remote.WithAuth(&authn.Basic{Username: "alice", Password: "s3cret"}),
		remote.WithTransport(&http.Transport{TLSClientConfig: &tls.Config{RootCAs: certs.Pool()}})); err != nil {
		t.Fatalf("push: %v", err)
	}
	cfg := writeRegistryConfig(t, dir, fmt.Sprintf("[registry.%q]\nca = %q\n", reg.Host, certs.CAFile))

	before := testutil.TakeSnapshot(t, e.roots())
	_, stderr, code := e.run(pullPod("nocreds", ref, "IfNotPresent"), "run", "-d", "-f", "-", "--registry-config", cfg)
	if code == 0 || !strings.Contains(stderr, "ErrImagePull") || !strings.Contains(stderr, "401") || !strings.Contains(stderr, reg.Host) {
		t.Fatalf("run without credentials: code %d, stderr %s; want ErrImagePull with 401", code, stderr)
	}
	e.assertNoLeak(before)

	auth := base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
	dockerconfig := base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, reg.Host, auth)))
	withSecret := func(podName, secretName string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: %s}
type: kubernetes.io/dockerconfigjson
data: {.dockerconfigjson: %s}
---
apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  imagePullSecrets: [{name: regcred}]
  containers:
  - {name: c, image: %q}
`, secretName, dockerconfig, podName, ref)
	}
	_, stderr, code = e.run(withSecret("absent", "other"), "run", "-d", "-f", "-", "--registry-config", cfg)
	if code == 0 || !strings.Contains(stderr, `spec.imagePullSecrets[0].name: Not found: "regcred"`) {
		t.Fatalf("run naming an absent pull secret: code %d, stderr %s", code, stderr)
	}
	if strings.Contains(reg.Log(), `"GET /v2/private/busybox/manifests/1 HTTP/1.1" 200`) {
		t.Errorf("a pull happened before validation failed")
	}
	out, stderr, code := e.run(withSecret("secret", "regcred"), "run", "-d", "-f", "-", "--registry-config", cfg)
	if code != 0 {
		t.Fatalf("run with an imagePullSecret: code %d\nstdout: %s\nstderr: %s", code, out, stderr)
	}
	e.waitPod("secret", 30*time.Second, phaseIs(corev1.PodRunning))
	e.mustRun("rm", "-f", "secret")
	e.mustRun("image", "rm", ref)

	// login, then image pull with the stored credentials; logout.
	if _, stderr, code := e.run("wrong\n", "login", reg.Host, "-u", "alice", "--password-stdin", "--registry-config", cfg); code == 0 || !strings.Contains(stderr, "401") {
		t.Errorf("login with a wrong password: code %d, stderr %s", code, stderr)
	}
	if out, stderr, code := e.run("s3cret\n", "login", reg.Host, "-u", "alice", "--password-stdin", "--registry-config", cfg); code != 0 || !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("login: code %d, stdout %s, stderr %s", code, out, stderr)
	}
	if st, err := os.Stat(authFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("auth file after login: %v", err)
	}
	if out, stderr, code := e.run("", "image", "pull", ref, "--registry-config", cfg); code != 0 || !strings.Contains(out, "pulled "+ref) {
		t.Fatalf("image pull after login: code %d, stdout %s, stderr %s", code, out, stderr)
	}
	e.mustRun("image", "rm", ref)
	if out := e.mustRun("logout", reg.Host); !strings.Contains(out, "Removed login credentials for "+reg.Host) {
		t.Errorf("logout printed %q", out)
	}
	if _, stderr, code := e.run("", "image", "pull", ref, "--registry-config", cfg); code == 0 || !strings.Contains(stderr, "401") {
		t.Errorf("image pull after logout: code %d, stderr %s; want 401", code, stderr)
	}
	if _, stderr, code := e.run("", "logout", reg.Host); code == 0 || !strings.Contains(stderr, "not logged in") {
		t.Errorf("second logout: code %d, stderr %s", code, stderr)
	}
}

// TestConcurrentRunsPullOnce_11: two `peapod run`s of pods with the same
// new three-layer image at once both succeed, and the registry's access log
// shows each blob (config and layers) fetched once.
func TestConcurrentRunsPullOnce_11(t *testing.T) {
	e := newEnv(t)
	reg := testutil.StartRegistry(t)
	ref := reg.Host + "/shared:1"
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img := imageOf(t, []string{"sleep", "1000"}, layerOf(t, tarOf(t, busyboxTar)),
		layerOf(t, tarOf(t, "", tFile("two", "2"))), layerOf(t, tarOf(t, "", tFile("three", "3"))))
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("push: %v", err)
	}
	var wg sync.WaitGroup
	errs := make([]string, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, stderr, code, err := e.runNoFail(pullPod(fmt.Sprintf("twin%d", i), ref, "IfNotPresent"), "run", "-d", "-f", "-")
			if err != nil || code != 0 {
				errs[i] = fmt.Sprintf("run %d: code %d, %v\nstdout: %s\nstderr: %s", i, code, err, out, stderr)
			}
		}()
	}
	wg.Wait()
	for _, msg := range errs {
		if msg != "" {
			t.Error(msg)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	for i := range errs {
		e.waitPod(fmt.Sprintf("twin%d", i), 30*time.Second, phaseIs(corev1.PodRunning))
	}
	cfgDigest, _ := img.ConfigName()
	layers, _ := img.Layers()
	blobs := []string{cfgDigest.String()}
	for _, l := range layers {
		d, _ := l.Digest()
		blobs = append(blobs, d.String())
	}
	for _, b := range blobs {
		if n := strings.Count(reg.Log(), `"GET /v2/shared/blobs/`+b+` `); n != 1 {
			t.Errorf("blob %s fetched %d times, want once", b, n)
		}
	}
}

// TestPullProgress_11: image pull on a terminal draws one bar per layer
// (its blob's short digest, "done" at the end) and a total; not on a
// terminal it prints one line per finished layer; --quiet prints only the
// image ID.
func TestPullProgress_11(t *testing.T) {
	e := newEnv(t)
	reg := testutil.StartRegistry(t)
	push := func(ref string, extra string) []string {
		r, err := name.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		img := imageOf(t, []string{"sleep", "1000"}, layerOf(t, tarOf(t, busyboxTar)),
			layerOf(t, tarOf(t, "", tFile("two", extra))), layerOf(t, tarOf(t, "", tFile("three", extra))))
		if err := remote.Write(r, img); err != nil {
			t.Fatalf("push: %v", err)
		}
		layers, _ := img.Layers()
		var short []string
		for _, l := range layers {
			d, _ := l.Digest()
			short = append(short, d.Hex[:12])
		}
		return short
	}

	tty := push(reg.Host+"/tty:1", "tty")
	p := newTestPty(t, 30, 120)
	if code := e.startOnPty(t, p, "image", "pull", reg.Host+"/tty:1")(); code != 0 {
		t.Fatalf("image pull on a terminal: exit %d; terminal: %q", code, p.output())
	}
	screen := p.output()
	for _, d := range tty {
		if !strings.Contains(screen, d) {
			t.Errorf("the terminal shows no bar for layer %s: %q", d, screen)
		}
	}
	// A fast pull may draw only the last frame: bars, not their motion.
	if !regexp.MustCompile(`total +\[=+\]`).MatchString(screen) || strings.Count(screen, "] done") < len(tty) {
		t.Errorf("the terminal shows no total bar or no finished layer bars: %q", screen)
	}

	lines := push(reg.Host+"/lines:1", "lines")
	out, stderr, code := e.run("", "image", "pull", reg.Host+"/lines:1")
	if code != 0 || !strings.Contains(out, "pulled "+reg.Host+"/lines:1 sha256:") {
		t.Fatalf("image pull: code %d, stdout %s, stderr %s", code, out, stderr)
	}
	for _, d := range lines[1:] {
		if !regexp.MustCompile(`(?m)^` + d + `: pulled, .* in .*s$`).MatchString(stderr) {
			t.Errorf("stderr has no line for layer %s:\n%s", d, stderr)
		}
	}
	if !strings.Contains(stderr, lines[0]+": already present") || strings.Contains(stderr, "\x1b[") {
		t.Errorf("stderr does not say the shared base was present, or draws bars:\n%s", stderr)
	}

	push(reg.Host+"/quiet:1", "quiet")
	out, stderr, code = e.run("", "image", "pull", "--quiet", reg.Host+"/quiet:1")
	if code != 0 || !regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`).MatchString(out) || stderr != "" {
		t.Errorf("image pull --quiet: code %d, stdout %q, stderr %q; want only the image ID", code, out, stderr)
	}
}

// TestPullDiskFull_11: a pull into a --root on a small tmpfs that the image
// does not fit fails with "no space left on device" naming the layer, and
// keeps nothing of it: no image, no layer, no staging debris, the space
// free again, so a small image pulls next.
func TestPullDiskFull_11(t *testing.T) {
	e := newEnv(t, withTmpfsRoot(24<<20))
	reg := testutil.StartRegistry(t)
	big := make([]byte, 32<<20)
	rng := mathrand.NewChaCha8([32]byte{11})
	rng.Read(big)
	bigRef := reg.Host + "/big:1"
	r, _ := name.ParseReference(bigRef)
	img := imageOf(t, []string{"sh"}, layerOf(t, tarOf(t, "", tFile("random", string(big)))))
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("push: %v", err)
	}
	layers, _ := img.Layers()
	diffID, _ := layers[0].DiffID()
	var before syscall.Statfs_t
	if err := syscall.Statfs(e.root, &before); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := e.run("", "image", "pull", bigRef)
	if code == 0 || !strings.Contains(stderr, "no space left on device") || !strings.Contains(stderr, diffID.String()) {
		t.Fatalf("pull onto a full disk: code %d, stderr %s; want ENOSPC naming layer %s", code, stderr, diffID)
	}
	if ls := e.mustRun("image", "ls"); strings.Contains(ls, "big") {
		t.Errorf("image ls after the failed pull:\n%s", ls)
	}
	for _, d := range []string{"tmp", "layers"} {
		entries, err := os.ReadDir(filepath.Join(e.root, "images", d))
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range entries {
			if en.Name() == diffID.Hex || d == "tmp" {
				t.Errorf("images/%s/%s left by the failed pull", d, en.Name())
			}
		}
	}
	var after syscall.Statfs_t
	if err := syscall.Statfs(e.root, &after); err != nil {
		t.Fatal(err)
	}
	if after.Bfree < before.Bfree-before.Bfree/50 {
		t.Errorf("free blocks %d after the failed pull, %d before: the partial layer's space was not given back", after.Bfree, before.Bfree)
	}
	pushBusybox(t, reg.Host+"/small:1")
	if _, stderr, code := e.run("", "image", "pull", reg.Host+"/small:1"); code != 0 {
		t.Errorf("a small pull after the failed one: code %d, stderr %s", code, stderr)
	}
}
