package cni

import (
	"crypto/rand"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/peapod/peapod/cni/internal/nettest"
	"github.com/peapod/peapod/internal/testutil"
)

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
		if err := nettest.DeleteBridge(c.Bridge); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return c
}

// The namespace and link helpers are shared with the other network test
// packages (cni/internal/nettest); these names keep this package's tests short.
var (
	newNetns    = nettest.NewNetns
	createNetns = nettest.CreateNetns
	deleteNetns = nettest.DeleteNetns
	inNetns     = nettest.InNetns
	linkExists  = nettest.LinkExists
	randHex     = nettest.RandHex
)

// setupPod runs SetupPod and registers an idempotent teardown.
func setupPod(t testing.TB, c Config, nsPath, uid string) *Result {
	t.Helper()
	res, err := SetupPod(c, nsPath, uid)
	if err != nil {
		t.Fatalf("SetupPod(%q): %v", uid, err)
	}
	t.Cleanup(func() {
		if err := TeardownPod(c, nsPath, uid, netip.Addr{}); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return res
}
