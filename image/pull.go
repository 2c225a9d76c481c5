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
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
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
	// Auth authenticates to every registry the pull contacts (--creds).
	Auth authn.Authenticator
	// Keychain finds credentials per registry when Auth is nil; nil means
	// DefaultKeychain (auth.json files, then Docker's config).
	Keychain authn.Keychain
	// Insecure lists registries (host[:port]) that may be reached over plain
	// HTTP. Loopback registries always may, as Docker allows.
	Insecure []string
	// Registries holds mirrors and per-registry TLS settings; nil is none.
	Registries *RegistryConfig
	// Bars shows each layer's download; nil shows none.
	Bars ProgressBars
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

// Pull fetches ref into the store: the manifest (an index resolved to
// opts.Platform), the config and every layer the store lacks, PullJobs at
// a time, each hashed, decompressed and unpacked in one stream. The
// registry's mirrors (opts.Registries) are tried in order, then the
// registry itself. A tag this store pulled before is first checked with a
// HEAD: when the registry still names the same digest, nothing is fetched.
func (s *Store) Pull(ctx context.Context, ref string, opts PullOptions) (*Image, error) {
	parsed, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("invalid image name %q: %w", ref, err)
	}
	short, err := NormalizeName(ref)
	if err != nil {
		return nil, err
	}
	full, err := FullName(ref)
	if err != nil {
		return nil, err
	}
	if _, byDigest := parsed.(name.Digest); byDigest {
		// A digest names one content for ever: a stored one is the image.
		if img, err := s.Get(short); err == nil {
			return img, nil
		}
	}
	// One failed layer cancels the downloads of the others.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	platform := HostPlatform()
	if opts.Platform != nil {
		platform = *opts.Platform
	}
	tr := newRegistryTransport(opts.Transport, opts.Registries, opts.Insecure)
	ropts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithPlatform(platform),
		remote.WithTransport(tr),
		remote.WithUserAgent("peapod"),
	}
	switch {
	case opts.Auth != nil:
		ropts = append(ropts, remote.WithAuth(opts.Auth))
	case opts.Keychain != nil:
		ropts = append(ropts, remote.WithAuthFromKeychain(opts.Keychain))
	default:
		ropts = append(ropts, remote.WithAuthFromKeychain(DefaultKeychain()))
	}
	reg := parsed.Context().RegistryStr()
	known := s.pulledSource(short, full)
	eps := opts.Registries.endpoints(reg)
	var failures []error
	for _, ep := range eps {
		epRef, err := atEndpoint(parsed, ep.host, tr)
		if err != nil {
			return nil, err
		}
		if known.Digest != "" && known.Platform == platform.String() {
			// Always's check: a HEAD of the tag; the same digest is this image.
			d, err := remote.Head(epRef, ropts...)
			if err == nil && d.Digest.String() == known.Digest {
				if img, err := s.Get(short); err == nil {
					opts.line("%s: up to date (%s)", full, known.Digest)
					return img, nil
				}
			}
		}
		desc, err := remote.Get(epRef, ropts...)
		if err != nil {
			failures = append(failures, fmt.Errorf("%s: %s%w", ep.describe(reg), describeStatus(err), err))
			continue
		}
		if ep.mirror {
			opts.line("%s: from mirror %s", full, ep.host)
		}
		where := fmt.Sprintf("image %s (%s)", ref, ep.describe(reg))
		return s.pullDescriptor(desc, pullTarget{parsed: parsed, short: short, full: full, platform: platform, where: where}, cancel, opts)
	}
	if len(eps) == 1 {
		return nil, fmt.Errorf("failed to pull image %s from %w", ref, failures[0])
	}
	return nil, fmt.Errorf("failed to pull image %s from any of its %d endpoints: %w", ref, len(eps), endpointErrors(failures))
}

// endpointErrors are the failures of each endpoint a pull tried, on one line.
type endpointErrors []error

func (e endpointErrors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e endpointErrors) Unwrap() []error { return e }

// pullTarget is what one pull names.
type pullTarget struct {
	parsed   name.Reference // as the user gave it
	short    string         // NormalizeName: the store's name
	full     string         // FullName: the kubelet's spelling
	platform v1.Platform    // chosen from an index
	where    string         // "image REF (registry HOST)" for messages
}

// pullDescriptor pulls the image desc resolves to. Under the store's lock
// it first looks for the image by its config digest: a concurrent pull of
// the same image stored it meanwhile, and then only the names move.
func (s *Store) pullDescriptor(desc *remote.Descriptor, t pullTarget, cancel func(), opts PullOptions) (*Image, error) {
	img, err := desc.Image()
	if err != nil {
		return nil, fmt.Errorf("failed to pull %s: %w", t.where, err)
	}
	// The config's digest from the manifest: ConfigName would fetch the
	// config, which a concurrent pull of the same image may be fetching.
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("failed to read manifest of %s: %w", t.where, err)
	}
	id := m.Config.Digest
	digest, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("failed to read digest of %s: %w", t.where, err)
	}
	src := PullSource{Digest: desc.Digest.String(), Platform: t.platform.String()}
	repoDigest := fullRepo(t.parsed.Context()) + "@" + digest.String()
	unlock, work, err := s.beginImport()
	if err != nil {
		return nil, err
	}
	defer unlock()
	defer os.RemoveAll(work)
	if got, err := s.nameStored(id, t, src, repoDigest); err != nil || got != nil {
		if got != nil {
			opts.line("%s: image %s already stored", t.full, id)
		}
		return got, err
	}
	p, err := remotePending(img, t.where)
	if err != nil {
		return nil, err
	}
	p.names = []string{t.short}
	p.repoDigest = repoDigest
	p.pulled = map[string]PullSource{t.full: src}
	p.jobs = PullJobs
	p.abort = cancel
	p.progress = opts.Progress
	p.bars = opts.Bars
	got, err := s.commit(p)
	if err != nil {
		return nil, fmt.Errorf("failed to pull %s: %w", t.where, err)
	}
	return got, nil
}

// nameStored points t's name at image id when the store has it whole,
// recording where it came from; nil without error when it does not.
// Called with the lock held.
func (s *Store) nameStored(id v1.Hash, t pullTarget, src PullSource, repoDigest string) (*Image, error) {
	rec, err := s.readRecord(id.Hex)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	for _, l := range rec.Layers {
		if _, err := os.Lstat(s.layerDir(strings.TrimPrefix(l.DiffID, "sha256:"))); err != nil {
			return nil, nil // a layer went missing: pull it whole again
		}
	}
	fresh := &record{ID: rec.ID, RepoDigests: []string{repoDigest}, Pulled: map[string]PullSource{t.full: src}}
	var undo []func()
	if err := s.writeRecordOnce(fresh, &undo); err != nil {
		return nil, err
	}
	names, err := s.readNames()
	if err != nil {
		return nil, err
	}
	names[t.short] = fresh.ID
	if err := s.writeNames(names); err != nil {
		return nil, err
	}
	return s.toImage(fresh, names), nil
}

// pulledSource is what the registry last named t's reference as, when the
// stored image of that name was pulled by it; zero otherwise.
func (s *Store) pulledSource(short, full string) PullSource {
	img, err := s.Get(short)
	if err != nil {
		return PullSource{}
	}
	return img.Pulled[full]
}

// atEndpoint is ref's repository on host (a mirror, or the registry's
// server), reachable over plain HTTP when host may be.
func atEndpoint(ref name.Reference, host string, tr *registryTransport) (name.Reference, error) {
	var nopts []name.Option
	if tr.plainHTTPAllowed(host) && !isLoopback(host) {
		// Listed as insecure: plain HTTP too, as Docker's insecure-registries.
		nopts = append(nopts, name.Insecure)
	}
	if host == ref.Context().RegistryStr() && len(nopts) == 0 {
		return ref, nil
	}
	repo, err := name.NewRepository(host+"/"+ref.Context().RepositoryStr(), nopts...)
	if err != nil {
		return nil, fmt.Errorf("invalid repository %s on %s: %w", ref.Context().RepositoryStr(), host, err)
	}
	if d, ok := ref.(name.Digest); ok {
		return repo.Digest(d.DigestStr()), nil
	}
	return repo.Tag(ref.Identifier()), nil
}

// describe names an endpoint of registry reg for messages.
func (e endpoint) describe(reg string) string {
	switch {
	case e.mirror:
		return "mirror " + e.host
	case e.host != reg:
		return "registry " + hostKey(reg) + " (server " + e.host + ")"
	}
	return "registry " + e.host
}

// describeStatus names the HTTP status the registry answered, which
// go-containerregistry's message leaves out when the body has error codes.
func describeStatus(err error) string {
	var terr *transport.Error
	// Match go-containerregistry's own wording, not the bare number: a
	// registry on port 40485 has "404" in every message.
	if errors.As(err, &terr) && terr.StatusCode != 0 && !strings.Contains(err.Error(), "status code "+strconv.Itoa(terr.StatusCode)) {
		return fmt.Sprintf("HTTP %d %s: ", terr.StatusCode, http.StatusText(terr.StatusCode))
	}
	return ""
}

// line writes a progress line, when lines are wanted.
func (o PullOptions) line(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", args...)
	}
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
		p.layers[i].openCounted = func(onRead func(int)) (io.ReadCloser, error) { return openDecompressed(l, desc.Digest, onRead) }
		p.layers[i].open = func() (io.ReadCloser, error) { return openDecompressed(l, desc.Digest, nil) }
		p.layers[i].blob = desc.Digest
		p.layers[i].size = desc.Size
	}
	return p, nil
}

// openDecompressed opens a layer's compressed blob (go-containerregistry
// checks its digest and size as it is read) and decompresses gzip, zstd or
// nothing, by the magic bytes rather than the media type, as containerd does.
func openDecompressed(l v1.Layer, digest v1.Hash, onRead func(int)) (io.ReadCloser, error) {
	blob, err := l.Compressed()
	if err != nil {
		return nil, fmt.Errorf("failed to fetch blob %s: %w", digest, err)
	}
	var raw io.Reader = blob
	if onRead != nil {
		raw = countingReader{r: blob, onRead: onRead}
	}
	br := bufio.NewReaderSize(raw, 1<<16)
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

// countingReader reports the bytes read through it.
type countingReader struct {
	r      io.Reader
	onRead func(int)
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.onRead(n)
	}
	return n, err
}

func (d *drainingReader) Close() error {
	if d.close != nil {
		d.close()
	}
	return d.blob.Close()
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
