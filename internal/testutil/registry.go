package testutil

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// registryBinary is Debian's docker-registry (the CNCF distribution
// registry), which scripts/provision.sh installs.
const registryBinary = "/usr/bin/docker-registry"

// FreeLoopbackAddr is a TCP address on 127.0.0.1 that nothing listens on
// now: a server down by design, or a port for a process the test starts
// next (which may race another test for it, and then fails to start).
func FreeLoopbackAddr(t testing.TB) *net.TCPAddr {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free loopback port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr)
}

// Registry is a docker-registry process the test started on loopback.
type Registry struct {
	// Host is "127.0.0.1:PORT", the registry part of a reference.
	Host string
	// log collects the registry's output (its access log among it).
	log *SyncBuffer
}

// Log returns what the registry has written so far (its access log).
func (r *Registry) Log() string { return r.log.String() }

// RegistryOptions shape a registry StartRegistryWith starts.
type RegistryOptions struct {
	// TLS, when set, serves HTTPS with this certificate (NewTestCA makes one).
	TLS *TestCert
	// Htpasswd, when set, is an htpasswd file (WriteHtpasswd): basic auth.
	Htpasswd string
	// ClientCA requires clients to present a certificate TLS's CA signed.
	ClientCA bool
}

// StartRegistry runs docker-registry on 127.0.0.1 on a free port with a
// fresh storage dir and a config file written here; cleanup stops it by
// PID. It returns once the registry answers /v2/.
func StartRegistry(t testing.TB) *Registry {
	t.Helper()
	return StartRegistryWith(t, RegistryOptions{})
}

// StartRegistryWith is StartRegistry with TLS and basic auth as opts say.
func StartRegistryWith(t testing.TB, opts RegistryOptions) *Registry {
	t.Helper()
	_, err := os.Stat(registryBinary)
	Requiref(t, err == nil, "%s is missing (apt-get install docker-registry): %v", registryBinary, err)
	dir := t.TempDir()
	// The port is free when probed; the registry binds it right after. A
	// second test winning the race would make this start fail, not pass.
	addr := FreeLoopbackAddr(t).String()
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(dir, "storage"), addr)
	client := http.DefaultClient
	scheme := "http"
	if opts.TLS != nil {
		cfg += fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", opts.TLS.CertFile, opts.TLS.KeyFile)
		tc := &tls.Config{RootCAs: opts.TLS.Pool()}
		if opts.ClientCA {
			cfg += fmt.Sprintf("    clientcas:\n      - %s\n", opts.TLS.CAFile)
			cert, err := tls.LoadX509KeyPair(opts.TLS.CertFile, opts.TLS.KeyFile)
			if err != nil {
				t.Fatal(err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		client = &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		scheme = "https"
	}
	if opts.Htpasswd != "" {
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: peapod-test\n    path: %s\n", opts.Htpasswd)
	}
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatalf("write registry config: %v", err)
	}
	out := &SyncBuffer{}
	cmd := exec.Command(registryBinary, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = out, out
	// docker-registry reads REGISTRY_* variables as config overrides: a
	// test's $REGISTRY_AUTH_FILE (the containers' auth.json) would be its
	// auth.file. Only the config file configures it.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGISTRY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", registryBinary, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	// Poll /v2/ until it answers: the registry signals readiness no other way.
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client.Get(scheme + "://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || opts.Htpasswd != "" && resp.StatusCode == http.StatusUnauthorized {
				return &Registry{Host: addr, log: out}
			}
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("docker-registry exited before serving (%v):\n%s", err, out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry on %s did not answer /v2/ within 15s:\n%s", addr, out.String())
		}
	}
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers (a process's
// output copied by exec's goroutines) and a reader.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
