package e2e

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/peapod/peapod/internal/testutil"
)

// tarEntry is one entry a test writes into a layer.
type tarEntry struct {
	name     string // entry name
	typ      byte   // tar.Type*
	body     string // regular file content
	linkname string // symlink or hardlink target
}

// Entry builders.
func tDir(n string) tarEntry          { return tarEntry{name: n, typ: tar.TypeDir} }
func tFile(n, body string) tarEntry   { return tarEntry{name: n, typ: tar.TypeReg, body: body} }
func tSymlink(n, to string) tarEntry  { return tarEntry{name: n, typ: tar.TypeSymlink, linkname: to} }
func tHardlink(n, to string) tarEntry { return tarEntry{name: n, typ: tar.TypeLink, linkname: to} }

// writeEntries appends entries to a tar writer.
func writeEntries(t *testing.T, tw *tar.Writer, entries ...tarEntry) {
	t.Helper()
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.linkname, Mode: 0o644, ModTime: time.Unix(0, 0)}
		if e.typ == tar.TypeDir {
			hdr.Mode = 0o755
		}
		if e.typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("failed to write tar header %q: %v", e.name, err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatalf("failed to write tar entry %q: %v", e.name, err)
		}
	}
}

// tarOf packs entries, after the entries of the tar at base when base is
// not empty.
func tarOf(t *testing.T, base string, entries ...tarEntry) []byte {
	t.Helper()
	return tarOfWithout(t, base, nil, entries...)
}

// tarOfWithout is tarOf leaving out the base's entries that skip names
// (in the base tar's spelling, e.g. "./dev/").
func tarOfWithout(t *testing.T, base string, skip []string, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if base != "" {
		f, err := os.Open(base)
		if err != nil {
			t.Fatalf("failed to open %s: %v", base, err)
		}
		defer f.Close()
		tr := tar.NewReader(f)
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("failed to read %s: %v", base, err)
			}
			if slices.Contains(skip, hdr.Name) {
				continue
			}
			if err := tw.WriteHeader(hdr); err != nil {
				t.Fatalf("failed to copy tar header %q: %v", hdr.Name, err)
			}
			if _, err := io.Copy(tw, tr); err != nil {
				t.Fatalf("failed to copy tar entry %q: %v", hdr.Name, err)
			}
		}
	}
	writeEntries(t, tw, entries...)
	if err := tw.Close(); err != nil {
		t.Fatalf("failed to close tar: %v", err)
	}
	return buf.Bytes()
}

// layerOf turns a tar into a go-containerregistry layer.
func layerOf(t *testing.T, data []byte) ggcrv1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatalf("failed to make layer: %v", err)
	}
	return l
}

// twoLayerImage is busybox plus etc/gone, etc/keep, data/old and
// data/sub/deep, then a second layer that deletes etc/gone (whiteout) and
// replaces data/ (opaque) with data/new. Its command is `sleep 1000`.
func twoLayerImage(t *testing.T) ggcrv1.Image {
	t.Helper()
	base := layerOf(t, tarOf(t, busyboxTar, tFile("etc/gone", "gone"), tFile("etc/keep", "keep"),
		tDir("data/"), tFile("data/old", "old"), tDir("data/sub/"), tFile("data/sub/deep", "deep")))
	change := layerOf(t, tarOf(t, "", tDir("etc/"), tFile("etc/.wh.gone", ""),
		tDir("data/"), tFile("data/.wh..wh..opq", ""), tFile("data/new", "new")))
	return imageOf(t, []string{"sleep", "1000"}, base, change)
}

// imageOf stacks layers into a linux/amd64 image running cmd.
func imageOf(t *testing.T, cmd []string, layers ...ggcrv1.Layer) ggcrv1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatalf("failed to append layers: %v", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("failed to read image config: %v", err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config = ggcrv1.Config{Cmd: cmd, Env: []string{"PATH=/bin"}}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatalf("failed to set image config: %v", err)
	}
	return img
}

// dockerSave writes img as a `docker save` archive tagged ref.
func dockerSave(t *testing.T, ref string, img ggcrv1.Image) string {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatalf("bad tag %q: %v", ref, err)
	}
	p := filepath.Join(t.TempDir(), "image.tar")
	if err := tarball.WriteToFile(p, tag, img); err != nil {
		t.Fatalf("failed to write docker save archive: %v", err)
	}
	return p
}

// ociLayout writes img as an OCI image layout directory.
func ociLayout(t *testing.T, ref string, img ggcrv1.Image) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatalf("failed to write OCI layout: %v", err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref})); err != nil {
		t.Fatalf("failed to add image to OCI layout: %v", err)
	}
	return dir
}

// diskUsage sums the allocated bytes of every file under dir, staying on
// dir's filesystem (an overlay mounted inside is not the root's usage).
func diskUsage(t *testing.T, dir string) int64 {
	t.Helper()
	var total int64
	var dev uint64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return nil // gone meanwhile
		}
		if p == dir {
			dev = st.Dev
		} else if st.Dev != dev {
			return fs.SkipDir
		}
		total += st.Blocks * 512
		return nil
	})
	if err != nil {
		t.Fatalf("failed to measure %s: %v", dir, err)
	}
	return total
}

// overlayLowers returns the lowerdirs of the overlay mounted at / in a
// mountinfo text.
func overlayLowers(t *testing.T, mountinfo string) []string {
	t.Helper()
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		sep := slices.Index(f, "-")
		if sep < 0 || len(f) < sep+4 || f[4] != "/" {
			continue
		}
		if f[sep+1] != "overlay" {
			t.Fatalf("the container's root is %s, want overlay:\n%s", f[sep+1], line)
		}
		var lowers []string
		for _, opt := range strings.Split(f[sep+3], ",") {
			if v, ok := strings.CutPrefix(opt, "lowerdir="); ok {
				lowers = append(lowers, strings.Split(v, ":")...)
			}
			if v, ok := strings.CutPrefix(opt, "lowerdir+="); ok {
				lowers = append(lowers, v)
			}
		}
		return lowers
	}
	t.Fatalf("no mount at / in the container's mountinfo:\n%s", mountinfo)
	return nil
}

// TestImages_5: a two-layer docker save archive and OCI layout whose second
// layer deletes a file and replaces a directory: the container sees
// neither, its root is an overlay with one lower per layer, and starting it
// grows --root by under 1 MiB.
func TestImages_5(t *testing.T) {
	img := twoLayerImage(t)
	for _, tt := range []struct {
		format string
		path   func(t *testing.T) string
	}{
		{"docker-save", func(t *testing.T) string { return dockerSave(t, "two:docker", img) }},
		{"oci-layout", func(t *testing.T) string { return ociLayout(t, "two:oci", img) }},
	} {
		t.Run(tt.format, func(t *testing.T) {
			e := newEnv(t)
			ref := "two:" + tt.format
			e.mustRun("image", "import", tt.path(t), "--name", ref)
			if ls := e.mustRun("image", "ls"); !regexp.MustCompile(`(?m)^two\s+` + tt.format + `\s`).MatchString(ls) {
				t.Fatalf("image ls does not list %s:\n%s", ref, ls)
			}
			p := newPod("layers", ctr("c")) // the image's Cmd runs
			p.Spec.Containers[0].Image = ref
			p.Spec.Containers[0].Command = nil
			// Warm the root's network first: the bridge's state is not the
			// container's cost.
			e.runPod(podJSON(newPod("warm", ctr("c", "sleep", "1000"))))
			before := diskUsage(t, e.root)
			e.runPod(podJSON(p))
			if grew := diskUsage(t, e.root) - before; grew >= 1<<20 {
				t.Errorf("starting the container grew --root by %d bytes, want under 1 MiB (no image copy)", grew)
			}
			if _, _, code := e.exec("layers", "c", "ls", "/etc/gone"); code == 0 {
				t.Errorf("/etc/gone, deleted by the second layer, is visible")
			}
			if got := strings.TrimSpace(e.mustExec("layers", "c", "cat", "/etc/keep")); got != "keep" {
				t.Errorf("/etc/keep holds %q, want the first layer's %q", got, "keep")
			}
			if got := strings.Fields(e.mustExec("layers", "c", "ls", "-A", "/data")); !slices.Equal(got, []string{"new"}) {
				t.Errorf("/data lists %v, want only the second layer's [new] (opaque directory)", got)
			}
			lowers := overlayLowers(t, e.mustExec("layers", "c", "cat", "/proc/self/mountinfo"))
			if len(lowers) != 2 {
				t.Errorf("the container's overlay has lowers %v, want one per layer (2)", lowers)
			}
			for _, l := range lowers {
				if !strings.HasPrefix(l, e.dirs().ImagesDir()+"/") {
					t.Errorf("overlay lower %q is not a layer of the image store under %s", l, e.root)
				}
			}
		})
	}
}

// TestImageTraversal_5: a tar whose entries would write or link outside the
// store is refused and writes nothing, in every import format.
func TestImageTraversal_5(t *testing.T) {
	e := newEnv(t)
	outside := t.TempDir()
	up := strings.Repeat("../", 32)
	tests := []struct {
		name    string
		entries []tarEntry
	}{
		{"dot-dot file", []tarEntry{tDir("etc/"), tFile(up+strings.TrimPrefix(outside, "/")+"/evil", "pwned")}},
		{"file through absolute symlink", []tarEntry{tSymlink("lnk", outside), tFile("lnk/evil", "pwned")}},
		{"file through relative symlink", []tarEntry{tSymlink("lnk", up+strings.TrimPrefix(outside, "/")), tFile("lnk/evil", "pwned")}},
		{"hardlink out", []tarEntry{tHardlink("passwd", up+"etc/passwd")}},
		{"absolute hardlink", []tarEntry{tHardlink("passwd", "/etc/passwd")}},
	}
	formats := []struct {
		name string
		file func(t *testing.T, data []byte) string
	}{
		{"rootfs-tar", func(t *testing.T, data []byte) string {
			p := filepath.Join(t.TempDir(), "rootfs.tar")
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{"docker-save", func(t *testing.T, data []byte) string {
			return dockerSave(t, "evil:1", imageOf(t, []string{"true"}, layerOf(t, data)))
		}},
	}
	for _, tt := range tests {
		for _, f := range formats {
			t.Run(tt.name+"/"+f.name, func(t *testing.T) {
				e := e.on(t)
				file := f.file(t, tarOf(t, "", tt.entries...))
				before := testutil.TakeSnapshot(t, e.roots())
				_, stderr, code := e.run("", "image", "import", file, "--name", "evil:1")
				if code == 0 {
					t.Errorf("import of a tar with %s succeeded", tt.name)
				}
				if !strings.Contains(stderr, "unsafe") && !strings.Contains(stderr, "outside") {
					t.Errorf("import error does not say the tar is unsafe: %q", stderr)
				}
				if names, _ := os.ReadDir(outside); len(names) > 0 {
					t.Errorf("import wrote %v outside the store, into %s", names, outside)
				}
				e.assertNoLeak(before)
			})
		}
	}
}

// deepImage is busybox plus /bottom as its first layer, then one layer per
// /layers/<i> and /top in the last: n layers in all, running `sleep 1000`.
func deepImage(t *testing.T, n int) ggcrv1.Image {
	t.Helper()
	layers := []ggcrv1.Layer{layerOf(t, tarOf(t, busyboxTar, tFile("bottom", "bottom")))}
	for i := 1; i < n-1; i++ {
		layers = append(layers, layerOf(t, tarOf(t, "", tDir("layers/"), tFile(fmt.Sprintf("layers/%d", i), "x"))))
	}
	layers = append(layers, layerOf(t, tarOf(t, "", tFile("top", "top"))))
	return imageOf(t, []string{"sleep", "1000"}, layers...)
}

// TestImagesDeep_5: images of 60 and 128 layers, whose lower paths overflow
// the page mount(2) takes, import and run; the container reads the bottom
// and top layers and sees every layer's file.
func TestImagesDeep_5(t *testing.T) {
	e := newEnv(t)
	for _, n := range []int{60, 128} {
		t.Run(fmt.Sprintf("%d-layers", n), func(t *testing.T) {
			e := e.on(t)
			ref := fmt.Sprintf("deep:%d", n)
			e.mustRun("image", "import", dockerSave(t, ref, deepImage(t, n)))
			name := fmt.Sprintf("deep%d", n)
			p := newPod(name, ctr("c"))
			p.Spec.Containers[0].Image = ref
			p.Spec.Containers[0].Command = nil
			e.runPod(podJSON(p))
			out := e.mustExec(name, "c", "sh", "-c", "echo $(cat /bottom) $(cat /top) $(ls /layers | wc -l)")
			if want := fmt.Sprintf("bottom top %d", n-2); strings.TrimSpace(out) != want {
				t.Errorf("the container read %q, want %q", strings.TrimSpace(out), want)
			}
			if lowers := overlayLowers(t, e.mustExec(name, "c", "cat", "/proc/self/mountinfo")); len(lowers) != n {
				t.Errorf("the container's overlay has %d lowers, want %d", len(lowers), n)
			}
			e.mustRun("rm", "-f", name)
		})
	}
}
