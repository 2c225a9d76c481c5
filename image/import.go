package image

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// format is the kind of archive Import detected.
type format int

const (
	formatRootfs format = iota // a plain root filesystem tar
	formatDocker               // a `docker save` archive
	formatOCI                  // an OCI image layout packed as a tar
)

// Annotations that may name an image in an OCI layout's index.
const (
	annotationContainerdName = "io.containerd.image.name"
	annotationRefName        = "org.opencontainers.image.ref.name"
)

// defaultPath is the PATH a synthesized config for a rootfs tar carries.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// layoutFile matches the files of an OCI layout worth extracting.
var layoutFile = regexp.MustCompile(`^(oci-layout|index\.json|blobs/[a-z0-9]+/[a-f0-9]+)$`)

// pendingImage is an image ready to be committed to the store.
type pendingImage struct {
	id      v1.Hash        // config digest
	config  *v1.ConfigFile // the image config
	layers  []pendingLayer // bottom first
	names   []string       // normalised names to point at the image
	created time.Time      // creation time to record

	digest      v1.Hash   // manifest digest, when the image came with a manifest
	repoDigest  string    // "docker.io/library/x@sha256:…" for a pulled image
	rawManifest []byte    // the manifest as stored, for inspect
	rawConfig   []byte    // the config as stored, for inspect
	jobs        int       // layers unpacked at once; 0 means 1
	progress    io.Writer // one line per layer; nil discards
	abort       func()    // stops the other layers' downloads after a failure; nil for none

	pulled map[string]PullSource // full reference -> what the registry named, for a pull
	bars   ProgressBars          // per-layer download bars; nil for none
}

// pendingLayer is a layer not yet known to be unpacked.
type pendingLayer struct {
	diffID v1.Hash                       // digest of the uncompressed tar
	open   func() (io.ReadCloser, error) // opens the uncompressed tar
	blob   v1.Hash                       // compressed blob digest, when known
	size   int64                         // compressed blob size, when known

	// openCounted opens the tar as open does, calling onRead with the
	// compressed bytes as they arrive; nil for a local layer.
	openCounted func(onRead func(int)) (io.ReadCloser, error)
}

// Import reads an image archive from r: a `docker save` archive, an OCI
// layout packed as a tar, or a plain root filesystem tar (optionally
// gzipped). name is required for a rootfs tar and optional otherwise.
func (s *Store) Import(r io.Reader, name string, opts ...ImportOption) (*Image, error) {
	o := collect(opts)
	extra, err := optionalName(name)
	if err != nil {
		return nil, err
	}
	if err := ParseChanges(o.changes); err != nil {
		return nil, err
	}
	unlock, work, err := s.beginImport()
	if err != nil {
		return nil, err
	}
	defer unlock()
	defer os.RemoveAll(work)
	spool := filepath.Join(work, "input.tar")
	digest, err := spoolTar(r, spool)
	if err != nil {
		return nil, err
	}
	kind, err := detectFormat(spool)
	if err != nil {
		return nil, err
	}
	if kind != formatRootfs && len(o.changes) > 0 {
		return nil, errors.New("changes apply to a plain root filesystem tar only: this archive carries its own image configuration")
	}
	var p *pendingImage
	switch kind {
	case formatDocker:
		p, err = dockerImage(spool, extra)
	case formatOCI:
		p, err = ociTarImage(spool, filepath.Join(work, "layout"), extra)
	default:
		p, err = rootfsImage(spool, digest, extra, o.changes)
	}
	if err != nil {
		return nil, err
	}
	return s.commit(p)
}

// ImportPath imports a file (as Import does) or an OCI layout directory.
func (s *Store) ImportPath(p, name string, opts ...ImportOption) (*Image, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("failed to stat image archive %q: %w", p, err)
	}
	if !st.IsDir() {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("failed to open image archive %q: %w", p, err)
		}
		defer f.Close()
		return s.Import(f, name, opts...)
	}
	if len(collect(opts).changes) > 0 {
		return nil, fmt.Errorf("image layout %q: changes apply to a plain root filesystem tar only", p)
	}
	extra, err := optionalName(name)
	if err != nil {
		return nil, err
	}
	unlock, work, err := s.beginImport()
	if err != nil {
		return nil, err
	}
	defer unlock()
	defer os.RemoveAll(work)
	img, err := layoutImage(p, extra)
	if err != nil {
		return nil, err
	}
	return s.commit(img)
}

// optionalName normalises name, which may be empty.
func optionalName(n string) (string, error) {
	if n == "" {
		return "", nil
	}
	return NormalizeName(n)
}

// beginImport locks the store, sweeps stale staging dirs and makes a work dir.
func (s *Store) beginImport() (unlock func(), work string, err error) {
	unlock, err = s.lock()
	if err != nil {
		return nil, "", err
	}
	if err := s.sweepTmp(); err != nil {
		unlock()
		return nil, "", err
	}
	work, err = os.MkdirTemp(s.tmpDir(), "import-")
	if err != nil {
		unlock()
		return nil, "", fmt.Errorf("failed to create import work dir: %w", err)
	}
	return unlock, work, nil
}

// spoolTar copies the (possibly gzipped) stream to dst, uncompressed, and
// returns its sha256: the format detection and docker-save reader need to
// read it more than once, and for a rootfs tar the digest is its diffID.
func spoolTar(r io.Reader, dst string) (v1.Hash, error) {
	br := bufio.NewReader(r)
	var src io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return v1.Hash{}, fmt.Errorf("failed to read gzip header of image archive: %w", err)
		}
		defer zr.Close()
		src = zr
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("failed to create spool file %q: %w", dst, err)
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), src)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return v1.Hash{}, fmt.Errorf("failed to read image archive: %w", err)
	}
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, nil
}

// detectFormat looks at the archive's top-level names.
func detectFormat(p string) (format, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, fmt.Errorf("failed to open spooled archive: %w", err)
	}
	defer f.Close()
	seen := map[string]bool{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("image archive is not a readable tar: %w", err)
		}
		seen[path.Clean(strings.TrimLeft(hdr.Name, "/"))] = true
	}
	switch {
	case seen["manifest.json"]:
		return formatDocker, nil
	case seen["oci-layout"] && seen["index.json"]:
		return formatOCI, nil
	default:
		return formatRootfs, nil
	}
}

// dockerImage reads a `docker save` archive.
func dockerImage(spool, extra string) (*pendingImage, error) {
	opener := func() (io.ReadCloser, error) { return os.Open(spool) }
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, fmt.Errorf("failed to read docker archive manifest: %w", err)
	}
	desc, err := pickDockerImage(m, extra)
	if err != nil {
		return nil, err
	}
	var tag *name.Tag
	if len(m) > 1 {
		t, err := name.NewTag(desc.RepoTags[0])
		if err != nil {
			return nil, fmt.Errorf("invalid repo tag %q in docker archive: %w", desc.RepoTags[0], err)
		}
		tag = &t
	}
	img, err := tarball.Image(opener, tag)
	if err != nil {
		return nil, fmt.Errorf("failed to read docker archive image: %w", err)
	}
	names := []string{}
	for _, t := range desc.RepoTags {
		n, err := NormalizeName(t)
		if err != nil {
			return nil, fmt.Errorf("invalid repo tag in docker archive: %w", err)
		}
		names = append(names, n)
	}
	return fromV1(img, appendName(names, extra))
}

// pickDockerImage chooses the archive's image: the only one, or the one
// whose RepoTags hold name.
func pickDockerImage(m tarball.Manifest, extra string) (*tarball.Descriptor, error) {
	if len(m) == 1 {
		return &m[0], nil
	}
	if len(m) == 0 {
		return nil, errors.New("docker archive holds no image")
	}
	if extra == "" {
		return nil, fmt.Errorf("docker archive holds %d images: name the one to import", len(m))
	}
	for i := range m {
		for _, t := range m[i].RepoTags {
			if n, err := NormalizeName(t); err == nil && n == extra {
				return &m[i], nil
			}
		}
	}
	return nil, fmt.Errorf("docker archive holds no image tagged %q: %w", extra, ErrNotFound)
}

// ociTarImage extracts the layout files of an OCI layout tar into dir and reads it.
func ociTarImage(spool, dir, extra string) (*pendingImage, error) {
	if err := extractLayout(spool, dir); err != nil {
		return nil, err
	}
	return layoutImage(dir, extra)
}

// extractLayout writes oci-layout, index.json and blobs/<alg>/<hex> from the
// tar into dir; nothing else is written, so the tar's names cannot escape.
func extractLayout(spool, dir string) error {
	f, err := os.Open(spool)
	if err != nil {
		return fmt.Errorf("failed to open spooled archive: %w", err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("failed to read OCI layout tar: %w", err)
		}
		rel := path.Clean(strings.TrimLeft(hdr.Name, "/"))
		if hdr.Typeflag != tar.TypeReg || !layoutFile.MatchString(rel) {
			continue
		}
		if err := writeLayoutFile(filepath.Join(dir, filepath.FromSlash(rel)), tr); err != nil {
			return err
		}
	}
}

// writeLayoutFile copies one layout file out of the tar.
func writeLayoutFile(dst string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("failed to create OCI layout dir: %w", err)
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("failed to create OCI layout file %q: %w", dst, err)
	}
	_, err = io.Copy(out, r)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("failed to write OCI layout file %q: %w", dst, err)
	}
	return nil
}

// layoutImage reads an OCI layout directory.
func layoutImage(dir, extra string) (*pendingImage, error) {
	lp, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("failed to open OCI layout %q: %w", dir, err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("failed to read OCI layout index %q: %w", dir, err)
	}
	desc, err := pickLayoutManifest(idx, extra)
	if err != nil {
		return nil, fmt.Errorf("OCI layout %q: %w", dir, err)
	}
	img, err := layoutManifestImage(idx, desc)
	if err != nil {
		return nil, fmt.Errorf("OCI layout %q: %w", dir, err)
	}
	var names []string
	if n := descriptorName(desc); n != "" {
		names = append(names, n)
	}
	return fromV1(img, appendName(names, extra))
}

// pickLayoutManifest chooses the index entry: the only one, or the one
// whose name annotation matches name.
func pickLayoutManifest(idx v1.ImageIndex, extra string) (v1.Descriptor, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("failed to read index: %w", err)
	}
	switch {
	case len(im.Manifests) == 1:
		return im.Manifests[0], nil
	case len(im.Manifests) == 0:
		return v1.Descriptor{}, errors.New("index holds no image")
	case extra == "":
		return v1.Descriptor{}, fmt.Errorf("index holds %d images: name the one to import", len(im.Manifests))
	}
	for _, d := range im.Manifests {
		if descriptorName(d) == extra {
			return d, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("index holds no image named %q: %w", extra, ErrNotFound)
}

// descriptorName is the normalised name an index entry's annotations give,
// or "" when they give only a bare tag or nothing.
func descriptorName(d v1.Descriptor) string {
	for _, key := range []string{annotationContainerdName, annotationRefName} {
		v := d.Annotations[key]
		if v == "" || !strings.ContainsAny(v, ":/@") {
			continue // a bare "latest" names no repository
		}
		if n, err := NormalizeName(v); err == nil {
			return n
		}
	}
	return ""
}

// layoutManifestImage returns the image an index entry points at, choosing
// this machine's platform from a nested multi-platform index.
func layoutManifestImage(idx v1.ImageIndex, d v1.Descriptor) (v1.Image, error) {
	if !d.MediaType.IsIndex() {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("failed to read image %s: %w", d.Digest, err)
		}
		return img, nil
	}
	child, err := idx.ImageIndex(d.Digest)
	if err != nil {
		return nil, fmt.Errorf("failed to read nested index %s: %w", d.Digest, err)
	}
	im, err := child.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("failed to read nested index %s: %w", d.Digest, err)
	}
	for _, m := range im.Manifests {
		if m.Platform != nil && m.Platform.OS == "linux" && m.Platform.Architecture == runtime.GOARCH {
			return layoutManifestImage(child, m)
		}
	}
	return nil, fmt.Errorf("index %s has no image for linux/%s", d.Digest, runtime.GOARCH)
}

// fromV1 turns a go-containerregistry image into a pending import.
func fromV1(img v1.Image, names []string) (*pendingImage, error) {
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("failed to read image config: %w", err)
	}
	id, err := img.ConfigName()
	if err != nil {
		return nil, fmt.Errorf("failed to digest image config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("failed to list image layers: %w", err)
	}
	if len(layers) != len(cfg.RootFS.DiffIDs) {
		return nil, fmt.Errorf("image %s has %d layers but its config lists %d diffIDs", id, len(layers), len(cfg.RootFS.DiffIDs))
	}
	p := &pendingImage{id: id, config: cfg, names: names, created: cfg.Created.Time}
	if p.rawConfig, err = img.RawConfigFile(); err != nil {
		return nil, fmt.Errorf("failed to read image config %s: %w", id, err)
	}
	if p.rawManifest, err = img.RawManifest(); err != nil {
		return nil, fmt.Errorf("failed to read manifest of image %s: %w", id, err)
	}
	if p.digest, err = img.Digest(); err != nil {
		return nil, fmt.Errorf("failed to digest manifest of image %s: %w", id, err)
	}
	for i, l := range layers {
		p.layers = append(p.layers, pendingLayer{diffID: cfg.RootFS.DiffIDs[i], open: l.Uncompressed})
	}
	return p, nil
}

// rootfsImage synthesizes a one-layer image for a plain rootfs tar. The
// config holds no time, so importing the same tar again gives the same ID.
func rootfsImage(spool string, diffID v1.Hash, extra string, changes []string) (*pendingImage, error) {
	if extra == "" {
		return nil, errors.New("a plain root filesystem tar needs a name")
	}
	cfg := &v1.ConfigFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		RootFS:       v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{diffID}},
		Config:       v1.Config{Env: []string{defaultPath}},
	}
	if err := applyChanges(&cfg.Config, changes); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to encode synthesized image config: %w", err)
	}
	sum := sha256.Sum256(raw)
	return &pendingImage{
		id:     v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])},
		config: cfg,
		layers: []pendingLayer{{diffID: diffID, open: func() (io.ReadCloser, error) { return os.Open(spool) }}},
		names:  []string{extra},
	}, nil
}

// appendName adds n to names unless it is empty or already there.
func appendName(names []string, n string) []string {
	if n == "" || slices.Contains(names, n) {
		return names
	}
	return append(names, n)
}
