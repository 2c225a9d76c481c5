package image

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// PullJobs is how many layers a pull downloads and unpacks at once: three,
// as Docker's max-concurrent-downloads default.
const PullJobs = 3

// MaxManifestSize caps a manifest or index read from a registry. containerd
// refuses manifests over 4 MiB too; a real one is a few KiB, and a bigger
// one is a registry trying to exhaust the puller's memory.
const MaxManifestSize = 4 << 20

// ErrInsecureRegistry is returned when a registry would be reached over
// plain HTTP without being listed as insecure.
var ErrInsecureRegistry = errors.New("plain HTTP to a registry not allowed as insecure")

// PullOptions shape a Pull.
type PullOptions struct {
	// Platform chooses the image of an index; nil means this machine's.
	Platform *v1.Platform
	// Auth authenticates to the registry; nil means Docker's config
	// (authn.DefaultKeychain: $DOCKER_CONFIG, ~/.docker/config.json, helpers).
	Auth authn.Authenticator
	// Insecure lists registries (host[:port]) that may be reached over plain
	// HTTP. Loopback registries always may, as Docker allows.
	Insecure []string
	// Progress receives one line per layer; nil discards them.
	Progress io.Writer
	// Transport is the HTTP transport under the registry client; nil means
	// remote.DefaultTransport. Tests point it at fakes.
	Transport http.RoundTripper
}

// HostPlatform is the platform Pull chooses from an index by default.
func HostPlatform() v1.Platform {
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if runtime.GOARCH == "arm" {
		p.Variant = "v7"
	}
	return p
}

// ParsePlatform reads os/arch[/variant], as --platform takes it.
func ParsePlatform(s string) (*v1.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || slices.Contains(parts, "") {
		return nil, fmt.Errorf("invalid platform %q: want os/arch[/variant]", s)
	}
	p := &v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// FullName is a reference as the kubelet and containerd spell it:
// "nginx" is "docker.io/library/nginx:latest".
func FullName(ref string) (string, error) {
	parsed, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("invalid image name %q: %w", ref, err)
	}
	repo := fullRepo(parsed.Context())
	if d, ok := parsed.(name.Digest); ok {
		return repo + "@" + d.DigestStr(), nil
	}
	return repo + ":" + parsed.Identifier(), nil
}

// fullRepo spells a repository with its registry, docker.io for Docker Hub
// (go-containerregistry says index.docker.io, the kubelet docker.io).
func fullRepo(r name.Repository) string {
	reg := r.RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	return reg + "/" + r.RepositoryStr()
}

// Pull fetches ref from its registry into the store: the manifest (an index
// resolved to opts.Platform), the config and every layer the store lacks,
// PullJobs at a time, each hashed, decompressed and unpacked in one stream.
func (s *Store) Pull(ctx context.Context, ref string, opts PullOptions) (*Image, error) {
	parsed, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("invalid image name %q: %w", ref, err)
	}
	if slices.Contains(opts.Insecure, parsed.Context().RegistryStr()) {
		// Listed as insecure: plain HTTP, as Docker's insecure-registries.
		if parsed, err = name.ParseReference(ref, name.Insecure); err != nil {
			return nil, fmt.Errorf("invalid image name %q: %w", ref, err)
		}
	}
	short, err := NormalizeName(ref)
	if err != nil {
		return nil, err
	}
	// One failed layer cancels the downloads of the others.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	platform := HostPlatform()
	if opts.Platform != nil {
		platform = *opts.Platform
	}
	base := opts.Transport
	if base == nil {
		base = remote.DefaultTransport
	}
	ropts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithPlatform(platform),
		remote.WithTransport(&guardTransport{base: base, insecure: opts.Insecure}),
		remote.WithUserAgent("peapod"),
	}
	if opts.Auth != nil {
		ropts = append(ropts, remote.WithAuth(opts.Auth))
	} else {
		ropts = append(ropts, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	}
	where := fmt.Sprintf("image %s (registry %s)", ref, parsed.Context().RegistryStr())
	img, err := remote.Image(parsed, ropts...)
	if err != nil {
		return nil, fmt.Errorf("failed to pull %s: %w", where, err)
	}
	p, err := remotePending(img, where)
	if err != nil {
		return nil, err
	}
	p.names = []string{short}
	p.repoDigest = fullRepo(parsed.Context()) + "@" + p.digest.String()
	p.jobs = PullJobs
	p.abort = cancel
	p.progress = opts.Progress
	unlock, work, err := s.beginImport()
	if err != nil {
		return nil, err
	}
	defer unlock()
	defer os.RemoveAll(work)
	got, err := s.commit(p)
	if err != nil {
		return nil, fmt.Errorf("failed to pull %s: %w", where, err)
	}
	return got, nil
}

// remotePending turns a registry image into a pending image whose layers
// stream from the registry only when the store lacks them.
func remotePending(img v1.Image, where string) (*pendingImage, error) {
	p, err := fromV1(img, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("failed to read manifest of %s: %w", where, err)
	}
	if len(m.Layers) != len(p.layers) {
		return nil, fmt.Errorf("%s: manifest lists %d layers, config %d diffIDs", where, len(m.Layers), len(p.layers))
	}
	for i, desc := range m.Layers {
		l, err := img.LayerByDigest(desc.Digest)
		if err != nil {
			return nil, fmt.Errorf("%s: layer %s: %w", where, desc.Digest, err)
		}
		p.layers[i].open = func() (io.ReadCloser, error) { return openDecompressed(l, desc.Digest) }
		p.layers[i].blob = desc.Digest
	}
	return p, nil
}

// openDecompressed opens a layer's compressed blob (go-containerregistry
// checks its digest and size as it is read) and decompresses gzip, zstd or
// nothing, by the magic bytes rather than the media type, as containerd does.
func openDecompressed(l v1.Layer, digest v1.Hash) (io.ReadCloser, error) {
	blob, err := l.Compressed()
	if err != nil {
		return nil, fmt.Errorf("failed to fetch blob %s: %w", digest, err)
	}
	br := bufio.NewReaderSize(blob, 1<<16)
	magic, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		blob.Close()
		return nil, fmt.Errorf("failed to read blob: %w", err)
	}
	d := &drainingReader{blob: blob, raw: br, digest: digest}
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			blob.Close()
			return nil, fmt.Errorf("failed to read gzip header: %w", err)
		}
		d.r, d.close = zr, zr.Close
	case len(magic) == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			blob.Close()
			return nil, fmt.Errorf("failed to start zstd decoder: %w", err)
		}
		d.r, d.close = zr, func() error { zr.Close(); return nil }
	default:
		d.r = br
	}
	return d, nil
}

// drainingReader reads the decompressed stream and, at its end, reads the
// rest of the compressed blob, so the blob's digest and size are checked
// (and a mismatch returned from Read) before the layer is moved into place.
type drainingReader struct {
	r      io.Reader    // decompressed stream
	raw    io.Reader    // the buffered compressed blob
	blob   io.Closer    // the blob's body
	close  func() error // the decompressor's Close, if any
	digest v1.Hash      // the blob's digest, for messages
}

func (d *drainingReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if errors.Is(err, io.EOF) {
		if _, derr := io.Copy(io.Discard, d.raw); derr != nil {
			return n, fmt.Errorf("blob %s: %w", d.digest, derr)
		}
	} else if err != nil {
		err = fmt.Errorf("blob %s: %w", d.digest, err)
	}
	return n, err
}

func (d *drainingReader) Close() error {
	if d.close != nil {
		d.close()
	}
	return d.blob.Close()
}

// guardTransport refuses plain HTTP to a registry neither loopback nor
// listed as insecure (go-containerregistry would also use it for RFC 1918
// addresses and *.local names), and caps manifest bodies.
type guardTransport struct {
	base     http.RoundTripper
	insecure []string
}

func (g *guardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !isLoopback(req.URL.Host) && !slices.Contains(g.insecure, req.URL.Host) {
		return nil, fmt.Errorf("registry %s: %w (list it with --insecure-registry)", req.URL.Host, ErrInsecureRegistry)
	}
	resp, err := g.base.RoundTrip(req)
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

// capReader fails a body longer than left bytes.
type capReader struct {
	r    io.ReadCloser
	left int64
	what string
}

func (c *capReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return n, fmt.Errorf("manifest %s is more than the %d bytes a manifest may have", c.what, MaxManifestSize)
	}
	return n, err
}

func (c *capReader) Close() error { return c.r.Close() }

// isLoopback reports whether host[:port] is localhost or a loopback address.
func isLoopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
