package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// commit unpacks the missing layers, writes the record and points the names
// at it. Called with the lock held. On failure every layer and record this
// call created is removed again.
func (s *Store) commit(p *pendingImage) (img *Image, err error) {
	if p.id.Algorithm != "sha256" || !hexID.MatchString(p.id.Hex) {
		return nil, fmt.Errorf("image ID %q is not a sha256 digest", p.id)
	}
	if len(p.layers) > MaxLayers {
		return nil, fmt.Errorf("image %s has %d layers, more than the %d one overlayfs mount stacks (OVL_MAX_STACK), so no container could run it; squash some layers: %w",
			p.describe(), len(p.layers), MaxLayers, ErrTooManyLayers)
	}
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	sizes, err := s.knownLayerSizes()
	if err != nil {
		return nil, err
	}
	rec := &record{ID: p.id.String(), Config: toConfig(p.config.Config), Created: p.created,
		Manifest: p.rawManifest, ConfigJSON: p.rawConfig, Pulled: p.pulled}
	if p.digest.Hex != "" {
		rec.Digest = p.digest.String()
	}
	if p.repoDigest != "" {
		rec.RepoDigests = []string{p.repoDigest}
	}
	if rec.Created.IsZero() {
		rec.Created = time.Now().UTC()
	}
	sizesByID, created, err := s.ensureLayers(p, sizes)
	for _, dir := range created {
		undo = append(undo, func() { os.RemoveAll(dir) })
	}
	if err != nil {
		return nil, err
	}
	for _, l := range p.layers {
		rec.Layers = append(rec.Layers, layerRecord{DiffID: l.diffID.String(), Size: sizesByID[l.diffID]})
	}
	if err := s.writeRecordOnce(rec, &undo); err != nil {
		return nil, err
	}
	names, err := s.readNames()
	if err != nil {
		return nil, err
	}
	for _, n := range p.names {
		names[n] = rec.ID // a name moves to the newest image, as with docker load
	}
	if err := s.writeNames(names); err != nil {
		return nil, err
	}
	return s.toImage(rec, names), nil
}

// describe names the image for messages: its names and ID.
func (p *pendingImage) describe() string {
	if len(p.names) == 0 {
		return p.id.String()
	}
	return strings.Join(p.names, ", ") + " (" + p.id.String() + ")"
}

// writeRecordOnce writes rec unless the image is already stored, in which
// case the existing record (with its creation time) is kept.
func (s *Store) writeRecordOnce(rec *record, undo *[]func()) error {
	hexPart := strings.TrimPrefix(rec.ID, "sha256:")
	old, err := s.readRecord(hexPart)
	if err == nil {
		fresh := *rec
		*rec = *old
		changed := false
		for _, d := range fresh.RepoDigests {
			// Pulled from another repository: remember it.
			if !slices.Contains(rec.RepoDigests, d) {
				rec.RepoDigests = append(rec.RepoDigests, d)
				changed = true
			}
		}
		for ref, src := range fresh.Pulled {
			if rec.Pulled[ref] != src {
				if rec.Pulled == nil {
					rec.Pulled = map[string]PullSource{}
				}
				rec.Pulled[ref] = src
				changed = true
			}
		}
		if rec.Manifest == nil && fresh.Manifest != nil {
			// Imported before manifests were kept.
			rec.Manifest, rec.ConfigJSON, rec.Digest = fresh.Manifest, fresh.ConfigJSON, fresh.Digest
			changed = true
		}
		if changed {
			return s.writeRecord(rec)
		}
		return nil
	}
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	if err := s.writeRecord(rec); err != nil {
		return err
	}
	path := s.recordPath(hexPart)
	*undo = append(*undo, func() { os.Remove(path) })
	return nil
}

// ensureLayers unpacks p's missing layers, p.jobs at a time, and returns
// every layer's size and the directories this call created (also on error,
// so the caller can remove them).
func (s *Store) ensureLayers(p *pendingImage, sizes map[string]int64) (map[v1.Hash]int64, []string, error) {
	jobs := max(p.jobs, 1)
	out := map[v1.Hash]int64{}
	var (
		mu      sync.Mutex
		created []string
		errs    []error
		wg      sync.WaitGroup
	)
	sem := make(chan struct{}, jobs)
	seen := map[v1.Hash]bool{}
	for _, l := range p.layers {
		if seen[l.diffID] {
			continue // the same layer twice in one image is unpacked once
		}
		seen[l.diffID] = true
		sem <- struct{}{}
		mu.Lock()
		failed := len(errs) > 0
		mu.Unlock()
		if failed {
			<-sem
			break // no new layer once one failed: the image fails as a whole
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			start := time.Now()
			var bar LayerBar
			if p.bars != nil && l.openCounted != nil {
				bar = p.bars.Layer(l.blob, l.size)
				l.open = func() (io.ReadCloser, error) { return l.openCounted(bar.Add) }
			}
			size, made, err := s.ensureLayer(l, sizes)
			if bar != nil {
				bar.Done(!made, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				if p.abort != nil && len(errs) == 1 {
					p.abort()
				}
				return
			}
			out[l.diffID] = size
			if made {
				created = append(created, s.layerDir(l.diffID.Hex))
			}
			p.report(l, made, size, time.Since(start))
		}()
	}
	wg.Wait()
	return out, created, errors.Join(errs...)
}

// report writes one progress line for a layer; called with commit's mutex held.
func (p *pendingImage) report(l pendingLayer, made bool, size int64, took time.Duration) {
	if p.progress == nil || p.bars != nil {
		return
	}
	id := l.blob
	if id.Hex == "" {
		id = l.diffID
	}
	short := id.Hex[:min(12, len(id.Hex))]
	if !made {
		fmt.Fprintf(p.progress, "%s: already present\n", short)
		return
	}
	fmt.Fprintf(p.progress, "%s: pulled, %.1f MB unpacked in %.2fs\n", short, float64(size)/1e6, took.Seconds())
}

// knownLayerSizes maps each stored layer's diffID to its recorded size.
func (s *Store) knownLayerSizes() (map[string]int64, error) {
	recs, err := s.readRecords()
	if err != nil {
		return nil, err
	}
	sizes := map[string]int64{}
	for _, r := range recs {
		for _, l := range r.Layers {
			sizes[l.DiffID] = l.Size
		}
	}
	return sizes, nil
}

// ensureLayer unpacks l into layers/<hex> unless it is there already. The
// tar is unpacked into a staging dir and renamed into place, so a layer dir
// exists only when complete; its content must hash to the diffID.
func (s *Store) ensureLayer(l pendingLayer, sizes map[string]int64) (size int64, created bool, err error) {
	if l.diffID.Algorithm != "sha256" || !hexID.MatchString(l.diffID.Hex) {
		return 0, false, fmt.Errorf("layer diffID %q is not a sha256 digest", l.diffID)
	}
	dst := s.layerDir(l.diffID.Hex)
	if _, err := os.Lstat(dst); err == nil {
		if size, ok := sizes[l.diffID.String()]; ok {
			return size, false, nil
		}
		// Left by an import that crashed before its record: unpack it afresh.
		if err := os.RemoveAll(dst); err != nil {
			return 0, false, fmt.Errorf("failed to remove unrecorded layer %s: %w", l.diffID, err)
		}
	}
	staging, err := os.MkdirTemp(s.tmpDir(), "layer-")
	if err != nil {
		return 0, false, fmt.Errorf("failed to create staging dir for layer %s: %w", l.diffID, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(staging)
		}
	}()
	for attempt := 1; ; attempt++ {
		size, err = unpackVerified(staging, l, s.chown)
		if err == nil || l.openCounted == nil || attempt == layerAttempts || !cutShort(err) {
			break
		}
		// The connection broke mid-blob: fetch the layer again into a
		// clean staging dir (the registry client retries only requests).
		if err := os.RemoveAll(staging); err != nil {
			return 0, false, fmt.Errorf("failed to clear staging dir of layer %s: %w", l.diffID, err)
		}
		if err := os.Mkdir(staging, 0o700); err != nil {
			return 0, false, fmt.Errorf("failed to create staging dir for layer %s: %w", l.diffID, err)
		}
	}
	if err != nil {
		return 0, false, err
	}
	if err := os.Rename(staging, dst); err != nil {
		return 0, false, fmt.Errorf("failed to move layer %s into place: %w", l.diffID, err)
	}
	return size, true, nil
}

// layerAttempts is how many times a pull fetches a layer whose download
// broke off.
const layerAttempts = 3

// cutShort reports whether err is a download broken off (a body shorter
// than announced, a reset connection), worth trying again; not a
// cancellation, a bad digest or a bad tar.
func cutShort(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// unpackVerified unpacks l into dir and checks the stream against its diffID.
func unpackVerified(dir string, l pendingLayer, chown bool) (int64, error) {
	rc, err := l.open()
	if err != nil {
		return 0, fmt.Errorf("failed to open layer %s: %w", l.diffID, err)
	}
	defer rc.Close()
	h := sha256.New()
	tee := io.TeeReader(rc, h)
	size, err := unpackLayer(dir, tee, chown)
	if err != nil {
		return 0, fmt.Errorf("failed to unpack layer %s: %w", l.diffID, err)
	}
	// The tar reader stops at the end-of-archive marker; hash the padding too.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return 0, fmt.Errorf("failed to read layer %s: %w", l.diffID, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != l.diffID.Hex {
		return 0, fmt.Errorf("layer content hashes to sha256:%s, not its diffID %s", got, l.diffID)
	}
	return size, nil
}

// toConfig keeps the parts of an image config a container uses.
func toConfig(c v1.Config) Config {
	return Config{
		Entrypoint: c.Entrypoint,
		Cmd:        c.Cmd,
		Env:        c.Env,
		WorkingDir: c.WorkingDir,
		User:       c.User,
		StopSignal: c.StopSignal,
	}
}
