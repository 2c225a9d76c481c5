package image

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestBusyboxScriptImage builds the test image with scripts/mkimage-busybox.sh
// and imports it. Outside CI it needs /bin/busybox already installed; under
// CI the script installs busybox-static itself.
func TestBusyboxScriptImage(t *testing.T) {
	if _, err := os.Stat("/bin/busybox"); err != nil && os.Getenv("CI") != "true" {
		t.Skip("/bin/busybox is not installed")
	}
	out := filepath.Join(t.TempDir(), "busybox.tar")
	cmd := exec.Command("bash", "../scripts/mkimage-busybox.sh", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkimage-busybox.sh: %v\n%s", err, msg)
	}
	img, err := openStore(t).ImportPath(out, "busybox")
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if len(img.Names) != 1 || img.Names[0] != "busybox:latest" || len(img.Layers) != 1 {
		t.Fatalf("image = %+v, want one layer named busybox:latest", img)
	}
	root := img.Layers[0].Dir
	if target, err := os.Readlink(filepath.Join(root, "bin/sh")); err != nil || target != "/bin/busybox" {
		t.Errorf("bin/sh -> %q, %v; want /bin/busybox", target, err)
	}
	st, err := os.Stat(filepath.Join(root, "tmp"))
	if err != nil || st.Mode().Perm() != 0o777 || st.Mode()&os.ModeSticky == 0 {
		t.Errorf("tmp mode = %v, %v; want 1777", st.Mode(), err)
	}
	for _, p := range []string{"bin/busybox", "etc/passwd", "etc/group", "proc", "sys", "dev", "root", "var/www"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
			t.Errorf("image lacks %s: %v", p, err)
		}
	}
	bb, err := os.Stat(filepath.Join(root, "bin/busybox"))
	if err != nil || img.Size != bb.Size()+sizeOf(t, root, "etc/passwd")+sizeOf(t, root, "etc/group") {
		t.Errorf("image size %d does not sum busybox, passwd and group", img.Size)
	}
}

// sizeOf returns a file's size.
func sizeOf(t *testing.T, root, p string) int64 {
	t.Helper()
	st, err := os.Stat(filepath.Join(root, p))
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}
