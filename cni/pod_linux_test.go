package cni

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/peapod/peapod/cni/internal/nettest"
	"github.com/peapod/peapod/cni/ipam"
	"github.com/vishvananda/netlink"
)

// listenIn starts a TCP server in the netns at nsPath that writes each
// client's address back and closes (nettest.Serve on an ephemeral port).
func listenIn(t *testing.T, nsPath string, ip netip.Addr) string {
	t.Helper()
	return nettest.Serve(t, nsPath, netip.AddrPortFrom(ip, 0)).String()
}

// peerSeen dials addr, from nsPath if set, and returns the peer IP the server saw.
func peerSeen(t *testing.T, nsPath, addr string) string {
	t.Helper()
	got, err := nettest.PeerSeen(nsPath, netip.MustParseAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestTwoPodsTalkDirectly(t *testing.T) {
	c := testConfig(t)
	nsA, nsB := newNetns(t), newNetns(t)
	a := setupPod(t, c, nsA, "pod-a")
	b := setupPod(t, c, nsB, "pod-b")

	if a.IP == b.IP || !c.Subnet.Contains(a.IP.Addr()) || !c.Subnet.Contains(b.IP.Addr()) {
		t.Fatalf("pod IPs %s and %s: want distinct addresses in %s", a.IP, b.IP, c.Subnet)
	}
	if a.HostVeth == b.HostVeth || len(a.HostVeth) > maxIfNameLen {
		t.Fatalf("host veths %q and %q: want distinct names of at most %d bytes", a.HostVeth, b.HostVeth, maxIfNameLen)
	}
	addrB := listenIn(t, nsB, b.IP.Addr())
	addrA := listenIn(t, nsA, a.IP.Addr())
	if got := peerSeen(t, nsA, addrB); got != a.IP.Addr().String() {
		t.Errorf("server in pod B saw peer %s, want pod A's own %s (no NAT)", got, a.IP.Addr())
	}
	for _, addr := range []string{addrA, addrB} {
		if got := peerSeen(t, "", addr); got != c.Gateway.String() {
			t.Errorf("host → %s: server saw %s, want the bridge address %s", addr, got, c.Gateway)
		}
	}
}

func TestPodsListsPorts(t *testing.T) {
	c := testConfig(t)
	want := map[string]*Result{}
	for _, uid := range []string{"uid-1", "uid-2"} {
		want[uid] = setupPod(t, c, newNetns(t), uid)
	}
	ports, err := Pods(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != len(want) {
		t.Fatalf("Pods = %v, want %d ports", ports, len(want))
	}
	for _, p := range ports {
		r, ok := want[p.PodUID]
		if !ok || r.HostVeth != p.HostVeth || p.MAC == "" {
			t.Errorf("port %+v does not match any pod set up: %v", p, want)
		}
	}
}

func TestTeardownIsCompleteAndIdempotent(t *testing.T) {
	c := testConfig(t)
	nsA, nsB := newNetns(t), newNetns(t)
	a := setupPod(t, c, nsA, "pod-a")
	b := setupPod(t, c, nsB, "pod-b")

	// pod A's lease is released at its address, as rm does from the record
	for i := range 2 { // twice: the second is a no-op
		if err := TeardownPod(c, nsA, "pod-a", a.IP.Addr()); err != nil {
			t.Fatalf("TeardownPod #%d: %v", i+1, err)
		}
	}
	// pod B's netns goes first, as after a crash; teardown must still succeed
	if err := deleteNetns(nsB); err != nil {
		t.Fatal(err)
	}
	// pod B's with a stale address (pod A's, free by now): found by owner
	for i := range 2 {
		if err := TeardownPod(c, nsB, "pod-b", a.IP.Addr()); err != nil {
			t.Fatalf("TeardownPod after netns deletion #%d: %v", i+1, err)
		}
	}
	for _, r := range []*Result{a, b} {
		if linkExists(t, r.HostVeth) {
			t.Errorf("host veth %q still exists after teardown", r.HostVeth)
		}
	}
	assertNoLeases(t, c)
	ports, err := Pods(c)
	if err != nil || len(ports) != 0 {
		t.Fatalf("Pods after teardown = %v, %v; want none", ports, err)
	}
}

func assertNoLeases(t *testing.T, c Config) {
	t.Helper()
	store, err := ipam.Open(c.DataDir, c.Subnet, c.Gateway)
	if err != nil {
		t.Fatal(err)
	}
	leases, err := store.Leases()
	if err != nil {
		t.Fatal(err)
	}
	if len(leases) != 0 {
		t.Fatalf("leases left: %v", leases)
	}
}

func TestSetupRollsBackOnFailure(t *testing.T) {
	c := testConfig(t)
	ns := newNetns(t)
	// an eth0 already in the pod netns makes the veth creation fail
	err := inNetns(ns, func() error {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = PodIfName
		return netlink.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "other"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SetupPod(c, ns, "pod"); err == nil {
		t.Fatal("SetupPod succeeded with eth0 already in the pod netns")
	}
	if linkExists(t, HostVethName(c, "pod")) {
		t.Error("failed SetupPod left its host veth")
	}
	assertNoLeases(t, c)
}

func TestExhaustedNetworkLeavesNothing(t *testing.T) {
	c := testConfig(t)
	c.Subnet = netip.PrefixFrom(c.Subnet.Addr(), 30) // gateway + one pod
	first := setupPod(t, c, newNetns(t), "first")
	_, err := SetupPod(c, newNetns(t), "second")
	if !errors.Is(err, ipam.ErrExhausted) || !strings.Contains(err.Error(), "no free IP in "+c.Subnet.String()) {
		t.Fatalf("second pod on a /30: err = %v, want %q", err, "no free IP in "+c.Subnet.String())
	}
	if linkExists(t, HostVethName(c, "second")) {
		t.Error("refused pod left a host veth")
	}
	if !linkExists(t, first.HostVeth) {
		t.Error("the refusal disturbed the first pod's veth")
	}
}

func TestSetupTwiceRefused(t *testing.T) {
	c := testConfig(t)
	ns := newNetns(t)
	first := setupPod(t, c, ns, "pod")
	_, err := SetupPod(c, ns, "pod")
	if !errors.Is(err, ErrPodNetworkExists) {
		t.Fatalf("second SetupPod: err = %v, want ErrPodNetworkExists", err)
	}
	// The caller says "failed to set up network of pod ns/name"; the
	// error adds the veth and owner, not the caller's words again.
	want := fmt.Sprintf("%v (host veth %q, owner %q)", ErrPodNetworkExists, first.HostVeth, "pod")
	if err.Error() != want {
		t.Errorf("second SetupPod: %q, want %q", err, want)
	}
	if !linkExists(t, first.HostVeth) {
		t.Fatal("the refused second SetupPod removed the pod's veth")
	}
}

func TestBridgeMACPinned(t *testing.T) {
	c := testConfig(t)
	br, err := EnsureBridge(c)
	if err != nil {
		t.Fatal(err)
	}
	before := br.Attrs().HardwareAddr.String()
	for _, uid := range []string{"a", "b", "c"} {
		setupPod(t, c, newNetns(t), uid)
	}
	after, err := netlink.LinkByName(c.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	if got := after.Attrs().HardwareAddr.String(); got != before {
		t.Fatalf("bridge MAC changed from %s to %s as ports were added", before, got)
	}
	b, err := os.ReadFile("/sys/class/net/" + c.Bridge + "/addr_assign_type")
	if err != nil || strings.TrimSpace(string(b)) != netAddrSet {
		t.Fatalf("addr_assign_type = %q, %v; want %s (set)", b, err, netAddrSet)
	}
}
