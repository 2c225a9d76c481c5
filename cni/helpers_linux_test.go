package cni

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/peapod/peapod/internal/testutil"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// randHex returns n random bytes in hex.
func randHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// testConfig is a network of the test's own: a "pt"+random bridge, a random
// /24 inside 10.221.0.0/16 (never peapod0/10.220.0.0/16: a real peapod may
// run) and a temp IPAM dir. The bridge is deleted in Cleanup.
func testConfig(t testing.TB) Config {
	t.Helper()
	testutil.RequireRoot(t)
	b := make([]byte, 1)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	subnet := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 221, b[0], 0}), 24)
	c := Config{
		Bridge:  "pt" + randHex(t, 6),
		Subnet:  subnet,
		Gateway: subnet.Addr().Next(),
		DataDir: filepath.Join(t.TempDir(), "net"),
	}
	t.Cleanup(func() {
		if err := deleteLink(c.Bridge); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return c
}

// newNetns pins a fresh network namespace on a file in a temp dir and
// unpins it in Cleanup (a no-op if the test already did).
func newNetns(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "netns")
	if err := createNetns(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := deleteNetns(path); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return path
}

// createNetns unshares a network namespace on a locked thread and bind-mounts
// it onto path. The thread is never unlocked, so the Go runtime discards it
// rather than reuse a thread sitting in the wrong namespace.
func createNetns(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("failed to create netns pin %q: %w", path, err)
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("failed to unshare netns: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("failed to pin netns on %q: %w", path, err)
			return
		}
		errc <- nil
	}()
	return <-errc
}

// deleteNetns unpins a netns; already gone is success.
func deleteNetns(path string) error {
	err := unix.Unmount(path, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("failed to unpin netns %q: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to remove netns pin %q: %w", path, err)
	}
	return nil
}

// inNetns runs fn on a locked thread inside the netns at path; sockets fn
// creates stay in that netns. The thread is discarded afterwards.
func inNetns(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("failed to open netns %q: %w", path, err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("failed to enter netns %q: %w", path, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// linkExists reports whether a host link of that name exists.
func linkExists(t testing.TB, name string) bool {
	t.Helper()
	_, err := netlink.LinkByName(name)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return false
	}
	if err != nil {
		t.Fatalf("look up %q: %v", name, err)
	}
	return true
}

// setupPod runs SetupPod and registers an idempotent teardown.
func setupPod(t testing.TB, c Config, nsPath, uid string) *Result {
	t.Helper()
	res, err := SetupPod(c, nsPath, uid)
	if err != nil {
		t.Fatalf("SetupPod(%q): %v", uid, err)
	}
	t.Cleanup(func() {
		if err := TeardownPod(c, nsPath, uid); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return res
}
