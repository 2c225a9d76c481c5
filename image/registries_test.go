package image

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/peapod/peapod/internal/testutil"
)

// writeConfig writes a registries.toml into dir and returns its path.
func writeConfig(t *testing.T, dir, text string) string {
	t.Helper()
	p := filepath.Join(dir, "registries.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLoadRegistryConfig reads good and bad registry configs: every
// mistake is refused at load, naming the file and the registry or key.
func TestLoadRegistryConfig(t *testing.T) {
	dir := t.TempDir()
	certs := testutil.NewTestCA(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "notpem.crt"), []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := `
[registry."docker.io"]
mirrors = ["mirror.lab:5000", "127.0.0.1:5001"]
server = "127.0.0.1:1"

[registry."mirror.lab:5000"]
ca = "ca.pem"
client_cert = "cert.pem"
client_key = "key.pem"

[registry."10.0.0.5:5000"]
insecure = true
`
	cfg, err := LoadRegistryConfig(writeConfig(t, dir, good), false)
	if err != nil {
		t.Fatalf("good config: %v", err)
	}
	eps := cfg.endpoints("index.docker.io")
	if len(eps) != 3 || eps[0] != (endpoint{"mirror.lab:5000", true}) || eps[2] != (endpoint{"127.0.0.1:1", false}) {
		t.Errorf("docker.io endpoints = %+v", eps)
	}
	if got := cfg.endpoints("quay.io"); len(got) != 1 || got[0].host != "quay.io" {
		t.Errorf("an unconfigured registry's endpoints = %+v", got)
	}
	if h := cfg.host("mirror.lab:5000"); h.CA != certs.CAFile || h.ClientKey != certs.KeyFile {
		t.Errorf("relative paths not resolved against the file's dir: %+v", h)
	}
	if tc, err := cfg.tlsConfig("mirror.lab:5000"); err != nil || tc.RootCAs == nil || len(tc.Certificates) != 1 || tc.InsecureSkipVerify {
		t.Errorf("mirror TLS = %+v, %v", tc, err)
	}
	if tc, err := cfg.tlsConfig("10.0.0.5:5000"); err != nil || !tc.InsecureSkipVerify || !cfg.insecure("10.0.0.5:5000") {
		t.Errorf("insecure registry TLS = %+v, %v", tc, err)
	}
	if tc, err := cfg.tlsConfig("quay.io"); err != nil || tc != nil {
		t.Errorf("an unconfigured registry's TLS = %+v, %v; want the defaults", tc, err)
	}

	for name, tc := range map[string]struct{ text, want string }{
		"unknown key":     {`[registry."a.io"]` + "\nmirror = [\"b.io\"]", `unknown key "registry.\"a.io\".mirror"`},
		"mirror url":      {`[registry."a.io"]` + "\nmirrors = [\"https://b.io\"]", `registry "a.io": mirror or server "https://b.io"`},
		"mirror path":     {`[registry."a.io"]` + "\nmirrors = [\"b.io/x\"]", `mirror or server "b.io/x"`},
		"bad host":        {`[registry."a.io/x"]` + "\ninsecure = true", `registry "a.io/x": want HOST[:PORT]`},
		"cert no key":     {`[registry."a.io"]` + "\nclient_cert = \"cert.pem\"", "client_cert and client_key go together"},
		"missing ca":      {`[registry."a.io"]` + "\nca = \"nope.pem\"", "nope.pem"},
		"ca not pem":      {`[registry."a.io"]` + "\nca = \"notpem.crt\"", "holds no PEM certificate"},
		"docker.io twice": {`[registry."docker.io"]` + "\ninsecure = true\n" + `[registry."index.docker.io"]` + "\ninsecure = true", "given twice"},
		"not toml":        {`[registry."a.io"`, "registries.toml"},
	} {
		_, err := LoadRegistryConfig(writeConfig(t, dir, tc.text), false)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "registries.toml") {
			t.Errorf("%s: %v, want an error naming the file and %q", name, err, tc.want)
		}
	}
	if cfg, err := LoadRegistryConfig(filepath.Join(dir, "absent.toml"), true); err != nil || len(cfg.Hosts) != 0 {
		t.Errorf("absent default config = %+v, %v; want empty", cfg, err)
	}
	if _, err := LoadRegistryConfig(filepath.Join(dir, "absent.toml"), false); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("absent named config: %v, want ErrNotExist", err)
	}
}

// loopbackOnly is a transport that carries requests to loopback hosts and
// records, and refuses, any other: the proof that a test never reached the
// internet.
type loopbackOnly struct {
	mu      sync.Mutex
	outside []string
}

func (l *loopbackOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if !isLoopback(req.URL.Host) {
		l.mu.Lock()
		l.outside = append(l.outside, req.URL.Host)
		l.mu.Unlock()
		return nil, errors.New("test: no traffic beyond loopback")
	}
	return remote.DefaultTransport.RoundTrip(req)
}

// TestPullThroughMirror: the config mirrors docker.io to a local
// docker-registry (after a mirror that is down) and points docker.io's own
// server at a closed port, so docker.io/library/busybox:1 is pulled from
// the mirror and nothing beyond loopback is ever contacted. The image keeps
// its docker.io names; a second pull is a HEAD at the mirror. With every
// mirror and the server down, the error names each of them.
func TestPullThroughMirror(t *testing.T) {
	reg := testutil.StartRegistry(t)
	img := imageOf(t, "sh", layerOf(t, file("a", "mirrored")))
	push(t, reg.Host+"/library/busybox:1", img)
	dead, server := testutil.FreeLoopbackAddr(t).String(), testutil.FreeLoopbackAddr(t).String()
	dir := t.TempDir()
	cfg, err := LoadRegistryConfig(writeConfig(t, dir, `[registry."docker.io"]
mirrors = ["`+dead+`", "`+reg.Host+`"]
server = "`+server+`"
`), false)
	if err != nil {
		t.Fatal(err)
	}
	tr := &loopbackOnly{}
	s := openStore(t)
	var progress strings.Builder
	got, err := s.Pull(context.Background(), "docker.io/library/busybox:1", PullOptions{Registries: cfg, Transport: tr, Progress: &progress})
	if err != nil {
		t.Fatalf("pull through the mirror: %v", err)
	}
	digest, _ := img.Digest()
	if len(got.Names) != 1 || got.Names[0] != "busybox:1" || len(got.RepoDigests) != 1 || got.RepoDigests[0] != "docker.io/library/busybox@"+digest.String() {
		t.Errorf("names %v, repo digests %v; want busybox:1 and docker.io/library/busybox@%s", got.Names, got.RepoDigests, digest)
	}
	if !strings.Contains(progress.String(), "from mirror "+reg.Host) {
		t.Errorf("progress does not name the mirror:\n%s", progress.String())
	}
	if !strings.Contains(reg.Log(), `"GET /v2/library/busybox/manifests/1 `) {
		t.Errorf("the mirror's log has no manifest GET:\n%s", reg.Log())
	}
	if len(tr.outside) > 0 {
		t.Fatalf("the pull contacted %v beyond loopback", tr.outside)
	}

	// Again: a HEAD at the mirror finds the same digest; nothing is fetched.
	fetches := func() int { return strings.Count(reg.Log(), `"GET /v2/library/busybox/`) }
	gets := fetches()
	if _, err := s.Pull(context.Background(), "busybox:1", PullOptions{Registries: cfg, Transport: tr}); err != nil {
		t.Fatalf("second pull: %v", err)
	}
	if n := fetches(); n != gets || !strings.Contains(reg.Log(), `"HEAD /v2/library/busybox/manifests/1 `) {
		t.Errorf("second pull: %d GETs (was %d), want none and one HEAD:\n%s", n, gets, reg.Log())
	}

	down, err := LoadRegistryConfig(writeConfig(t, dir, `[registry."docker.io"]
mirrors = ["`+dead+`"]
server = "`+server+`"
`), false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = openStore(t).Pull(context.Background(), "docker.io/library/busybox:1", PullOptions{Registries: down, Transport: tr})
	if err == nil || !strings.Contains(err.Error(), "mirror "+dead+": ") || !strings.Contains(err.Error(), "registry docker.io (server "+server+"): ") ||
		!strings.Contains(err.Error(), "docker.io/library/busybox:1") {
		t.Errorf("pull with the mirror down: %v; want an error naming the image, the mirror and the registry", err)
	}
	if len(tr.outside) > 0 {
		t.Fatalf("the pull contacted %v beyond loopback", tr.outside)
	}
}

// noHostCredentials points every credential source at empty temp files, so
// nothing of the machine's own logins takes part.
func noHostCredentials(t *testing.T) string {
	t.Helper()
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	authFile := filepath.Join(t.TempDir(), "auth.json")
	t.Setenv("REGISTRY_AUTH_FILE", authFile)
	return authFile
}

// TestPullTLSBasicAuth runs docker-registry with TLS (a CA this test makes)
// and htpasswd basic auth: without the CA the pull fails on the
// certificate; with it (from the config's ca, or certs.d in Docker's
// layout) and no credentials it fails with 401 naming the registry; login
// with a wrong password fails, with the right one writes the auth file
// the pull then uses; logout removes it.
func TestPullTLSBasicAuth(t *testing.T) {
	authFile := noHostCredentials(t)
	dir := t.TempDir()
	certs := testutil.NewTestCA(t, dir)
	reg := testutil.StartRegistryWith(t, testutil.RegistryOptions{TLS: certs, Htpasswd: testutil.WriteHtpasswd(t, dir, "alice", "s3cret")})
	ref := reg.Host + "/private/app:1"
	img := imageOf(t, "sh", layerOf(t, file("secret", "tls")))
	trust := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certs.Pool()}}
	if err := remote.Write(mustRef(t, ref), img, remote.WithTransport(trust), remote.WithAuth(&authn.Basic{Username: "alice", Password: "s3cret"})); err != nil {
		t.Fatalf("push: %v", err)
	}
	ctx := context.Background()
	s := openStore(t)
	if _, err := s.Pull(ctx, ref, PullOptions{}); err == nil || !strings.Contains(err.Error(), "certificate") || !strings.Contains(err.Error(), reg.Host) {
		t.Fatalf("pull without the CA: %v, want a certificate error naming %s", err, reg.Host)
	}
	// insecure = true: the certificate goes unverified; the 401 is next.
	insecure, err := LoadRegistryConfig(writeConfig(t, t.TempDir(), `[registry."`+reg.Host+`"]
insecure = true
`), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pull(ctx, ref, PullOptions{Registries: insecure}); err == nil || strings.Contains(err.Error(), "certificate") || !strings.Contains(err.Error(), "HTTP 401") {
		t.Fatalf("pull from an insecure registry without credentials: %v, want 401 and no certificate error", err)
	}
	cfg, err := LoadRegistryConfig(writeConfig(t, dir, `[registry."`+reg.Host+`"]
ca = "ca.pem"
`), false)
	if err != nil {
		t.Fatal(err)
	}
	opts := PullOptions{Registries: cfg}
	_, err = s.Pull(ctx, ref, opts)
	if err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") || !strings.Contains(err.Error(), "HTTP 401") || !strings.Contains(err.Error(), "registry "+reg.Host) {
		t.Fatalf("pull without credentials: %v, want 401 naming the registry", err)
	}
	checkNothingStored(t, s)

	if err := Login(ctx, reg.Host, "alice", "wrong", authFile, opts); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("login with a wrong password: %v, want 401", err)
	}
	if _, err := os.Stat(authFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed login wrote the auth file: %v", err)
	}
	if err := Login(ctx, reg.Host, "alice", "s3cret", authFile, opts); err != nil {
		t.Fatalf("login: %v", err)
	}
	if st, err := os.Stat(authFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("auth file: %v, mode %v; want 0600", err, st.Mode())
	}
	if _, err := s.Pull(ctx, ref, opts); err != nil {
		t.Fatalf("pull after login: %v", err)
	}

	// Docker's layout instead of ca: certs.d/HOST:PORT/ca.crt beside the file.
	dockerDir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dockerDir, "certs.d", reg.Host), 0o700); err != nil {
		t.Fatal(err)
	}
	pem, _ := os.ReadFile(certs.CAFile)
	if err := os.WriteFile(filepath.Join(dockerDir, "certs.d", reg.Host, "ca.crt"), pem, 0o600); err != nil {
		t.Fatal(err)
	}
	docker, err := LoadRegistryConfig(filepath.Join(dockerDir, "registries.toml"), true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openStore(t).Pull(ctx, ref, PullOptions{Registries: docker}); err != nil {
		t.Fatalf("pull with certs.d/%s/ca.crt: %v", reg.Host, err)
	}

	if err := Logout(reg.Host, authFile, false); err != nil {
		t.Fatalf("logout: %v", err)
	}
	if _, err := openStore(t).Pull(ctx, ref, opts); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("pull after logout: %v, want 401", err)
	}
	if err := Logout(reg.Host, authFile, false); !errors.Is(err, ErrNotLoggedIn) {
		t.Errorf("second logout: %v, want ErrNotLoggedIn", err)
	}
}

// TestPullClientCertificate runs docker-registry requiring a client
// certificate: without one the TLS handshake fails, naming the registry;
// with client_cert/client_key in the config, or client.cert/client.key in
// certs.d/HOST:PORT/ (Docker's layout), the pull succeeds.
func TestPullClientCertificate(t *testing.T) {
	noHostCredentials(t)
	dir := t.TempDir()
	certs := testutil.NewTestCA(t, dir)
	reg := testutil.StartRegistryWith(t, testutil.RegistryOptions{TLS: certs, ClientCA: true})
	ref := reg.Host + "/mtls:1"
	cert, err := tls.LoadX509KeyPair(certs.CertFile, certs.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	trust := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certs.Pool(), Certificates: []tls.Certificate{cert}}}
	if err := remote.Write(mustRef(t, ref), imageOf(t, "sh", layerOf(t, file("m", "tls"))), remote.WithTransport(trust)); err != nil {
		t.Fatalf("push: %v", err)
	}
	ctx := context.Background()
	caOnly, err := LoadRegistryConfig(writeConfig(t, t.TempDir(), `[registry."`+reg.Host+`"]
ca = "`+certs.CAFile+`"
`), false)
	if err != nil {
		t.Fatal(err)
	}
	// The handshake's failure reads "certificate required" or, when HTTP/2
	// was being set up, "client conn could not be established".
	if _, err := openStore(t).Pull(ctx, ref, PullOptions{Registries: caOnly}); err == nil || !strings.Contains(err.Error(), reg.Host) {
		t.Fatalf("pull without a client certificate: %v, want a TLS error naming %s", err, reg.Host)
	}
	withCert, err := LoadRegistryConfig(writeConfig(t, dir, `[registry."`+reg.Host+`"]
ca = "ca.pem"
client_cert = "cert.pem"
client_key = "key.pem"
`), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openStore(t).Pull(ctx, ref, PullOptions{Registries: withCert}); err != nil {
		t.Fatalf("pull with client_cert: %v", err)
	}
	docker := t.TempDir()
	hostDir := filepath.Join(docker, "certs.d", reg.Host)
	if err := os.MkdirAll(hostDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{certs.CAFile: "ca.crt", certs.CertFile: "client.cert", certs.KeyFile: "client.key"} {
		data, _ := os.ReadFile(src)
		if err := os.WriteFile(filepath.Join(hostDir, dst), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := LoadRegistryConfig(filepath.Join(docker, "registries.toml"), true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openStore(t).Pull(ctx, ref, PullOptions{Registries: cfg}); err != nil {
		t.Fatalf("pull with certs.d/%s/client.cert: %v", reg.Host, err)
	}
	os.Remove(filepath.Join(hostDir, "client.key"))
	cfg, _ = LoadRegistryConfig(filepath.Join(docker, "registries.toml"), true)
	if _, err := openStore(t).Pull(ctx, ref, PullOptions{Registries: cfg}); err == nil || !strings.Contains(err.Error(), "client.cert has no key") {
		t.Errorf("pull with client.cert but no client.key: %v", err)
	}
}
