package image

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// DefaultRegistryConfig is where peapod reads its registry configuration
// when --registry-config does not name another file. A missing default
// file is an empty configuration.
const DefaultRegistryConfig = "/etc/peapod/registries.toml"

// RegistryConfig is the registry configuration file, in the spirit of
// containerd's hosts.toml and containers' registries.conf:
//
//	[registry."docker.io"]
//	mirrors = ["mirror.lab:5000"]        # tried in order, then docker.io itself
//
//	[registry."mirror.lab:5000"]
//	ca = "/etc/peapod/certs/lab-ca.pem"  # trusted besides the system's CAs
//	client_cert = "client.pem"           # relative to the file's directory
//	client_key = "client-key.pem"
//
//	[registry."10.0.0.5:5000"]
//	insecure = true                      # plain HTTP, or HTTPS unverified
//
// Beside the file, certs.d/HOST[:PORT]/ holds certificates in Docker's
// layout: every *.crt is a CA, every *.cert with its *.key a client
// certificate.
type RegistryConfig struct {
	// Path is the file read, "" for none.
	Path string
	// CertsDir is the Docker-layout certificate directory (certs.d beside
	// the file).
	CertsDir string
	// Hosts maps a registry host (docker.io for Docker Hub) to its settings.
	Hosts map[string]*RegistryHost

	mu  sync.Mutex             // guards tls
	tls map[string]*tls.Config // per host, built on first use
}

// RegistryHost is one registry's settings.
type RegistryHost struct {
	// Mirrors are HOST[:PORT] of registries serving the same repositories,
	// tried in order before the registry itself.
	Mirrors []string `toml:"mirrors"`
	// Server is the HOST[:PORT] that answers for this registry instead of
	// itself (a lab's own registry for docker.io, say); "" is the registry.
	Server string `toml:"server"`
	// Insecure allows plain HTTP and HTTPS with an unverified certificate.
	Insecure bool `toml:"insecure"`
	// CA is a PEM file of CAs trusted for this host besides the system's.
	CA string `toml:"ca"`
	// ClientCert and ClientKey are a PEM client certificate and its key.
	ClientCert string `toml:"client_cert"`
	ClientKey  string `toml:"client_key"`
}

// registryFile is the TOML form.
type registryFile struct {
	Registry map[string]*RegistryHost `toml:"registry"`
}

// LoadRegistryConfig reads the registry configuration at path. A missing
// file is an empty configuration when missingOK (the default path), an
// error otherwise (a path the user named). Every key, host and file the
// configuration names is checked here, so a mistake fails before any pull.
func LoadRegistryConfig(path string, missingOK bool) (*RegistryConfig, error) {
	cfg := &RegistryConfig{Path: path, CertsDir: filepath.Join(filepath.Dir(path), "certs.d"), Hosts: map[string]*RegistryHost{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && missingOK {
		cfg.Path = ""
		return cfg, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read registry config: %w", err)
	}
	var f registryFile
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		return nil, fmt.Errorf("registry config %s: %w", path, err)
	}
	if un := md.Undecoded(); len(un) > 0 {
		return nil, fmt.Errorf("registry config %s: unknown key %q", path, un[0].String())
	}
	for host, h := range f.Registry {
		key := hostKey(host)
		if err := h.check(filepath.Dir(path)); err != nil {
			return nil, fmt.Errorf("registry config %s: registry %q: %w", path, host, err)
		}
		if _, err := name.NewRegistry(host, name.StrictValidation); err != nil || strings.Contains(host, "/") {
			return nil, fmt.Errorf("registry config %s: registry %q: want HOST[:PORT]", path, host)
		}
		if _, dup := cfg.Hosts[key]; dup {
			return nil, fmt.Errorf("registry config %s: registry %q given twice (as %s)", path, host, key)
		}
		cfg.Hosts[key] = h
	}
	// Build every configured host's TLS settings now: a CA or key that
	// cannot be read is this file's error, not a failed pull's.
	for _, host := range slices.Sorted(maps.Keys(cfg.Hosts)) {
		if _, err := cfg.tlsConfig(host); err != nil {
			return nil, fmt.Errorf("registry config %s: %w", path, err)
		}
	}
	return cfg, nil
}

// check validates one host's settings and makes its paths absolute.
func (h *RegistryHost) check(dir string) error {
	for _, m := range append(slices.Clone(h.Mirrors), h.Server) {
		if m == "" && h.Server == "" {
			continue
		}
		if m == "" || strings.Contains(m, "/") {
			return fmt.Errorf("mirror or server %q: want HOST[:PORT], without a scheme or path", m)
		}
		if _, err := name.NewRegistry(m, name.StrictValidation); err != nil {
			return fmt.Errorf("mirror or server %q: %w", m, err)
		}
	}
	if (h.ClientCert == "") != (h.ClientKey == "") {
		return errors.New("client_cert and client_key go together")
	}
	for _, p := range []*string{&h.CA, &h.ClientCert, &h.ClientKey} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	return nil
}

// hostKey is the configuration's name of a registry host: docker.io for
// Docker Hub, whatever go-containerregistry calls it.
func hostKey(host string) string {
	switch host {
	case name.DefaultRegistry, "registry-1.docker.io", "docker.io":
		return "docker.io"
	}
	return host
}

// host returns the settings of host, nil when it has none.
func (c *RegistryConfig) host(host string) *RegistryHost {
	if c == nil {
		return nil
	}
	return c.Hosts[hostKey(host)]
}

// endpoint is one place a pull may fetch an image from.
type endpoint struct {
	host   string // HOST[:PORT] contacted
	mirror bool   // a mirror, not the registry (or its server)
}

// endpoints lists where to pull from registry reg: its mirrors in order,
// then its server (itself by default).
func (c *RegistryConfig) endpoints(reg string) []endpoint {
	h := c.host(reg)
	if h == nil {
		return []endpoint{{host: reg}}
	}
	var out []endpoint
	for _, m := range h.Mirrors {
		out = append(out, endpoint{host: m, mirror: true})
	}
	return append(out, endpoint{host: cmpOr(h.Server, reg)})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// insecure reports whether host may be reached over plain HTTP or with an
// unverified certificate.
func (c *RegistryConfig) insecure(host string) bool {
	h := c.host(host)
	return h != nil && h.Insecure
}

// tlsConfig returns the TLS client settings for host: the system's CAs
// plus the configured CA and certs.d/HOST/*.crt, the client certificate,
// and no verification for an insecure host. nil means the defaults.
func (c *RegistryConfig) tlsConfig(host string) (*tls.Config, error) {
	if c == nil {
		return nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.tls[host]; ok {
		return t, nil
	}
	t, err := c.buildTLS(host)
	if err != nil {
		return nil, err
	}
	if c.tls == nil {
		c.tls = map[string]*tls.Config{}
	}
	c.tls[host] = t
	return t, nil
}

func (c *RegistryConfig) buildTLS(host string) (*tls.Config, error) {
	h := c.host(host)
	var cas, pairs [][2]string // CA files; client cert and key files
	if h != nil && h.CA != "" {
		cas = append(cas, [2]string{h.CA})
	}
	if h != nil && h.ClientCert != "" {
		pairs = append(pairs, [2]string{h.ClientCert, h.ClientKey})
	}
	if c.CertsDir != "" {
		// Docker's layout: certs.d/HOST:PORT/{ca.crt,client.cert,client.key}.
		dir := filepath.Join(c.CertsDir, host)
		entries, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("registry %s: failed to read %s: %w", host, dir, err)
		}
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			switch {
			case strings.HasSuffix(e.Name(), ".crt"):
				cas = append(cas, [2]string{p})
			case strings.HasSuffix(e.Name(), ".cert"):
				key := strings.TrimSuffix(p, ".cert") + ".key"
				if _, err := os.Stat(key); err != nil {
					return nil, fmt.Errorf("registry %s: client certificate %s has no key %s: %w", host, p, key, err)
				}
				pairs = append(pairs, [2]string{p, key})
			}
		}
	}
	insecure := h != nil && h.Insecure
	if len(cas) == 0 && len(pairs) == 0 && !insecure {
		return nil, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure} //nolint:gosec // insecure is the user's explicit choice for this host
	if len(cas) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		for _, ca := range cas {
			pem, err := os.ReadFile(ca[0])
			if err != nil {
				return nil, fmt.Errorf("registry %s: failed to read CA: %w", host, err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("registry %s: CA file %s holds no PEM certificate", host, ca[0])
			}
		}
		t.RootCAs = pool
	}
	for _, p := range pairs {
		cert, err := tls.LoadX509KeyPair(p[0], p[1])
		if err != nil {
			return nil, fmt.Errorf("registry %s: failed to load client certificate %s: %w", host, p[0], err)
		}
		t.Certificates = append(t.Certificates, cert)
	}
	return t, nil
}

// registryTransport is the HTTP transport under every registry request: it
// refuses plain HTTP to a registry neither loopback nor insecure
// (go-containerregistry would also use it for RFC 1918 addresses and *.local
// names), applies each host's TLS settings and caps manifest bodies.
type registryTransport struct {
	base     http.RoundTripper // remote.DefaultTransport, or a test's
	cfg      *RegistryConfig   // per-host settings; may be nil
	insecure []string          // --insecure-registry hosts

	mu      sync.Mutex
	perHost map[string]http.RoundTripper // base with a host's TLS settings
}

// newRegistryTransport wraps base (nil: remote.DefaultTransport).
func newRegistryTransport(base http.RoundTripper, cfg *RegistryConfig, insecure []string) *registryTransport {
	if base == nil {
		base = remote.DefaultTransport
	}
	return &registryTransport{base: base, cfg: cfg, insecure: insecure, perHost: map[string]http.RoundTripper{}}
}

// plainHTTPAllowed reports whether host may be reached over plain HTTP.
func (g *registryTransport) plainHTTPAllowed(host string) bool {
	return isLoopback(host) || slices.Contains(g.insecure, host) || g.cfg.insecure(host)
}

func (g *registryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.plainHTTPAllowed(req.URL.Host) {
		return nil, fmt.Errorf("registry %s: %w (set insecure = true for it in the registry config, or list it with --insecure-registry)", req.URL.Host, ErrInsecureRegistry)
	}
	rt, err := g.forHost(req.URL.Host)
	if err != nil {
		return nil, err
	}
	resp, err := rt.RoundTrip(req)
	if err != nil || !strings.Contains(req.URL.Path, "/manifests/") {
		return resp, err
	}
	if resp.ContentLength > MaxManifestSize {
		resp.Body.Close()
		return nil, fmt.Errorf("manifest %s is %d bytes, more than the %d a manifest may have", req.URL, resp.ContentLength, MaxManifestSize)
	}
	resp.Body = &capReader{r: resp.Body, left: MaxManifestSize, what: req.URL.String()}
	return resp, nil
}

// forHost returns the transport for host: base, or a clone of it with the
// host's TLS settings.
func (g *registryTransport) forHost(host string) (http.RoundTripper, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if rt, ok := g.perHost[host]; ok {
		return rt, nil
	}
	t, err := g.cfg.tlsConfig(host)
	if err != nil {
		return nil, err
	}
	if t == nil && slices.Contains(g.insecure, host) {
		t = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // --insecure-registry
	}
	rt := g.base
	if ht, ok := g.base.(*http.Transport); ok && t != nil {
		c := ht.Clone()
		c.TLSClientConfig = t
		rt = c
	}
	g.perHost[host] = rt
	return rt, nil
}
