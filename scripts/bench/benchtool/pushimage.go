package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// cmdPushImage builds an image of LAYERS gzip layers of MIB MiB of random
// data in all (files of 1 MiB, so unpacking does real file work) and pushes
// it to REF, a registry on loopback: scenario 8's pull. Random data does
// not compress, so the bytes on the wire are the bytes on disk.
//
//	benchtool push-image REF LAYERS MIB
func cmdPushImage(w io.Writer, args []string) error {
	if err := wantArgs(args, 3, "REF LAYERS MIB"); err != nil {
		return err
	}
	ref, err := name.ParseReference(args[0])
	if err != nil {
		return err
	}
	layers, err1 := strconv.Atoi(args[1])
	mib, err2 := strconv.Atoi(args[2])
	if err1 != nil || err2 != nil || layers < 1 || mib < layers {
		return fmt.Errorf("%w: LAYERS and MIB are positive integers, MIB at least LAYERS", errUsage)
	}
	rng := rand.NewChaCha8([32]byte{8}) // the same image every run
	img := empty.Image
	for l := range layers {
		data, err := randomTar(rng, l, mib/layers)
		if err != nil {
			return err
		}
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
		if err != nil {
			return err
		}
		if img, err = mutate.AppendLayers(img, layer); err != nil {
			return err
		}
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config = v1.Config{Cmd: []string{"sh"}}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return err
	}
	if err := remote.Write(ref, img); err != nil {
		return fmt.Errorf("failed to push %s: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s@%s\n", ref.Context(), d)
	return err
}

// randomTar is a tar of mib files of 1 MiB of random bytes under l/.
func randomTar(rng io.Reader, l, mib int) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	chunk := make([]byte, 1<<20)
	for f := range mib {
		if _, err := io.ReadFull(rng, chunk); err != nil {
			return nil, err
		}
		hdr := &tar.Header{Name: fmt.Sprintf("layer%d/file%03d", l, f), Mode: 0o644, Size: int64(len(chunk)), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(chunk); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), tw.Close()
}
