package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// MaxLayers is the most layers an image may have: overlayfs's
// OVL_MAX_STACK, the lower layers one overlay mount stacks on any kernel
// (containerinit.MaxOverlayLowers). peapod passes a deeper image's lowers in
// ways that fit any number up to it (namespaces/containerinit/overlay_linux.go).
const MaxLayers = 500

// recordVersion is the version of the JSON records this package writes.
const recordVersion = 1

// hexID matches the hex part of a sha256 digest.
var hexID = regexp.MustCompile(`^[a-f0-9]{64}$`)

// Store is a content-addressed image store in one directory.
type Store struct {
	dir   string // the store directory, <--root>/images
	chown bool   // apply tar ownership when unpacking; only root can
}

// Image is one imported image.
type Image struct {
	ID      string    // "sha256:<hex>" of the config (or of a synthesized config for a rootfs tar)
	Names   []string  // normalised names pointing at this image, sorted
	Layers  []Layer   // bottom first
	Config  Config    // the parts of the image config a container uses
	Size    int64     // unpacked regular-file bytes over all layers
	Created time.Time // the config's creation time, or the import time

	Digest      string          // manifest digest, "" for a synthesized rootfs image
	RepoDigests []string        // repository@digest per registry the image was pulled from
	Manifest    json.RawMessage // the manifest, when known
	ConfigJSON  json.RawMessage // the config blob, when known
	// Pulled maps each full reference this image was pulled by to what the
	// registry named it as then; Always's HEAD compares against it.
	Pulled map[string]PullSource
}

// PullSource is what a registry answered for a reference at a pull.
type PullSource struct {
	Digest   string `json:"digest"`   // the manifest or index digest the tag named
	Platform string `json:"platform"` // the platform chosen from an index
}

// Layer is one unpacked layer.
type Layer struct {
	DiffID string // "sha256:<hex>" of the uncompressed layer tar
	Dir    string // the unpacked directory, usable as an overlayfs lower dir
}

// Config is the subset of the image config that shapes a container.
type Config struct {
	Entrypoint []string `json:"entrypoint,omitempty"` // default entrypoint
	Cmd        []string `json:"cmd,omitempty"`        // default arguments
	Env        []string `json:"env,omitempty"`        // KEY=VALUE defaults
	WorkingDir string   `json:"workingDir,omitempty"` // default working directory
	User       string   `json:"user,omitempty"`       // default user[:group]
	StopSignal string   `json:"stopSignal,omitempty"` // signal that stops the main process
}

// record is the JSON form of an image in images/<id hex>.json.
type record struct {
	Version int           `json:"version"` // recordVersion
	ID      string        `json:"id"`      // "sha256:<hex>"
	Layers  []layerRecord `json:"layers"`  // bottom first
	Config  Config        `json:"config"`  // container defaults
	Created time.Time     `json:"created"` // creation time

	Digest      string          `json:"digest,omitempty"`      // manifest digest
	RepoDigests []string        `json:"repoDigests,omitempty"` // "docker.io/library/x@sha256:…" per registry it came from
	Manifest    json.RawMessage `json:"manifest,omitempty"`    // the manifest as stored
	ConfigJSON  json.RawMessage `json:"configJSON,omitempty"`  // the config blob as stored

	Pulled map[string]PullSource `json:"pulled,omitempty"` // full reference -> what the registry named
}

// layerRecord is one layer of a record.
type layerRecord struct {
	DiffID string `json:"diffID"` // "sha256:<hex>"
	Size   int64  `json:"size"`   // unpacked regular-file bytes
}

// nameIndex is the JSON form of names.json.
type nameIndex struct {
	Version int               `json:"version"` // recordVersion
	Names   map[string]string `json:"names"`   // normalised name -> image ID
}

// Open opens the store in dir, creating it.
func Open(dir string) (*Store, error) {
	s := &Store{dir: dir, chown: os.Geteuid() == 0}
	// 0700: layers keep the images' setuid binaries and device nodes as they
	// are, so host users must not be able to reach them.
	for _, d := range []string{dir, s.layersDir(), s.recordsDir(), s.tmpDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("failed to create image store dir %q: %w", d, err)
		}
	}
	return s, nil
}

func (s *Store) layersDir() string            { return filepath.Join(s.dir, "layers") }
func (s *Store) recordsDir() string           { return filepath.Join(s.dir, "images") }
func (s *Store) tmpDir() string               { return filepath.Join(s.dir, "tmp") }
func (s *Store) namesPath() string            { return filepath.Join(s.dir, "names.json") }
func (s *Store) layerDir(hex string) string   { return filepath.Join(s.layersDir(), hex) }
func (s *Store) recordPath(hex string) string { return filepath.Join(s.recordsDir(), hex+".json") }

// lock takes the store's exclusive flock; the returned func releases it.
func (s *Store) lock() (func(), error) {
	p := filepath.Join(s.dir, ".lock")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("failed to open image store lock %q: %w", p, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("failed to lock image store %q: %w", p, err)
	}
	return func() { f.Close() }, nil
}

// sweepTmp removes staging debris; called with the lock held, when no other
// import can be using tmp/.
func (s *Store) sweepTmp() error {
	entries, err := os.ReadDir(s.tmpDir())
	if err != nil {
		return fmt.Errorf("failed to read image store tmp dir: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(s.tmpDir(), e.Name())); err != nil {
			return fmt.Errorf("failed to remove stale %q: %w", e.Name(), err)
		}
	}
	return nil
}

// List returns every image, newest first.
func (s *Store) List() ([]*Image, error) {
	recs, err := s.readRecords()
	if err != nil {
		return nil, err
	}
	names, err := s.readNames()
	if err != nil {
		return nil, err
	}
	images := make([]*Image, 0, len(recs))
	for _, r := range recs {
		images = append(images, s.toImage(r, names))
	}
	sort.Slice(images, func(i, j int) bool {
		if !images[i].Created.Equal(images[j].Created) {
			return images[i].Created.After(images[j].Created)
		}
		return images[i].ID < images[j].ID
	})
	return images, nil
}

// Get finds an image by name (normalised), full ID or unique ID prefix.
func (s *Store) Get(ref string) (*Image, error) {
	names, err := s.readNames()
	if err != nil {
		return nil, err
	}
	r, err := s.find(ref, names)
	if err != nil {
		return nil, err
	}
	return s.toImage(r, names), nil
}

// Resolve returns what a container needs from the image: its ID, its layer
// directories bottom first and its config.
func (s *Store) Resolve(ref string) (id string, layerDirs []string, cfg Config, err error) {
	img, err := s.Get(ref)
	if err != nil {
		return "", nil, Config{}, err
	}
	for _, l := range img.Layers {
		layerDirs = append(layerDirs, l.Dir)
	}
	return img.ID, layerDirs, img.Config, nil
}

// find resolves ref to a record.
func (s *Store) find(ref string, names map[string]string) (*record, error) {
	hex := strings.TrimPrefix(strings.ToLower(ref), "sha256:")
	if hexID.MatchString(hex) {
		return s.readRecord(hex)
	}
	if n, err := NormalizeName(ref); err == nil {
		if id, ok := names[n]; ok {
			return s.readRecord(strings.TrimPrefix(id, "sha256:"))
		}
	}
	if strings.Contains(ref, "@") {
		// REPO@sha256:… names the image whose manifest a pull of a tag
		// found there (its RepoDigests, which the CRI reports and the
		// kubelet and critest look images up by).
		return s.findRepoDigest(ref)
	}
	if hex == "" || strings.Trim(hex, "0123456789abcdef") != "" {
		return nil, fmt.Errorf("image %q: %w", ref, ErrNotFound)
	}
	return s.findPrefix(ref, hex)
}

// findRepoDigest resolves REPO@sha256:… to the image pulled from there.
func (s *Store) findRepoDigest(ref string) (*record, error) {
	full, err := FullName(ref)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", ref, ErrNotFound)
	}
	recs, err := s.readRecords()
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		if slices.Contains(r.RepoDigests, full) {
			return r, nil
		}
	}
	return nil, fmt.Errorf("image %q: %w", ref, ErrNotFound)
}

// findPrefix resolves a unique ID prefix.
func (s *Store) findPrefix(ref, prefix string) (*record, error) {
	recs, err := s.readRecords()
	if err != nil {
		return nil, err
	}
	var found *record
	for _, r := range recs {
		if !strings.HasPrefix(strings.TrimPrefix(r.ID, "sha256:"), prefix) {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("image ID prefix %q: %w", ref, ErrAmbiguous)
		}
		found = r
	}
	if found == nil {
		return nil, fmt.Errorf("image %q: %w", ref, ErrNotFound)
	}
	return found, nil
}

// toImage builds the public form of a record.
func (s *Store) toImage(r *record, names map[string]string) *Image {
	img := &Image{ID: r.ID, Config: r.Config, Created: r.Created, Digest: r.Digest,
		RepoDigests: r.RepoDigests, Manifest: r.Manifest, ConfigJSON: r.ConfigJSON, Pulled: r.Pulled}
	for _, l := range r.Layers {
		img.Layers = append(img.Layers, Layer{DiffID: l.DiffID, Dir: s.layerDir(strings.TrimPrefix(l.DiffID, "sha256:"))})
		img.Size += l.Size
	}
	for n, id := range names {
		if id == r.ID {
			img.Names = append(img.Names, n)
		}
	}
	sort.Strings(img.Names)
	return img
}

// Remove deletes an image: it refuses while inUse reports pods using it,
// then drops its names, its record and every layer no other image uses.
func (s *Store) Remove(ref string, inUse func(imageID string) []string) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	names, err := s.readNames()
	if err != nil {
		return err
	}
	r, err := s.find(ref, names)
	if err != nil {
		return err
	}
	if inUse != nil {
		if pods := inUse(r.ID); len(pods) > 0 {
			return fmt.Errorf("image %s is used by pod(s) %s: %w", r.ID, strings.Join(pods, ", "), ErrInUse)
		}
	}
	for n, id := range names {
		if id == r.ID {
			delete(names, n)
		}
	}
	if err := s.writeNames(names); err != nil {
		return err
	}
	hex := strings.TrimPrefix(r.ID, "sha256:")
	if err := os.Remove(s.recordPath(hex)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to remove image record %s: %w", r.ID, err)
	}
	return s.gcLayers()
}

// Prune removes every image inUse reports no pod for, then every layer no
// image uses, and returns the IDs of the images removed.
func (s *Store) Prune(inUse func(imageID string) []string) ([]string, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	names, err := s.readNames()
	if err != nil {
		return nil, err
	}
	recs, err := s.readRecords()
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, r := range recs {
		if inUse != nil && len(inUse(r.ID)) > 0 {
			continue
		}
		for n, id := range names {
			if id == r.ID {
				delete(names, n)
			}
		}
		// Names first: a record without names is an unnamed image, while a
		// name without its record would point at nothing.
		if err := s.writeNames(names); err != nil {
			return removed, err
		}
		if err := os.Remove(s.recordPath(strings.TrimPrefix(r.ID, "sha256:"))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return removed, fmt.Errorf("failed to remove image record %s: %w", r.ID, err)
		}
		removed = append(removed, r.ID)
	}
	sort.Strings(removed)
	return removed, s.gcLayers()
}

// gcLayers removes every layer directory no record references, including
// those a crashed import left behind. Called with the lock held.
func (s *Store) gcLayers() error {
	recs, err := s.readRecords()
	if err != nil {
		return err
	}
	used := map[string]bool{}
	for _, r := range recs {
		for _, l := range r.Layers {
			used[strings.TrimPrefix(l.DiffID, "sha256:")] = true
		}
	}
	entries, err := os.ReadDir(s.layersDir())
	if err != nil {
		return fmt.Errorf("failed to read layers dir: %w", err)
	}
	for _, e := range entries {
		if used[e.Name()] {
			continue
		}
		if err := os.RemoveAll(s.layerDir(e.Name())); err != nil {
			return fmt.Errorf("failed to remove layer %s: %w", e.Name(), err)
		}
	}
	return nil
}

// readRecord loads images/<hex>.json.
func (s *Store) readRecord(hex string) (*record, error) {
	data, err := os.ReadFile(s.recordPath(hex))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("image sha256:%s: %w", hex, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read image record sha256:%s: %w", hex, err)
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("failed to decode image record sha256:%s: %w", hex, err)
	}
	if r.Version != recordVersion {
		return nil, fmt.Errorf("image record sha256:%s has version %d, this peapod reads version %d", hex, r.Version, recordVersion)
	}
	return &r, nil
}

// readRecords loads every record.
func (s *Store) readRecords() ([]*record, error) {
	entries, err := os.ReadDir(s.recordsDir())
	if err != nil {
		return nil, fmt.Errorf("failed to read image records: %w", err)
	}
	var recs []*record
	for _, e := range entries {
		hex, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !hexID.MatchString(hex) {
			continue // a temp file of an atomic write
		}
		r, err := s.readRecord(hex)
		if errors.Is(err, ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// writeRecord stores r atomically.
func (s *Store) writeRecord(r *record) error {
	r.Version = recordVersion
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("failed to encode image record %s: %w", r.ID, err)
	}
	return writeFileAtomic(s.recordPath(strings.TrimPrefix(r.ID, "sha256:")), data)
}

// readNames loads the names index; a missing index is empty.
func (s *Store) readNames() (map[string]string, error) {
	data, err := os.ReadFile(s.namesPath())
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read image names: %w", err)
	}
	var idx nameIndex
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("failed to decode image names %q: %w", s.namesPath(), err)
	}
	if idx.Version != recordVersion {
		return nil, fmt.Errorf("image names %q have version %d, this peapod reads version %d", s.namesPath(), idx.Version, recordVersion)
	}
	if idx.Names == nil {
		idx.Names = map[string]string{}
	}
	return idx.Names, nil
}

// writeNames stores the names index atomically.
func (s *Store) writeNames(names map[string]string) error {
	data, err := json.MarshalIndent(nameIndex{Version: recordVersion, Names: names}, "", "  ")
	if err != nil {
		return fmt.Errorf("failed to encode image names: %w", err)
	}
	return writeFileAtomic(s.namesPath(), data)
}

// writeFileAtomic writes data to a temp file beside p, syncs it and renames
// it over p, so readers see the old or the new content, never a mix.
func writeFileAtomic(p string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".tmp-")
	if err != nil {
		return fmt.Errorf("failed to create temp file for %q: %w", p, err)
	}
	defer func() {
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("failed to write %q: %w", f.Name(), err)
	}
	if err = os.Rename(f.Name(), p); err != nil {
		return fmt.Errorf("failed to rename %q into place: %w", p, err)
	}
	return nil
}
