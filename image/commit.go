package image

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
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
	rec := &record{ID: p.id.String(), Config: toConfig(p.config.Config), Created: p.created}
	if rec.Created.IsZero() {
		rec.Created = time.Now().UTC()
	}
	for _, l := range p.layers {
		size, created, err := s.ensureLayer(l, sizes)
		if err != nil {
			return nil, err
		}
		if created {
			dir := s.layerDir(l.diffID.Hex)
			undo = append(undo, func() { os.RemoveAll(dir) })
		}
		rec.Layers = append(rec.Layers, layerRecord{DiffID: l.diffID.String(), Size: size})
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
		*rec = *old
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
	size, err = unpackVerified(staging, l, s.chown)
	if err != nil {
		return 0, false, err
	}
	if err := os.Rename(staging, dst); err != nil {
		return 0, false, fmt.Errorf("failed to move layer %s into place: %w", l.diffID, err)
	}
	return size, true, nil
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
