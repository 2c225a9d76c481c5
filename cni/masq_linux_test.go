package cni

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func readForward(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(ipForwardSysctl)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// outsideNetns is an "outside" host on its own veth with a TEST-NET-2
// address (the VM's uplink may use TEST-NET-1); returns its address and the
// host end's.
func outsideNetns(t *testing.T) (string, netip.Addr, netip.Addr) {
	t.Helper()
	path := newNetns(t)
	hostIP, outIP := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	link := addHostLinkPeerIn(t, "po"+randHex(t, 6), ns)
	if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(hostIP, 24))}); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		t.Fatal(err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	eth0, err := h.LinkByName(PodIfName)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.AddrAdd(eth0, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(outIP, 24))}); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(eth0); err != nil {
		t.Fatal(err)
	}
	return path, outIP, hostIP
}

// addHostLinkPeerIn creates a veth whose peer is eth0 in ns; deleted in Cleanup.
func addHostLinkPeerIn(t *testing.T, name string, ns netns.NsHandle) netlink.Link {
	t.Helper()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	link := &netlink.Veth{LinkAttrs: attrs, PeerName: PodIfName, PeerNamespace: netlink.NsFd(ns)}
	if err := netlink.LinkAdd(link); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := deleteLink(name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return link
}

func TestMasqueradeToOutside(t *testing.T) {
	c := testConfig(t)
	c.IPMasq = true
	before := readForward(t)
	t.Cleanup(func() {
		// safety net should the code under test fail to restore
		os.WriteFile(ipForwardSysctl, []byte(before), 0o644)
		deleteMasquerade(c)
	})
	outPath, outIP, hostIP := outsideNetns(t)
	pod := newNetns(t)
	setupPod(t, c, pod, "pod")
	if got := readForward(t); got != "1" {
		t.Fatalf("ip_forward = %s with a pod on a masquerading network, want 1", got)
	}
	addr := listenIn(t, outPath, outIP)
	if got := peerSeen(t, pod, addr); got != hostIP.String() {
		t.Errorf("outside server saw %s, want the host's %s (masquerade)", got, hostIP)
	}
	if err := TeardownPod(c, pod, "pod", netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	if got := readForward(t); got != before {
		t.Errorf("ip_forward = %s after the last pod, want the old %s", got, before)
	}
	if err := RemoveNetwork(c); err != nil {
		t.Fatal(err)
	}
	conn := &nftables.Conn{}
	if _, err := conn.ListTableOfFamily(masqTable(c).Name, nftables.TableFamilyIPv4); err == nil {
		t.Errorf("nftables table %s outlived RemoveNetwork", masqTable(c).Name)
	}
	if err := RemoveNetwork(c); err != nil {
		t.Errorf("second RemoveNetwork: %v", err)
	}
}
