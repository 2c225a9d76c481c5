package containerinit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/testutil"
	"github.com/peapod/peapod/runtime/spec"
)

// deepLowers makes n layer directories named like the image store's
// (64 hex digits) under a long temp path, top first: each holds
// layers/<i> and a "shadow" file saying its index, the bottom one
// "bottom", the top one "top".
func deepLowers(t *testing.T, n int) []string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "images", "layers")
	lowers := make([]string, n)
	for i := 0; i < n; i++ {
		l := filepath.Join(dir, fmt.Sprintf("%064x", i))
		files := map[string]string{"shadow": fmt.Sprint(i), fmt.Sprintf("layers/%d", i): "x"}
		if i == 0 {
			files["bottom"] = "bottom"
		}
		if i == n-1 {
			files["top"] = "top"
		}
		for name, body := range files {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(l, name)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(l, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		lowers[n-1-i] = l
	}
	return lowers
}

// inPrivateMountNS runs fn on a thread with its own mount namespace and
// working directory; every mount fn made goes away with the namespace.
func inPrivateMountNS(t *testing.T, fn func() error) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread's working directory stays its own.
		runtime.LockOSThread()
		errc <- withPrivateMountNS(fn)
	}()
	return <-errc
}

// withPrivateMountNS runs fn in a new mount namespace and returns the
// thread to the old one: the thread may be the main one, which the Go
// runtime parks instead of ending, and /proc/self/mountinfo is the main
// thread's view, which other tests read.
func withPrivateMountNS(fn func() error) error {
	old, err := os.Open("/proc/thread-self/ns/mnt")
	if err != nil {
		return err
	}
	defer old.Close()
	// CLONE_FS too: the thread alone then owns its root and working
	// directory, which setns into a mount namespace requires.
	if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	err = func() error {
		if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("make / rslave: %w", err)
		}
		return fn()
	}()
	if serr := unix.Setns(int(old.Fd()), unix.CLONE_NEWNS); serr != nil {
		panic(fmt.Sprintf("cannot return the thread to its mount namespace: %v", serr))
	}
	return err
}

// TestMountOverlayDeep mounts 60, 128 and 500 (overlayfs's limit) layers
// with paths as long as the store's, by each method that takes them, and
// reads the bottom and top layers through the merged view. Plain mount(2)
// data, the only method before, cannot carry even 60 of them.
func TestMountOverlayDeep(t *testing.T) {
	testutil.RequireRoot(t)
	nsBefore, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if after, _ := os.Readlink("/proc/self/ns/mnt"); after != nsBefore {
			t.Errorf("the process's main thread was left in mount namespace %s, not %s", after, nsBefore)
		}
	})
	for _, n := range []int{60, 128, MaxOverlayLowers} {
		lowers := deepLowers(t, n)
		for _, m := range []overlayMethod{overlayData, overlayLowerdirPlus, overlayFdNames} {
			t.Run(fmt.Sprintf("%d-layers/%s", n, m), func(t *testing.T) {
				if m == overlayLowerdirPlus && !kernelAtLeast(6, 8) {
					t.Skip("lowerdir+ needs Linux 6.8")
				}
				dir := t.TempDir()
				r := spec.Rootfs{Lowers: lowers, Upper: filepath.Join(dir, "upper"), Work: filepath.Join(dir, "work")}
				target := filepath.Join(dir, "merged")
				for _, d := range []string{r.Upper, r.Work, target} {
					if err := os.Mkdir(d, 0o755); err != nil {
						t.Fatal(err)
					}
				}
				err := inPrivateMountNS(t, func() error {
					if err := m.mount(target, r); err != nil {
						return err
					}
					return checkDeepView(target, n)
				})
				if m == overlayData {
					if err == nil || !strings.Contains(err.Error(), "more than mount(2) accepts") {
						t.Fatalf("mount(2) data with %d layers: %v, want the page-size refusal", n, err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// checkDeepView reads the bottom and top layers' files, the top's copy of a
// file every layer has, and counts one file per layer.
func checkDeepView(target string, n int) error {
	for name, want := range map[string]string{"bottom": "bottom", "top": "top", "shadow": fmt.Sprint(n - 1)} {
		got, err := os.ReadFile(filepath.Join(target, name))
		if err != nil || string(got) != want {
			return fmt.Errorf("merged %s = %q, %v; want %q", name, got, err, want)
		}
	}
	entries, err := os.ReadDir(filepath.Join(target, "layers"))
	if err != nil || len(entries) != n {
		return fmt.Errorf("merged layers/ has %d entries (%v), want %d", len(entries), err, n)
	}
	return nil
}

// TestMountOverlayRefusesTooDeep: one layer past overlayfs's limit is
// refused before the kernel is asked, naming the limit.
func TestMountOverlayRefusesTooDeep(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	r := spec.Rootfs{Lowers: layerPaths(dir, MaxOverlayLowers+1), Upper: filepath.Join(dir, "upper"), Work: filepath.Join(dir, "work")}
	err := mountOverlay(filepath.Join(dir, "merged"), r)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprint(MaxOverlayLowers)) {
		t.Fatalf("mountOverlay of %d layers = %v, want a refusal naming %d", len(r.Lowers), err, MaxOverlayLowers)
	}
	if _, err := os.Stat(r.Upper); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused mount created its upper dir: %v", err)
	}
}

// TestContainerDeepImage runs a container over 128 layers through the
// init stage (busybox is the bottom layer) and reads the bottom and top.
func TestContainerDeepImage(t *testing.T) {
	testutil.RequireRoot(t)
	lowers := deepLowers(t, 127)
	c := newTestContainer(t, makeBusyboxLower(t, t.TempDir()))
	c.Rootfs.Lowers = append(lowers, c.Rootfs.Lowers...)
	out := runScript(t, c, "echo $(cat /top) $(cat /bottom) $(cat /shadow) $(ls /layers | wc -l); grep ' / / ' /proc/self/mountinfo")
	first, mountinfo, _ := strings.Cut(out, "\n")
	if want := "top bottom 126 127"; first != want {
		t.Errorf("container read %q, want %q", first, want)
	}
	t.Logf("root mount: %.300s", mountinfo)
}
