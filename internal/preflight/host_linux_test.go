package preflight

import (
	"net"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/peapod/peapod/internal/testutil"
)

// TestLinuxHost runs every check on this machine: a host that runs the
// root tests runs pods, so nothing may FAIL; and the probes leave nothing
// behind on the host (their bridge and veth names do not exist after).
func TestLinuxHost(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	o := Options{Root: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run"), CgroupDriver: "auto",
		Network: Network{Bridge: "ppchk" + testutil.RandHex(t, 4), Subnet: testutil.NewSubnets("10.228.0.0/16").Pick(t), DataDir: filepath.Join(dir, "root/net/x")}}
	rs := Run(LinuxHost{}, o)
	for _, r := range rs {
		t.Logf("%-5s %-22s %s %s", r.Level, r.Check, r.Detail, r.Fix)
		if r.Level == Fail {
			t.Errorf("%s fails on this host: %s (fix: %s)", r.Check, r.Detail, r.Fix)
		}
	}
	if len(rs) < 20 {
		t.Errorf("only %d results", len(rs))
	}
	for _, name := range []string{"ppcheck0", "ppcheck1", "ppcheck2", o.Network.Bridge} {
		if _, err := net.InterfaceByName(name); err == nil {
			t.Errorf("link %s exists on the host after the check", name)
		}
	}
}

// TestLinuxHostSubnetOverlap checks that a subnet overlapping a host
// address (127.0.0.1/8 on lo) is a FAIL naming it.
func TestLinuxHostSubnetOverlap(t *testing.T) {
	testutil.RequireRoot(t)
	err := LinuxHost{}.SubnetOverlap(Network{Bridge: "ppchk" + testutil.RandHex(t, 4), Subnet: netip.MustParsePrefix("127.1.0.0/24"), DataDir: t.TempDir()})
	if err == nil {
		t.Fatal("127.1.0.0/24 overlaps nothing, want an overlap with lo's 127.0.0.1/8")
	}
	t.Log(err)
}
