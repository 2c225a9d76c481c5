package image

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// testMtime is the mtime every test entry carries, so unpacking can be checked.
var testMtime = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// entry is one tar entry a test writes.
type entry struct {
	name     string // entry name
	typ      byte   // tar.Type*
	body     string // content for regular files
	linkname string // symlink or hardlink target
	mode     int64  // permission bits; 0 means 0644 (files) or 0755 (dirs)
}

// dir, file, symlink and hardlink build entries tersely.
func dir(n string) entry             { return entry{name: n, typ: tar.TypeDir} }
func file(n, body string) entry      { return entry{name: n, typ: tar.TypeReg, body: body} }
func symlink(n, target string) entry { return entry{name: n, typ: tar.TypeSymlink, linkname: target} }
func hardlink(n, target string) entry {
	return entry{name: n, typ: tar.TypeLink, linkname: target}
}

// tarBytes packs entries into a tar.
func tarBytes(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.linkname, Mode: e.mode, ModTime: testMtime, Size: int64(len(e.body))}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
			if e.typ == tar.TypeDir {
				hdr.Mode = 0o755
			}
		}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("write tar header %q: %v", e.name, err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatalf("write tar body %q: %v", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("close tar: %v", err)
	}
	return buf.Bytes()
}

// layerOf turns entries into a go-containerregistry layer.
func layerOf(t testing.TB, entries ...entry) v1.Layer {
	t.Helper()
	data := tarBytes(t, entries...)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatalf("layer from tar: %v", err)
	}
	return l
}

// imageOf stacks layers into an image with a small config.
func imageOf(t testing.TB, cmd string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatalf("append layers: %v", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("config file: %v", err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config = v1.Config{Cmd: []string{cmd}, Env: []string{"A=1"}, WorkingDir: "/data", User: "65534", StopSignal: "SIGINT"}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatalf("set config: %v", err)
	}
	return img
}

// baseLayer and changeLayer form the whiteout test image: the second layer
// deletes etc/gone and replaces data/ (opaque).
func baseLayer(t testing.TB) v1.Layer {
	return layerOf(t, dir("etc/"), file("etc/keep", "keep"), file("etc/gone", "gone"),
		dir("data/"), file("data/old", "old"), dir("data/sub/"), file("data/sub/deep", "deep"))
}

func changeLayer(t testing.TB) v1.Layer {
	return layerOf(t, dir("etc/"), file("etc/.wh.gone", ""),
		dir("data/"), file("data/.wh..wh..opq", ""), file("data/new", "new"))
}

// dockerSave writes img as a `docker save` archive tagged ref.
func dockerSave(t testing.TB, ref string, img v1.Image) []byte {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatalf("tag %q: %v", ref, err)
	}
	var buf bytes.Buffer
	if err := tarball.MultiRefWrite(map[name.Reference]v1.Image{tag: img}, &buf); err != nil {
		t.Fatalf("docker save: %v", err)
	}
	return buf.Bytes()
}

// ociLayout writes img as an OCI layout directory annotated with ref.
func ociLayout(t testing.TB, ref string, img v1.Image) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatalf("write layout: %v", err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{annotationRefName: ref})); err != nil {
		t.Fatalf("append image to layout: %v", err)
	}
	return dir
}

// tarDir packs a directory (as `tar -C dir .` would).
func tarDir(t testing.TB, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.AddFS(os.DirFS(dir)); err != nil {
		t.Fatalf("tar %q: %v", dir, err)
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("close tar: %v", err)
	}
	return buf.Bytes()
}

// openStore opens a store in a fresh temp dir.
func openStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "images"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return s
}

// dirNames lists a directory's entries.
func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read dir %q: %v", dir, err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// hashOf digests data as a diffID.
func hashOf(t testing.TB, data []byte) v1.Hash {
	t.Helper()
	h, _, err := v1.SHA256(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// mustTag parses a tag.
func mustTag(t testing.TB, ref string) name.Tag {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	return tag
}
