package image

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/peapod/peapod/internal/testutil"
)

// zstdLayerOf is layerOf compressed with zstd.
func zstdLayerOf(t testing.TB, entries ...entry) v1.Layer {
	t.Helper()
	data := tarBytes(t, entries...)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
	if err != nil {
		t.Fatalf("zstd layer: %v", err)
	}
	return l
}

// withPlatform sets the image's config platform.
func withPlatform(t testing.TB, img v1.Image, arch, cmd string) v1.Image {
	t.Helper()
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture = arch
	cfg.Config.Cmd = []string{cmd}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// foreignArch is an architecture that is not this machine's.
func foreignArch() string {
	if runtime.GOARCH == "s390x" {
		return "ppc64le"
	}
	return "s390x"
}

// push writes img (or idx) to ref.
func push(t testing.TB, ref string, img v1.Image) {
	t.Helper()
	if err := remote.Write(mustRef(t, ref), img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

func mustRef(t testing.TB, ref string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// countingTransport records every request path it carries.
type countingTransport struct {
	mu    sync.Mutex
	paths []string
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.paths = append(c.paths, req.Method+" "+req.URL.Path)
	c.mu.Unlock()
	return remote.DefaultTransport.RoundTrip(req)
}

func (c *countingTransport) requested(digest v1.Hash) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.paths {
		if strings.HasPrefix(p, "GET ") && strings.HasSuffix(p, "/blobs/"+digest.String()) {
			return true
		}
	}
	return false
}

// TestPullFromRegistry pushes a two-platform index (gzip, zstd and
// uncompressed layers, one with whiteouts) to a real docker-registry and
// pulls it: the host's image by default, the foreign one with --platform;
// then a second image sharing the base layer, whose blob is not fetched.
func TestPullFromRegistry(t *testing.T) {
	testutil.RequireRoot(t) // whiteouts are 0:0 device nodes: mknod needs root
	reg := testutil.StartRegistry(t)
	base := baseLayer(t) // gzip
	host := withPlatform(t, imageOf(t, "sh", base, changeLayer(t), zstdLayerOf(t, file("z/zstd", "zstd"))), runtime.GOARCH, "host")
	plain := static.NewLayer(tarBytes(t, file("plain", "plain")), types.OCIUncompressedLayer)
	foreign := withPlatform(t, imageOf(t, "sh", plain), foreignArch(), "foreign")
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: host, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}},
		mutate.IndexAddendum{Add: foreign, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: foreignArch()}}})
	ref := reg.Host + "/test/multi:1"
	if err := remote.WriteIndex(mustRef(t, ref), idx); err != nil {
		t.Fatalf("push index: %v", err)
	}
	s := openStore(t)
	var progress bytes.Buffer
	img, err := s.Pull(context.Background(), ref, PullOptions{Progress: &progress})
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	wantID, _ := host.ConfigName()
	wantDigest, _ := host.Digest()
	if img.ID != wantID.String() || len(img.Layers) != 3 || img.Config.Cmd[0] != "host" {
		t.Fatalf("pulled %+v, want the host image %s with 3 layers", img, wantID)
	}
	if len(img.Names) != 1 || img.Names[0] != ref || img.Digest != wantDigest.String() ||
		len(img.RepoDigests) != 1 || img.RepoDigests[0] != reg.Host+"/test/multi@"+wantDigest.String() {
		t.Errorf("names %v digest %s repo digests %v", img.Names, img.Digest, img.RepoDigests)
	}
	if len(img.Manifest) == 0 || len(img.ConfigJSON) == 0 {
		t.Errorf("manifest or config not kept")
	}
	// The repo digest names the image (the CRI's ImageStatus looks images
	// up by what it reported); the digest in another repository, another
	// digest, or a malformed one does not.
	if got, err := s.Get(img.RepoDigests[0]); err != nil || got.ID != img.ID {
		t.Errorf("Get(%s) = %v, %v; want image %s", img.RepoDigests[0], got, err, img.ID)
	}
	for _, ref := range []string{reg.Host + "/test/other@" + wantDigest.String(), reg.Host + "/test/multi@sha256:" + strings.Repeat("0", 64), reg.Host + "/test/multi@sha256:zz"} {
		if got, err := s.Get(ref); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%s) = %v, %v; want ErrNotFound", ref, got, err)
		}
	}
	checkOverlayMarkers(t, img.Layers[1].Dir)
	if got, err := os.ReadFile(img.Layers[2].Dir + "/z/zstd"); err != nil || string(got) != "zstd" {
		t.Errorf("zstd layer file = %q, %v", got, err)
	}
	if n := strings.Count(progress.String(), "pulled"); n != 3 {
		t.Errorf("progress has %d pulled lines, want 3:\n%s", n, progress.String())
	}

	other, err := s.Pull(context.Background(), ref, PullOptions{Platform: &v1.Platform{OS: "linux", Architecture: foreignArch()}})
	if err != nil {
		t.Fatalf("pull --platform: %v", err)
	}
	if got, err := os.ReadFile(other.Layers[0].Dir + "/plain"); other.Config.Cmd[0] != "foreign" || err != nil || string(got) != "plain" {
		t.Errorf("foreign image = %+v, plain = %q, %v", other.Config, got, err)
	}
	if _, err := s.Pull(context.Background(), ref, PullOptions{Platform: &v1.Platform{OS: "linux", Architecture: "mips64"}}); err == nil ||
		!strings.Contains(err.Error(), "mips64") || !strings.Contains(err.Error(), ref) {
		t.Errorf("pull for a platform the index lacks: %v, want an error naming it and the image", err)
	}

	shared := withPlatform(t, imageOf(t, "sh", base, layerOf(t, file("second", "2"))), runtime.GOARCH, "second")
	push(t, reg.Host+"/test/second:1", shared)
	ct := &countingTransport{}
	progress.Reset()
	if _, err := s.Pull(context.Background(), reg.Host+"/test/second:1", PullOptions{Transport: ct, Progress: &progress}); err != nil {
		t.Fatalf("pull second: %v", err)
	}
	baseDigest, _ := base.Digest()
	if ct.requested(baseDigest) {
		t.Errorf("the shared layer %s was downloaded again; requests: %v", baseDigest, ct.paths)
	}
	if !strings.Contains(progress.String(), baseDigest.Hex[:12]+": already present") {
		t.Errorf("progress does not say the shared layer was present:\n%s", progress.String())
	}
}

// fakeRegistry serves go-containerregistry's in-process registry behind
// hook, which may answer a request itself (returning true).
func fakeRegistry(t testing.TB, hook func(w http.ResponseWriter, r *http.Request) bool) string {
	t.Helper()
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hook != nil && hook(w, r) {
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// checkNothingStored asserts the store holds no layer, record or debris.
func checkNothingStored(t *testing.T, s *Store) {
	t.Helper()
	for _, d := range []string{s.layersDir(), s.recordsDir(), s.tmpDir()} {
		if names := dirNames(t, d); len(names) > 0 {
			t.Errorf("%s holds %v after a refused pull", d, names)
		}
	}
}

// TestPullRefusesBadBlobs serves a layer whose bytes do not match its
// digest, and a layer that climbs out with ../: both refused, nothing kept.
func TestPullRefusesBadBlobs(t *testing.T) {
	t.Run("digest mismatch", func(t *testing.T) {
		img := imageOf(t, "sh", layerOf(t, file("a", "aaaa")))
		layers, _ := img.Layers()
		bad, _ := layers[0].Digest()
		var host string
		host = fakeRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
			// "?real" lets the hook itself fetch the blob it corrupts.
			if r.Method != http.MethodGet || r.URL.RawQuery == "real" || !strings.HasSuffix(r.URL.Path, "/blobs/"+bad.String()) {
				return false
			}
			// Fetch the real blob and change its gzip header's mtime: it
			// still decompresses, with the same size and another digest.
			resp, err := http.Get("http://" + host + r.URL.Path + "?real")
			if err != nil {
				t.Errorf("fetch real blob: %v", err)
				return true
			}
			defer resp.Body.Close()
			data, _ := io.ReadAll(resp.Body)
			data[4] ^= 0xff
			w.Write(data)
			return true
		})
		push(t, host+"/x:1", img)
		s := openStore(t)
		_, err := s.Pull(context.Background(), host+"/x:1", PullOptions{})
		if err == nil || !strings.Contains(err.Error(), "checksum") || !strings.Contains(err.Error(), bad.String()) {
			t.Fatalf("pull of a corrupted blob: %v, want a digest error", err)
		}
		checkNothingStored(t, s)
	})
	t.Run("path traversal", func(t *testing.T) {
		host := fakeRegistry(t, nil)
		push(t, host+"/evil:1", imageOf(t, "sh", layerOf(t, file("../../escape", "x"))))
		s := openStore(t)
		_, err := s.Pull(context.Background(), host+"/evil:1", PullOptions{})
		if !errors.Is(err, ErrUnsafePath) {
			t.Fatalf("pull of a ../ layer: %v, want ErrUnsafePath", err)
		}
		checkNothingStored(t, s)
	})
}

// TestPullRefusesHugeManifest serves a manifest over MaxManifestSize.
func TestPullRefusesHugeManifest(t *testing.T) {
	host := fakeRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.Contains(r.URL.Path, "/manifests/") {
			return false
		}
		w.Header().Set("Content-Type", string(types.OCIManifestSchema1))
		w.Write(bytes.Repeat([]byte(" "), MaxManifestSize+1))
		return true
	})
	s := openStore(t)
	_, err := s.Pull(context.Background(), host+"/big:1", PullOptions{})
	if err == nil || !strings.Contains(err.Error(), "a manifest may have") {
		t.Fatalf("pull of a huge manifest: %v, want the size refusal", err)
	}
	checkNothingStored(t, s)
}

// TestPullAuth answers 401 to requests without the right basic auth: the
// pull fails naming the registry, then succeeds with credentials.
func TestPullAuth(t *testing.T) {
	t.Setenv("REGISTRY_AUTH_FILE", filepath.Join(t.TempDir(), "auth.json")) // no host logins
	var mu sync.Mutex
	open := true // lets the test push without credentials
	host := fakeRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if open {
			return false
		}
		if u, p, ok := r.BasicAuth(); ok && u == "alice" && p == "s3cret" {
			return false
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
		return true
	})
	push(t, host+"/private:1", imageOf(t, "sh", layerOf(t, file("a", "a"))))
	mu.Lock()
	open = false
	mu.Unlock()
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials from the host
	s := openStore(t)
	_, err := s.Pull(context.Background(), host+"/private:1", PullOptions{})
	if err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") || !strings.Contains(err.Error(), host) {
		t.Fatalf("pull without credentials: %v, want UNAUTHORIZED naming %s", err, host)
	}
	checkNothingStored(t, s)
	if _, err := s.Pull(context.Background(), host+"/private:1", PullOptions{Auth: &authn.Basic{Username: "alice", Password: "s3cret"}}); err != nil {
		t.Fatalf("pull with credentials: %v", err)
	}

	// Docker's config.json, found through $DOCKER_CONFIG, as docker login writes it.
	cfgDir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
	if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"auths":{"`+host+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", cfgDir)
	if _, err := openStore(t).Pull(context.Background(), host+"/private:1", PullOptions{}); err != nil {
		t.Fatalf("pull with credentials from $DOCKER_CONFIG/config.json: %v", err)
	}
}

// TestPullInsecureOnlyWhenListed: a registry on a private address, which
// go-containerregistry would try over plain HTTP, is reached over plain
// HTTP only when listed as insecure. A recording transport stands in for
// the network, so nothing leaves the machine.
func TestPullInsecureOnlyWhenListed(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	rec := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		seen = append(seen, r.URL.Scheme+"://"+r.URL.Host)
		mu.Unlock()
		return nil, errors.New("no network in this test")
	})
	const reg = "10.0.0.1:5000"
	_, err := openStore(t).Pull(context.Background(), reg+"/app:1", PullOptions{Transport: rec})
	if err == nil || !strings.Contains(err.Error(), ErrInsecureRegistry.Error()) || slices.Contains(seen, "http://"+reg) {
		t.Fatalf("pull from an unlisted private registry: %v, transport saw %v; want a plain-HTTP refusal before any HTTP request", err, seen)
	}
	// A name go-containerregistry would only reach over HTTPS, listed.
	for _, host := range []string{reg, "registry.example:5000"} {
		seen = nil
		_, err = openStore(t).Pull(context.Background(), host+"/app:1", PullOptions{Transport: rec, Insecure: []string{host}})
		if err == nil || !slices.Contains(seen, "http://"+host) {
			t.Fatalf("pull from a listed insecure registry %s: %v, transport saw %v; want plain HTTP tried", host, err, seen)
		}
	}
}

// TestGuardRefusesPlainHTTP checks that plain HTTP reaches only loopback
// and registries listed as insecure, whatever go-containerregistry guesses
// for private addresses.
func TestGuardRefusesPlainHTTP(t *testing.T) {
	refused := newRegistryTransport(roundTripFunc(func(*http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(""))}, nil
	}), &RegistryConfig{Hosts: map[string]*RegistryHost{"10.0.0.3:5000": {Insecure: true}}}, []string{"10.0.0.2:5000"})
	for url, wantErr := range map[string]bool{
		"http://10.0.0.1:5000/v2/":    true,
		"http://registry.local/v2/":   true,
		"http://10.0.0.2:5000/v2/":    false,
		"http://10.0.0.3:5000/v2/":    false, // insecure in the registry config
		"http://127.0.0.1:5000/v2/":   false,
		"http://localhost:5000/v2/":   false,
		"http://[::1]:5000/v2/":       false,
		"https://10.0.0.1:5000/v2/":   false,
		"http://127.0.0.1.nip.io/v2/": true,
	} {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		resp, err := refused.RoundTrip(req)
		if resp != nil {
			resp.Body.Close()
		}
		if got := errors.Is(err, ErrInsecureRegistry); got != wantErr {
			t.Errorf("%s: err = %v, want refused=%v", url, err, wantErr)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestFullNameAndPlatform checks reference normalisation as the kubelet's
// and --platform parsing.
func TestFullNameAndPlatform(t *testing.T) {
	for in, want := range map[string]string{
		"nginx":                    "docker.io/library/nginx:latest",
		"nginx:1.27":               "docker.io/library/nginx:1.27",
		"docker.io/team/app":       "docker.io/team/app:latest",
		"127.0.0.1:5000/busybox:1": "127.0.0.1:5000/busybox:1",
		"quay.io/x/y@sha256:" + strings.Repeat("a", 64): "quay.io/x/y@sha256:" + strings.Repeat("a", 64),
	} {
		if got, err := FullName(in); err != nil || got != want {
			t.Errorf("FullName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if p, err := ParsePlatform("linux/arm/v7"); err != nil || p.Architecture != "arm" || p.Variant != "v7" {
		t.Errorf("ParsePlatform(linux/arm/v7) = %+v, %v", p, err)
	}
	for _, bad := range []string{"linux", "linux/", "a/b/c/d"} {
		if _, err := ParsePlatform(bad); err == nil {
			t.Errorf("ParsePlatform(%q) accepted", bad)
		}
	}
}

// TestConcurrentPulls: two pulls of the same new image at once both
// succeed, and each blob, the config too, is downloaded once (the store
// lock serialises everything after the manifest; the second finds the
// image there by the manifest's config digest).
func TestConcurrentPulls(t *testing.T) {
	host := fakeRegistry(t, nil)
	img := imageOf(t, "sh", layerOf(t, file("a", "a")), layerOf(t, file("b", "b")))
	push(t, host+"/both:1", img)
	s := openStore(t)
	ct := &countingTransport{}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.Pull(context.Background(), host+"/both:1", PullOptions{Transport: ct})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent pulls: %v", err)
	}
	layers, _ := img.Layers()
	cfgDigest, _ := img.ConfigName()
	digests := []v1.Hash{cfgDigest}
	for _, l := range layers {
		d, _ := l.Digest()
		digests = append(digests, d)
	}
	for _, d := range digests {
		n := 0
		ct.mu.Lock()
		for _, p := range ct.paths {
			if p == "GET /v2/both/blobs/"+d.String() {
				n++
			}
		}
		ct.mu.Unlock()
		if n != 1 {
			t.Errorf("blob %s downloaded %d times, want once", d, n)
		}
	}
}

// TestPullFailedLayerCancelsOthers: when one layer is refused, the
// download of another still in flight is cancelled rather than finished.
func TestPullFailedLayerCancelsOthers(t *testing.T) {
	bad := layerOf(t, file("../escape", "x"))
	badDigest, _ := bad.Digest()
	slow := layerOf(t, file("slow", "slow"))
	slowDigest, _ := slow.Digest()
	arrived, cancelled := make(chan struct{}), make(chan struct{})
	host := fakeRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case r.Method != http.MethodGet:
		case strings.HasSuffix(r.URL.Path, "/blobs/"+badDigest.String()):
			// The bad layer fails only once the slow one is downloading.
			select {
			case <-arrived:
			case <-time.After(5 * time.Second):
				t.Errorf("the slow layer was not requested alongside the bad one")
			}
		case strings.HasSuffix(r.URL.Path, "/blobs/"+slowDigest.String()):
			close(arrived)
			select {
			case <-r.Context().Done():
				close(cancelled)
			case <-time.After(5 * time.Second): // unblocks the pull if nothing cancels it
			}
			return true
		}
		return false
	})
	push(t, host+"/half:1", imageOf(t, "sh", bad, slow))
	s := openStore(t)
	if _, err := s.Pull(context.Background(), host+"/half:1", PullOptions{}); !errors.Is(err, ErrUnsafePath) {
		t.Fatalf("pull = %v, want ErrUnsafePath", err)
	}
	// The server sees the cancellation once the client closed the
	// connection, which may be just after Pull returned.
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Errorf("the slow layer's download was not cancelled when the other layer failed")
	}
	checkNothingStored(t, s)
}
