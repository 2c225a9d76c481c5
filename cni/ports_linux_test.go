package cni

import (
	"errors"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/peapod/peapod/cni/internal/nettest"
)

// hostPortConfig is a network of its own in block 0 of 10.225.0.0/16, with
// masquerade on so forwarding is on while a pod exists.
func hostPortConfig(t *testing.T) Config {
	t.Helper()
	subnet := nettest.Subnet(t, nettest.BlockCNI)
	c := Config{
		Bridge:  "ph" + nettest.RandHex(t, 6),
		Subnet:  subnet,
		Gateway: subnet.Addr().Next(),
		DataDir: filepath.Join(t.TempDir(), "net"),
		IPMasq:  true,
	}
	t.Cleanup(func() {
		if err := nettest.DeleteBridge(c.Bridge); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return c
}

// hasTable reports whether the host has an IPv4 nftables table of that name.
func hasTable(t *testing.T, name string) bool {
	t.Helper()
	tables, err := (&nftables.Conn{}).ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if tb.Name == name {
			return true
		}
	}
	return false
}

// randomHostPort is a port in 20000..29999, below the ephemeral range, so
// the test's DNAT is unlikely to catch anyone else's traffic.
func randomHostPort(t *testing.T) uint16 {
	b := nettest.RandHex(t, 2)
	var n uint16
	for _, c := range b {
		n = n*16 + uint16(strings.IndexRune("0123456789abcdef", c))
	}
	return 20000 + n%10000
}

func TestHostPortMapping(t *testing.T) {
	c := hostPortConfig(t)
	peer := nettest.NewPeer(t, nettest.Subnet(t, nettest.BlockCNI))
	nsA, nsB := nettest.NewNetns(t), nettest.NewNetns(t)
	a := setupPod(t, c, nsA, "pod-a")
	b := setupPod(t, c, nsB, "pod-b")
	nettest.Serve(t, nsA, netip.AddrPortFrom(a.IP.Addr(), 8080))
	hostPort := randomHostPort(t)
	ports := []PortMapping{{HostPort: hostPort, ContainerPort: 8080, Protocol: "TCP"}}
	if err := MapPorts(c, "pod-a", a.IP.Addr(), ports); err != nil {
		t.Fatalf("MapPorts: %v", err)
	}
	t.Cleanup(func() {
		if err := UnmapPorts(c, "pod-a"); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})

	for _, tc := range []struct {
		name   string
		from   string     // netns to dial from; "" = the host
		to     netip.Addr // host address dialled
		wantIP netip.Addr // client address the pod must see
	}{
		{"from another netns", peer.Netns, peer.HostIP, peer.NsIP},
		{"from the host to its own address", "", peer.HostIP, peer.HostIP},
		{"from the host to 127.0.0.1", "", netip.MustParseAddr("127.0.0.1"), c.Gateway},
		{"from another pod (hairpin)", nsB, peer.HostIP, c.Gateway},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := nettest.PeerSeen(tc.from, netip.AddrPortFrom(tc.to, hostPort))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.wantIP.String() {
				out, _ := exec.Command("nft", "list", "table", "ip", portsTable(c).Name).CombinedOutput()
				t.Fatalf("pod saw client %s, want %s\n%s", got, tc.wantIP, out)
			}
		})
	}

	err := MapPorts(c, "pod-b", b.IP.Addr(), []PortMapping{{HostPort: hostPort, ContainerPort: 9090}})
	if !errors.Is(err, ErrPortAllocated) || !strings.Contains(err.Error(), `"pod-a"`) {
		t.Fatalf("second pod on the same port: err = %v, want ErrPortAllocated naming pod-a", err)
	}

	table := portsTable(c).Name
	if !hasTable(t, table) {
		t.Fatalf("table %s missing while a port is mapped", table)
	}
	for i := range 2 { // the second is a no-op
		if err := UnmapPorts(c, "pod-a"); err != nil {
			t.Fatalf("UnmapPorts #%d: %v", i+1, err)
		}
	}
	if hasTable(t, table) {
		t.Fatalf("table %s outlived the last mapping", table)
	}
	if _, err := nettest.PeerSeen(peer.Netns, netip.AddrPortFrom(peer.HostIP, hostPort)); err == nil {
		t.Fatal("the host port still answers after UnmapPorts")
	}
	// the freed port can now go to pod B
	if err := MapPorts(c, "pod-b", b.IP.Addr(), []PortMapping{{HostPort: hostPort, ContainerPort: 9090}}); err != nil {
		t.Fatalf("MapPorts of the freed port: %v", err)
	}
	if err := TeardownPod(c, nsB, "pod-b", netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	if hasTable(t, table) {
		t.Fatalf("TeardownPod left table %s", table)
	}
}
