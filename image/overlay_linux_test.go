package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/testutil"
)

// TestWhiteoutsBecomeOverlayNative imports the two-layer whiteout image as a
// docker archive, an OCI layout tar and an OCI layout dir, checks the
// overlay markers in the second layer and mounts the layers to check the
// merged view.
func TestWhiteoutsBecomeOverlayNative(t *testing.T) {
	testutil.RequireRoot(t)
	img := imageOf(t, "sh", baseLayer(t), changeLayer(t))
	layoutDir := ociLayout(t, "example.com/app:v1", img)
	tests := []struct {
		name     string
		importFn func(s *Store) (*Image, error)
		wantName string
	}{
		{"docker save", func(s *Store) (*Image, error) {
			return s.Import(bytes.NewReader(dockerSave(t, "app:v1", img)), "")
		}, "app:v1"},
		{"oci layout tar", func(s *Store) (*Image, error) {
			return s.Import(bytes.NewReader(tarDir(t, layoutDir)), "")
		}, "example.com/app:v1"},
		{"oci layout dir", func(s *Store) (*Image, error) { return s.ImportPath(layoutDir, "") }, "example.com/app:v1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.importFn(openStore(t))
			if err != nil {
				t.Fatalf("import: %v", err)
			}
			if len(got.Layers) != 2 || len(got.Names) != 1 || got.Names[0] != tc.wantName {
				t.Fatalf("image = %+v, want 2 layers named %s", got, tc.wantName)
			}
			if got.Config.WorkingDir != "/data" || got.Config.User != "65534" {
				t.Errorf("config = %+v", got.Config)
			}
			checkOverlayMarkers(t, got.Layers[1].Dir)
			checkMergedView(t, got)
		})
	}
}

// checkOverlayMarkers asserts etc/gone is a 0:0 char device and data/ is opaque.
func checkOverlayMarkers(t *testing.T, upper string) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(upper, "etc/gone"), &st); err != nil {
		t.Fatalf("whiteout etc/gone: %v", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("etc/gone mode %o rdev %d, want a 0:0 character device", st.Mode, st.Rdev)
	}
	if _, err := os.Lstat(filepath.Join(upper, "etc/.wh.gone")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the .wh. entry itself was written: %v", err)
	}
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(filepath.Join(upper, "data"), overlayOpaqueXattr, buf)
	if err != nil {
		t.Errorf("data has no opaque xattr: %v", err)
	} else if string(buf[:n]) != "y" {
		t.Errorf("data opaque xattr = %q, want y", buf[:n])
	}
}

// checkMergedView mounts the layers read-only and checks what a container sees.
func checkMergedView(t *testing.T, img *Image) {
	t.Helper()
	target := t.TempDir()
	// overlayfs wants the topmost lower first.
	lowers := []string{img.Layers[1].Dir, img.Layers[0].Dir}
	if err := unix.Mount("overlay", target, "overlay", unix.MS_RDONLY, "lowerdir="+strings.Join(lowers, ":")); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			t.Errorf("unmount overlay: %v", err)
		}
	})
	for _, gone := range []string{"etc/gone", "data/old", "data/sub"} {
		if _, err := os.Lstat(filepath.Join(target, gone)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("merged view still has %s: %v", gone, err)
		}
	}
	for p, want := range map[string]string{"etc/keep": "keep", "data/new": "new"} {
		if got, err := os.ReadFile(filepath.Join(target, p)); err != nil || string(got) != want {
			t.Errorf("merged %s = %q, %v; want %q", p, got, err, want)
		}
	}
}

// TestUnpackKeepsOwnershipDevicesAndXattrs checks the root-only attributes.
func TestUnpackKeepsOwnershipDevicesAndXattrs(t *testing.T) {
	testutil.RequireRoot(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdrs := []*tar.Header{
		{Name: "f", Typeflag: tar.TypeReg, Mode: 0o4755, Uid: 1000, Gid: 1001, ModTime: testMtime,
			PAXRecords: map[string]string{"SCHILY.xattr.user.note": "hi", "SCHILY.xattr.trusted.overlay.redirect": "/x"}},
		{Name: "null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: testMtime},
		{Name: "fifo", Typeflag: tar.TypeFifo, Mode: 0o600, Uid: 7, ModTime: testMtime},
		{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd", Uid: 5, Gid: 6, ModTime: testMtime},
	}
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := unpackLayer(dir, &buf, true); err != nil {
		t.Fatalf("unpack: %v", err)
	}
	tests := []struct {
		name     string
		mode     uint32
		uid, gid uint32
		rdev     uint64
	}{
		{"f", unix.S_IFREG | 0o4755, 1000, 1001, 0},
		{"null", unix.S_IFCHR | 0o666, 0, 0, unix.Mkdev(1, 3)},
		{"fifo", unix.S_IFIFO | 0o600, 7, 0, 0},
		{"link", unix.S_IFLNK | 0o777, 5, 6, 0},
	}
	for _, tc := range tests {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, tc.name), &st); err != nil {
			t.Fatalf("lstat %s: %v", tc.name, err)
		}
		if st.Mode != tc.mode || st.Uid != tc.uid || st.Gid != tc.gid || st.Rdev != tc.rdev || st.Mtim.Sec != testMtime.Unix() {
			t.Errorf("%s: mode %o uid %d gid %d rdev %d mtime %d; want %o %d %d %d %d",
				tc.name, st.Mode, st.Uid, st.Gid, st.Rdev, st.Mtim.Sec, tc.mode, tc.uid, tc.gid, tc.rdev, testMtime.Unix())
		}
	}
	val := make([]byte, 16)
	if n, err := unix.Lgetxattr(filepath.Join(dir, "f"), "user.note", val); err != nil {
		t.Errorf("user.note missing: %v", err)
	} else if string(val[:n]) != "hi" {
		t.Errorf("user.note = %q, want hi", val[:n])
	}
	if _, err := unix.Lgetxattr(filepath.Join(dir, "f"), "trusted.overlay.redirect", val); !errors.Is(err, unix.ENODATA) {
		t.Errorf("a layer set trusted.overlay.redirect (err %v); it must be dropped", err)
	}
}
