package cni

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/peapod/peapod/cni/internal/nettest"
	"github.com/peapod/peapod/internal/testutil"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// controlPayload ends every exchange: the datagram a pod sends through an
// ordinary socket after its crafted frames. Sent from the same CPU, it
// arrives after them, so once it is in, whatever of them would have come
// has come.
const controlPayload = "control"

// udpFrame is an Ethernet frame carrying an IPv4/UDP datagram, any header
// field as the caller wants it (UDP checksum 0: none, valid over IPv4).
func udpFrame(dstMAC, srcMAC net.HardwareAddr, src, dst netip.Addr, dport uint16, payload string) []byte {
	ip := make([]byte, 20, 28+len(payload))
	ip[0] = 0x45 // version 4, 5 words
	binary.BigEndian.PutUint16(ip[2:], uint16(28+len(payload)))
	ip[8], ip[9] = 64, unix.IPPROTO_UDP
	copy(ip[12:], src.AsSlice())
	copy(ip[16:], dst.AsSlice())
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	udp := binary.BigEndian.AppendUint16(nil, 40000)
	udp = binary.BigEndian.AppendUint16(udp, dport)
	udp = binary.BigEndian.AppendUint16(udp, uint16(8+len(payload)))
	udp = append(udp, 0, 0)
	return ethFrame(dstMAC, srcMAC, unix.ETH_P_IP, append(append(ip, udp...), payload...))
}

// garpFrame is a gratuitous ARP request: sender and target IP both ip, from
// srcMAC, broadcast.
func garpFrame(srcMAC net.HardwareAddr, ip netip.Addr) []byte {
	arp := []byte{0, 1, 8, 0, 6, 4, 0, 1} // Ethernet, IPv4, request
	arp = append(append(arp, srcMAC...), ip.AsSlice()...)
	arp = append(append(arp, make([]byte, 6)...), ip.AsSlice()...)
	broadcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	return ethFrame(broadcast, srcMAC, unix.ETH_P_ARP, arp)
}

// ethFrame prepends an Ethernet header.
func ethFrame(dst, src net.HardwareAddr, etherType uint16, payload []byte) []byte {
	f := append(append([]byte{}, dst...), src...)
	return append(binary.BigEndian.AppendUint16(f, etherType), payload...)
}

// mustMAC parses a MAC the code under test reported.
func mustMAC(t *testing.T, s string) net.HardwareAddr {
	t.Helper()
	mac, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return mac
}

// sendFromPod writes frames as they are onto eth0 in the netns at nsPath
// (a raw packet socket: what CAP_NET_RAW allows every pod), then sends
// controlPayload to each of control through an ordinary UDP socket. The
// thread is bound to one CPU so the frames and datagrams are queued to the
// peers in the order sent.
func sendFromPod(t *testing.T, nsPath string, frames [][]byte, control ...netip.AddrPort) {
	t.Helper()
	err := inNetns(nsPath, func() error {
		var cpus unix.CPUSet
		if err := unix.SchedGetaffinity(0, &cpus); err != nil {
			return err
		}
		for cpu := 0; ; cpu++ {
			if cpus.IsSet(cpu) {
				cpus.Zero()
				cpus.Set(cpu)
				break
			}
		}
		if err := unix.SchedSetaffinity(0, &cpus); err != nil {
			return err
		}
		eth0, err := net.InterfaceByName(PodIfName)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		for _, f := range frames {
			to := &unix.SockaddrLinklayer{Ifindex: eth0.Index, Protocol: binary.NativeEndian.Uint16(f[12:14])}
			if err := unix.Sendto(fd, f, 0, to); err != nil {
				return fmt.Errorf("send frame: %w", err)
			}
		}
		for _, to := range control {
			conn, err := net.Dial("udp4", to.String())
			if err != nil {
				return err
			}
			_, err = conn.Write([]byte(controlPayload))
			conn.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("send from %s: %v", nsPath, err)
	}
}

// listenUDP opens a UDP socket on addr in the netns at nsPath ("" = the
// calling thread's), closed in Cleanup.
func listenUDP(t *testing.T, nsPath string, addr netip.AddrPort) *net.UDPConn {
	t.Helper()
	var conn *net.UDPConn
	listen := func() error {
		var err error
		conn, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
		return err
	}
	var err error
	if nsPath == "" {
		err = listen()
	} else {
		err = inNetns(nsPath, listen)
	}
	if err != nil {
		t.Fatalf("listen on udp %s in %q: %v", addr, nsPath, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// udpPort is the port a listenUDP socket got.
func udpPort(conn *net.UDPConn) uint16 { return conn.LocalAddr().(*net.UDPAddr).AddrPort().Port() }

// receiveUntilControl returns the payloads conn received, in order, up to and
// including controlPayload.
func receiveUntilControl(t *testing.T, conn *net.UDPConn) []string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []string
	buf := make([]byte, 1500)
	for !slices.Contains(got, controlPayload) {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("%s: got %q and then: %v", conn.LocalAddr(), got, err)
		}
		got = append(got, string(buf[:n]))
	}
	return got
}

// readSysctl reads a sysctl file, trimmed.
func readSysctl(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestHostLoopbackUnreachableFromPods is defect 1 of issue 9 (the
// CVE-2020-8558 class): with a host port mapped, route_localnet is on on the
// bridge, and a pod that addresses a frame to the bridge's MAC and
// 127.0.0.1 must still not reach a service on the host's loopback.
func TestHostLoopbackUnreachableFromPods(t *testing.T) {
	nettest.EnterNewNetns(t) // this test's host, whose loopback is the target
	c := hostPortConfig(t)
	c.IPMasq = false // no forwarding needed: the host's own 127.0.0.1 and the pod
	ns := newNetns(t)
	pod := setupPod(t, c, ns, "pod")
	sysctl := routeLocalnetSysctl(c.Bridge)
	before := readSysctl(t, sysctl)
	if before != "0" {
		t.Fatalf("route_localnet of a new bridge = %s, want 0", before)
	}
	// on the host, all addresses: 127.0.0.1 for the attack, the gateway for
	// the control datagram
	service := listenUDP(t, "", netip.MustParseAddrPort("0.0.0.0:0"))
	nettest.Serve(t, ns, netip.AddrPortFrom(pod.IP.Addr(), 8080))
	hostPort := randomHostPort(t)
	if err := MapPorts(c, "pod", pod.IP.Addr(), []PortMapping{{HostPort: hostPort, ContainerPort: 8080}}); err != nil {
		t.Fatalf("MapPorts: %v", err)
	}
	t.Cleanup(func() {
		if err := UnmapPorts(c, "pod"); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if got := readSysctl(t, sysctl); got != "1" {
		t.Fatalf("route_localnet = %s with a host port mapped, want 1 (127.0.0.1:hostPort needs it)", got)
	}

	loopback := netip.MustParseAddr("127.0.0.1")
	attack := udpFrame(mustMAC(t, pod.BridgeMAC), mustMAC(t, pod.MAC), pod.IP.Addr(), loopback, udpPort(service), "to-loopback")
	sendFromPod(t, ns, [][]byte{attack}, netip.AddrPortFrom(c.Gateway, udpPort(service)))
	if got := receiveUntilControl(t, service); slices.Contains(got, "to-loopback") {
		out, _ := exec.Command("nft", "list", "table", "ip", portsTable(c).Name).CombinedOutput()
		t.Fatalf("a frame from the pod to 127.0.0.1 reached the host's loopback service (got %q)\n%s", got, out)
	}
	if got, err := nettest.PeerSeen("", netip.AddrPortFrom(loopback, hostPort)); err != nil || got != c.Gateway.String() {
		t.Fatalf("host → 127.0.0.1:%d: pod saw %q, %v; want %s", hostPort, got, err, c.Gateway)
	}

	if err := UnmapPorts(c, "pod"); err != nil {
		t.Fatal(err)
	}
	if got := readSysctl(t, sysctl); got != before {
		t.Fatalf("route_localnet = %s after the last mapping went, want %s as before", got, before)
	}
}

// TestPodsCannotSpoof is defect 10 of issue 9: a pod (CAP_NET_RAW is a
// default capability) sends frames with a neighbour's, the gateway's and an
// outside address as IPv4 source, with a neighbour's MAC, and a gratuitous
// ARP claiming a neighbour's address. None may reach a peer or change its
// ARP table; the pod's own traffic still flows; nothing is left in nftables
// once the pods are gone.
func TestPodsCannotSpoof(t *testing.T) {
	c := testConfig(t)
	if _, err := EnsureBridge(c); err != nil {
		t.Fatal(err)
	}
	roots := testutil.Roots{NftTablePrefix: "peapod-" + c.Bridge}
	before := testutil.TakeSnapshot(t, roots)
	nsA, nsB, nsC := newNetns(t), newNetns(t), newNetns(t)
	a, b, peer := setupPod(t, c, nsA, "pod-a"), setupPod(t, c, nsB, "pod-b"), setupPod(t, c, nsC, "pod-c")
	toB := listenUDP(t, nsB, netip.AddrPortFrom(b.IP.Addr(), 0))
	toC := listenUDP(t, nsC, netip.AddrPortFrom(peer.IP.Addr(), 0))
	addrB := netip.AddrPortFrom(b.IP.Addr(), udpPort(toB))
	addrC := netip.AddrPortFrom(peer.IP.Addr(), udpPort(toC))

	// C talks to B first, so C has a neighbour entry for B to be poisoned
	sendFromPod(t, nsC, nil, addrB)
	receiveUntilControl(t, toB)
	wantMAC := mustMAC(t, b.MAC)
	if got := neighbourMAC(t, nsC, b.IP.Addr()); got.String() != wantMAC.String() {
		t.Fatalf("pod C's neighbour entry for %s = %s, want B's %s", b.IP.Addr(), got, wantMAC)
	}

	macA, macB, macC := mustMAC(t, a.MAC), mustMAC(t, b.MAC), mustMAC(t, peer.MAC)
	frame := func(src net.HardwareAddr, ip netip.Addr, payload string) []byte {
		return udpFrame(macB, src, ip, b.IP.Addr(), addrB.Port(), payload)
	}
	spoofed := [][]byte{
		frame(macA, peer.IP.Addr(), "as pod C"),
		frame(macA, c.Gateway, "as the gateway"),
		frame(macA, netip.MustParseAddr("8.8.8.8"), "as 8.8.8.8"),
		frame(macC, a.IP.Addr(), "with pod C's MAC"),
		garpFrame(macA, b.IP.Addr()),
	}
	sendFromPod(t, nsA, spoofed, addrB, addrC)
	if got := receiveUntilControl(t, toB); !slices.Equal(got, []string{controlPayload}) {
		t.Errorf("pod B received %q, want only pod A's own %q", got, controlPayload)
	}
	receiveUntilControl(t, toC) // C has processed the gratuitous ARP too
	if got := neighbourMAC(t, nsC, b.IP.Addr()); got.String() != wantMAC.String() {
		t.Errorf("after pod A's gratuitous ARP, pod C's neighbour entry for %s = %s, want B's %s", b.IP.Addr(), got, wantMAC)
	}
	if got := peerSeen(t, nsA, listenIn(t, nsB, b.IP.Addr())); got != a.IP.Addr().String() {
		t.Errorf("pod A → pod B over TCP: B saw %s, want %s", got, a.IP.Addr())
	}

	for _, p := range []struct{ ns, uid string }{{nsA, "pod-a"}, {nsB, "pod-b"}, {nsC, "pod-c"}} {
		if err := TeardownPod(c, p.ns, p.uid, netip.Addr{}); err != nil {
			t.Fatal(err)
		}
	}
	var leaks []string
	for _, line := range before.Diff(testutil.TakeSnapshot(t, roots)) {
		if strings.HasPrefix(line[1:], " "+testutil.SectionNftables+":") {
			leaks = append(leaks, line)
		}
	}
	if len(leaks) > 0 {
		t.Errorf("nftables after the pods were removed (+ appeared, - disappeared):\n%s", strings.Join(leaks, "\n"))
	}
}

// neighbourMAC is the MAC of ip in the netns' neighbour table; nil if none.
func neighbourMAC(t *testing.T, nsPath string, ip netip.Addr) net.HardwareAddr {
	t.Helper()
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	neighs, err := h.NeighList(0, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range neighs {
		if n.IP.Equal(net.IP(ip.AsSlice())) {
			return n.HardwareAddr
		}
	}
	return nil
}

// hasAntispoofTable reports whether the netdev table guarding hostVeth exists.
func hasAntispoofTable(t *testing.T, c Config, hostVeth string) bool {
	t.Helper()
	_, err := (&nftables.Conn{}).ListTableOfFamily(antispoofTable(c, hostVeth).Name, nftables.TableFamilyNetdev)
	if errors.Is(err, unix.ENOENT) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

// TestGCRemovesOrphanAntispoofTable: a teardown killed between deleting the
// veth and its table leaves a table the kernel keeps (recent kernels keep
// a netdev chain whose device is gone); gc removes it once the pod is
// gone, not while the pod still holds its lease (it may be attaching again).
func TestGCRemovesOrphanAntispoofTable(t *testing.T) {
	c := testConfig(t)
	res := setupPod(t, c, newNetns(t), "pod")
	if !hasAntispoofTable(t, c, res.HostVeth) {
		t.Fatalf("no anti-spoofing table for %s after SetupPod", res.HostVeth)
	}
	if err := deleteLink(res.HostVeth); err != nil {
		t.Fatal(err)
	}
	removed, err := GC(c, func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 0 || !hasAntispoofTable(t, c, res.HostVeth) {
		t.Fatalf("GC of a kept pod holding its lease removed %q; table there: %v", removed, hasAntispoofTable(t, c, res.HostVeth))
	}
	removed, err = GC(c, func(string) bool { return false })
	if err != nil {
		t.Fatal(err)
	}
	if !hasAntispoofTable(t, c, res.HostVeth) && slices.ContainsFunc(removed, func(l string) bool { return strings.Contains(l, "anti-spoofing") }) {
		return
	}
	t.Fatalf("GC removed %q; anti-spoofing table of %s still there: %v", removed, res.HostVeth, hasAntispoofTable(t, c, res.HostVeth))
}

// TestAttachReplacesStaleAntispoofTable: a pod set up again after a
// teardown that deleted its veth but not its table (a crash between the two)
// gets rules for its new MAC, not the old ones, which would drop everything.
func TestAttachReplacesStaleAntispoofTable(t *testing.T) {
	c := testConfig(t)
	ns := newNetns(t)
	old := setupPod(t, c, ns, "pod")
	if err := deleteLink(old.HostVeth); err != nil {
		t.Fatal(err)
	}
	if !hasAntispoofTable(t, c, old.HostVeth) {
		t.Fatalf("the table of %s went with the veth: nothing stale to replace", old.HostVeth)
	}
	res, err := SetupPod(c, ns, "pod")
	if err != nil {
		t.Fatalf("SetupPod over a stale anti-spoofing table: %v", err)
	}
	if res.MAC == old.MAC {
		t.Fatalf("the pod got its old MAC %s again", res.MAC)
	}
	// from a new pod: the host's neighbour entry for the address still names
	// the old MAC, and would take a second to be probed again
	peerNS := newNetns(t)
	peer := setupPod(t, c, peerNS, "peer")
	got, err := nettest.PeerSeen(peerNS, nettest.Serve(t, ns, netip.AddrPortFrom(res.IP.Addr(), 0)))
	if err != nil || got != peer.IP.Addr().String() {
		t.Errorf("another pod → the pod set up again: pod saw %q, %v; want %s", got, err, peer.IP.Addr())
	}
}

// TestDisableBridgePort: teardown disables the pod's bridge port before its
// anti-spoofing table and veth go side by side, so the port must really be
// disabled (a bridge drops what arrives on such a port).
func TestDisableBridgePort(t *testing.T) {
	c := testConfig(t)
	res := setupPod(t, c, newNetns(t), "pod")
	state := "/sys/class/net/" + res.HostVeth + "/brport/state"
	// The port turns forwarding once the kernel's linkwatch has seen the
	// veth's carrier, which it may batch for up to a second after setup
	// returns; sysfs is where that shows, and it sends no event a test can
	// wait on portably, so poll it.
	deadline := time.Now().Add(5 * time.Second)
	for got := readSysctl(t, state); got != "3"; got = readSysctl(t, state) { // BR_STATE_FORWARDING
		if time.Now().After(deadline) {
			t.Fatalf("%s = %s 5 s after setup, want 3 (forwarding)", state, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	link, err := netlink.LinkByName(res.HostVeth)
	if err != nil {
		t.Fatal(err)
	}
	if err := disableBridgePort(link); err != nil {
		t.Fatal(err)
	}
	if got := readSysctl(t, state); got != "0" {
		t.Fatalf("%s = %s after disableBridgePort, want 0 (disabled)", state, got)
	}
}

// TestVerifyNeedsAntispoof: CHECK reports an attachment whose anti-spoofing
// table is gone.
func TestVerifyNeedsAntispoof(t *testing.T) {
	c := testConfig(t)
	ns := newNetns(t)
	res := setupPod(t, c, ns, "pod")
	a := Attachment{Owner: "pod", NetnsPath: ns}
	if err := Verify(c, a, res.IP); err != nil {
		t.Fatalf("Verify of a fresh attachment: %v", err)
	}
	if err := deleteAntispoof(c, res.HostVeth); err != nil {
		t.Fatal(err)
	}
	if err := Verify(c, a, res.IP); !errors.Is(err, ErrAttachmentBroken) || !strings.Contains(err.Error(), "anti-spoofing") {
		t.Fatalf("Verify without the anti-spoofing table: %v, want ErrAttachmentBroken naming it", err)
	}
}

// TestForwardingSharedAcrossRoots is defect 4 of issue 9: ip_forward is one
// switch for the host; root A's last pod must not turn it off under root B's
// pods, and B's last pod puts back the value from before A's first. A holder
// whose root is gone does not keep it on.
func TestForwardingSharedAcrossRoots(t *testing.T) {
	nettest.EnterNewNetns(t) // this test's host, whose ip_forward it may set
	const before = "0"
	if err := os.WriteFile(ipForwardSysctl, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	registry, err := forwardRegistryFile()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(registry) })      // should the code under test leave it
	ca, cb := hostPortConfig(t), hostPortConfig(t) // two roots: own bridge and data dir each
	nsA, nsB := newNetns(t), newNetns(t)
	setupPod(t, ca, nsA, "pod-a")
	setupPod(t, cb, nsB, "pod-b")
	if got := readForward(t); got != "1" {
		t.Fatalf("ip_forward = %s with pods on masquerading networks, want 1", got)
	}
	if err := TeardownPod(ca, nsA, "pod-a", netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	if got := readForward(t); got != "1" {
		t.Fatalf("ip_forward = %s after root A's last pod while root B has one, want 1", got)
	}
	if err := TeardownPod(cb, nsB, "pod-b", netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	if got := readForward(t); got != before {
		t.Fatalf("ip_forward = %s after the last pod of every root, want %s as before the first", got, before)
	}

	// a root that crashed holding forwarding and was then deleted does not
	// keep it on
	gone := Config{Bridge: "pg" + nettest.RandHex(t, 6), DataDir: filepath.Join(t.TempDir(), "gone")}
	if err := os.MkdirAll(gone.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := holdForwarding(gone); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(gone.DataDir); err != nil {
		t.Fatal(err)
	}
	setupPod(t, ca, nsA, "pod-a")
	if err := TeardownPod(ca, nsA, "pod-a", netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	if got := readForward(t); got != before {
		t.Fatalf("ip_forward = %s after the last pod with a deleted root's holder left, want %s", got, before)
	}
	if _, err := os.Stat(registry); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("forwarding registry %s outlived the last holder: %v", registry, err)
	}
}
