package image

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"
)

func TestNormalizeName(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"busybox", "busybox:latest"},
		{"busybox:1.36", "busybox:1.36"},
		{"docker.io/library/busybox:latest", "busybox:latest"},
		{"index.docker.io/library/busybox", "busybox:latest"},
		{"example.com/team/app:v1", "example.com/team/app:v1"},
		{"localhost:5000/app", "localhost:5000/app:latest"},
	}
	for _, tc := range tests {
		got, err := NormalizeName(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("NormalizeName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "UPPER/case", "a b"} {
		if got, err := NormalizeName(bad); err == nil {
			t.Errorf("NormalizeName(%q) = %q, want an error", bad, got)
		}
	}
}

func TestImportRootfs(t *testing.T) {
	s := openStore(t)
	data := tarBytes(t,
		dir("bin/"), entry{name: "bin/busybox", typ: '0', body: "#!binary", mode: 0o755},
		symlink("bin/sh", "/bin/busybox"), hardlink("bin/ls", "bin/busybox"),
		entry{name: "tmp/", typ: '5', mode: 0o1777}, file("etc/passwd", "root:x:0:0::/root:/bin/sh\n"))
	img, err := s.Import(bytes.NewReader(data), "busybox")
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if !slices.Equal(img.Names, []string{"busybox:latest"}) || len(img.Layers) != 1 {
		t.Fatalf("image = %+v, want one layer named busybox:latest", img)
	}
	if want := int64(len("#!binary") + len("root:x:0:0::/root:/bin/sh\n")); img.Size != want {
		t.Errorf("size = %d, want %d", img.Size, want)
	}
	root := img.Layers[0].Dir
	if target, err := os.Readlink(filepath.Join(root, "bin/sh")); err != nil || target != "/bin/busybox" {
		t.Errorf("bin/sh -> %q, %v; want the absolute target kept", target, err)
	}
	var bb, ls unix.Stat_t
	if err := unix.Lstat(filepath.Join(root, "bin/busybox"), &bb); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lstat(filepath.Join(root, "bin/ls"), &ls); err != nil {
		t.Fatal(err)
	}
	if bb.Ino != ls.Ino || bb.Mode&0o7777 != 0o755 || bb.Mtim.Sec != testMtime.Unix() {
		t.Errorf("busybox ino %d mode %o mtime %d; ls ino %d: want a hardlink, 0755, mtime %d", bb.Ino, bb.Mode&0o7777, bb.Mtim.Sec, ls.Ino, testMtime.Unix())
	}
	st, err := os.Stat(filepath.Join(root, "tmp"))
	if err != nil || st.Mode()&os.ModeSticky == 0 || st.Mode().Perm() != 0o777 || st.ModTime().Unix() != testMtime.Unix() {
		t.Errorf("tmp = %v, %v; want drwxrwxrwt with the tar's mtime", st.Mode(), err)
	}

	for _, ref := range []string{"busybox", "docker.io/library/busybox:latest", img.ID, strings.TrimPrefix(img.ID, "sha256:")[:12]} {
		got, err := s.Get(ref)
		if err != nil || got.ID != img.ID {
			t.Errorf("Get(%q) = %v, %v; want %s", ref, got, err, img.ID)
		}
	}
	if _, err := s.Get("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(nope) err = %v, want ErrNotFound", err)
	}
	if _, err := s.Import(bytes.NewReader(data), ""); err == nil {
		t.Error("importing a rootfs tar without a name succeeded")
	}
	again, err := s.Import(bytes.NewReader(data), "other:v2")
	if err != nil || again.ID != img.ID || !slices.Equal(again.Names, []string{"busybox:latest", "other:v2"}) {
		t.Errorf("re-import = %+v, %v; want the same ID with both names", again, err)
	}
	if list, err := s.List(); err != nil || len(list) != 1 {
		t.Errorf("List = %d images, %v; want 1", len(list), err)
	}
}

// TestImportRefusesUnsafe checks that every escaping entry is refused and
// leaves nothing behind, inside the store or outside it.
func TestImportRefusesUnsafe(t *testing.T) {
	tests := []struct {
		name    string
		entries func(outside string) []entry
	}{
		{"dotdot", func(string) []entry { return []entry{file("ok", "x"), file("../../../outside/evil", "x")} }},
		{"inner dotdot", func(string) []entry { return []entry{file("a/../../../../outside/evil", "x")} }},
		{"write through symlink", func(o string) []entry { return []entry{symlink("d", o), file("d/f", "x")} }},
		{"mkdir through symlink", func(o string) []entry { return []entry{symlink("d", o), dir("d/sub/")} }},
		{"relative symlink parent", func(string) []entry { return []entry{symlink("d", "../../../outside"), file("d/f", "x")} }},
		{"hardlink dotdot", func(string) []entry { return []entry{hardlink("h", "../../../outside/target")} }},
		{"hardlink absolute", func(o string) []entry { return []entry{hardlink("h", o+"/target")} }},
		{"hardlink through symlink", func(o string) []entry { return []entry{symlink("d", o), hardlink("h", "d/target")} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			outside := filepath.Join(base, "outside")
			if err := os.Mkdir(outside, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(outside, "target"), []byte("secret"), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(filepath.Join(base, "images"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Import(bytes.NewReader(tarBytes(t, tc.entries(outside)...)), "evil")
			if !errors.Is(err, ErrUnsafePath) {
				t.Fatalf("import err = %v, want ErrUnsafePath", err)
			}
			if got := dirNames(t, outside); !slices.Equal(got, []string{"target"}) {
				t.Errorf("outside dir holds %v, want only target", got)
			}
			for _, d := range []string{s.layersDir(), s.recordsDir(), s.tmpDir()} {
				if got := dirNames(t, d); len(got) != 0 {
					t.Errorf("%s holds %v after a refused import", d, got)
				}
			}
			if _, err := os.Stat(s.namesPath()); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("names index exists after a refused import: %v", err)
			}
		})
	}
}

func TestImportRejectsDiffIDMismatch(t *testing.T) {
	s := openStore(t)
	p, err := rootfsImage("unused", hashOf(t, []byte("something else")), "x", nil)
	if err != nil {
		t.Fatal(err)
	}
	data := tarBytes(t, file("f", "content"))
	p.layers[0].open = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	if _, err := s.commit(p); err == nil || !strings.Contains(err.Error(), "not its diffID") {
		t.Fatalf("commit err = %v, want a diffID mismatch", err)
	}
	if got := dirNames(t, s.layersDir()); len(got) != 0 {
		t.Errorf("layers dir holds %v after a mismatch", got)
	}
}

// sharedImages builds two docker archives whose bottom layer is the same.
func sharedImages(t testing.TB) (a, b []byte) {
	shared := layerOf(t, dir("usr/"), file("usr/shared", "shared"))
	a = dockerSave(t, "app-a:v1", imageOf(t, "a", shared, layerOf(t, file("a", "a"))))
	b = dockerSave(t, "app-b:v1", imageOf(t, "b", shared, layerOf(t, file("b", "bb"))))
	return a, b
}

func TestDedupAndRemove(t *testing.T) {
	s := openStore(t)
	a, b := sharedImages(t)
	imgA, err := s.Import(bytes.NewReader(a), "")
	if err != nil {
		t.Fatalf("import a: %v", err)
	}
	var before unix.Stat_t
	if err := unix.Stat(imgA.Layers[0].Dir, &before); err != nil {
		t.Fatal(err)
	}
	imgB, err := s.Import(bytes.NewReader(b), "")
	if err != nil {
		t.Fatalf("import b: %v", err)
	}
	var after unix.Stat_t
	if err := unix.Stat(imgB.Layers[0].Dir, &after); err != nil {
		t.Fatal(err)
	}
	if imgA.Layers[0].Dir != imgB.Layers[0].Dir || before.Ino != after.Ino {
		t.Fatalf("shared layer unpacked twice: %s (ino %d) vs %s (ino %d)", imgA.Layers[0].Dir, before.Ino, imgB.Layers[0].Dir, after.Ino)
	}
	if got := dirNames(t, s.layersDir()); len(got) != 3 {
		t.Fatalf("layers dir holds %v, want 3 layers", got)
	}
	if imgA.Size != int64(len("shared")+len("a")) || imgA.Config.Cmd[0] != "a" || imgA.Config.StopSignal != "SIGINT" {
		t.Errorf("image a = %+v", imgA)
	}

	err = s.Remove("app-a:v1", func(id string) []string {
		if id != imgA.ID {
			t.Errorf("inUse asked about %s, want %s", id, imgA.ID)
		}
		return []string{"default/web"}
	})
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "default/web") {
		t.Fatalf("remove in use err = %v, want ErrInUse naming the pod", err)
	}
	if _, err := s.Get("app-a:v1"); err != nil {
		t.Fatalf("image gone after a refused remove: %v", err)
	}
	if err := s.Remove("app-a:v1", func(string) []string { return nil }); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if _, err := s.Get("app-a:v1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after remove err = %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(imgA.Layers[1].Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a's own layer still there: %v", err)
	}
	if _, err := os.Stat(imgB.Layers[0].Dir); err != nil {
		t.Errorf("shared layer removed while b uses it: %v", err)
	}
	if err := s.Remove(imgB.ID, nil); err != nil {
		t.Fatalf("remove b: %v", err)
	}
	if got := dirNames(t, s.layersDir()); len(got) != 0 {
		t.Errorf("layers left after removing every image: %v", got)
	}
	if err := s.Remove(imgB.ID, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("second remove err = %v, want ErrNotFound", err)
	}
}

func TestConcurrentImports(t *testing.T) {
	s := openStore(t)
	a, b := sharedImages(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := a
			if i%2 == 1 {
				data = b
			}
			_, errs[i] = s.Import(bytes.NewReader(data), "")
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("import %d: %v", i, err)
		}
	}
	list, err := s.List()
	if err != nil || len(list) != 2 {
		t.Fatalf("List = %d images, %v; want 2", len(list), err)
	}
	if got := dirNames(t, s.layersDir()); len(got) != 3 {
		t.Errorf("layers dir holds %v, want 3 layers", got)
	}
}

func TestImportPicksNamedImageFromMultiImageArchive(t *testing.T) {
	s := openStore(t)
	imgA := imageOf(t, "a", layerOf(t, file("a", "a")))
	imgB := imageOf(t, "b", layerOf(t, file("b", "b")))
	var buf bytes.Buffer
	tagA, tagB := mustTag(t, "app-a:v1"), mustTag(t, "app-b:v1")
	if err := tarball.MultiRefWrite(map[name.Reference]v1.Image{tagA: imgA, tagB: imgB}, &buf); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(bytes.NewReader(buf.Bytes()), ""); err == nil {
		t.Error("importing a two-image archive without a name succeeded")
	}
	got, err := s.Import(bytes.NewReader(buf.Bytes()), "app-b:v1")
	if err != nil || got.Config.Cmd[0] != "b" {
		t.Fatalf("import app-b = %+v, %v", got, err)
	}
}

func BenchmarkImport(b *testing.B) {
	data := dockerSave(b, "bench:v1", imageOf(b, "sh", layerOf(b, dir("bin/"), file("bin/a", strings.Repeat("x", 64<<10)), symlink("bin/b", "a")),
		layerOf(b, dir("etc/"), file("etc/passwd", "root:x:0:0::/root:/bin/sh\n"))))
	for b.Loop() {
		b.StopTimer()
		s := openStore(b)
		b.StartTimer()
		if _, err := s.Import(bytes.NewReader(data), ""); err != nil {
			b.Fatal(err)
		}
	}
}

// TestImportLayerLimit: an image with more layers than one overlay can
// stack (no container could ever run it) is refused before any layer is
// read, naming the image and the limit; MaxLayers itself passes.
func TestImportLayerLimit(t *testing.T) {
	for _, n := range []int{MaxLayers, MaxLayers + 1} {
		s := openStore(t)
		p, err := rootfsImage("unused", hashOf(t, []byte("deep")), "deep:1", nil)
		if err != nil {
			t.Fatal(err)
		}
		opened := 0
		p.layers = make([]pendingLayer, n)
		for i := range p.layers {
			p.layers[i] = pendingLayer{diffID: hashOf(t, []byte(fmt.Sprint(i))), open: func() (io.ReadCloser, error) {
				opened++
				return nil, errors.New("stop here")
			}}
		}
		_, err = s.commit(p)
		if n == MaxLayers {
			if errors.Is(err, ErrTooManyLayers) || opened != 1 {
				t.Errorf("%d layers: commit = %v after opening %d layers, want it to go on to unpacking", n, err, opened)
			}
			continue
		}
		if !errors.Is(err, ErrTooManyLayers) || !strings.Contains(err.Error(), "deep:1") || !strings.Contains(err.Error(), fmt.Sprint(MaxLayers)) {
			t.Errorf("%d layers: commit = %v, want ErrTooManyLayers naming deep:1 and %d", n, err, MaxLayers)
		}
		if opened != 0 {
			t.Errorf("%d layers: %d layers were read before the refusal", n, opened)
		}
		if got := dirNames(t, s.layersDir()); len(got) != 0 {
			t.Errorf("%d layers: the refused import left layers %v", n, got)
		}
	}
}
