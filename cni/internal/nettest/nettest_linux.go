// Package nettest holds the kernel test helpers of the cni packages: network
// namespaces pinned in temp dirs, test subnets inside 10.225.0.0/16, and a
// TCP server that tells each client the address it saw. Tests only.
package nettest

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/peapod/peapod/internal/testutil"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Block is a quarter of 10.225.0.0/16 (64 /24s), one per test package, so
// packages running in parallel never pick overlapping subnets.
type Block byte

const (
	BlockCNI    Block = 0 // package cni
	BlockPlugin Block = 1 // package cni/plugin
	BlockChain  Block = 2 // package cni/chain
)

// RandHex returns n random bytes in hex (testutil.RandHex).
func RandHex(t testing.TB, n int) string { return testutil.RandHex(t, n) }

// handedOut remembers the subnets Subnet returned, which may not carry a
// route yet when the next call comes.
var handedOut sync.Map

// Subnet returns a random /24 of the block that no host address or route
// overlaps and that no earlier call returned.
func Subnet(t testing.TB, b Block) netip.Prefix {
	t.Helper()
	testutil.RequireRoot(t)
	for range 256 {
		r := make([]byte, 1)
		if _, err := rand.Read(r); err != nil {
			t.Fatal(err)
		}
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 225, byte(b)*64 + r[0]%64, 0}), 24)
		if _, taken := handedOut.Load(p); taken || inUse(t, p) {
			continue
		}
		handedOut.Store(p, true)
		return p
	}
	t.Fatalf("no free /24 in block %d of 10.225.0.0/16", b)
	return netip.Prefix{}
}

// inUse reports whether a host route overlaps p (addresses bring their
// prefix route with them).
func inUse(t testing.TB, p netip.Prefix) bool {
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatalf("list routes: %v", err)
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		ip, _ := netip.AddrFromSlice(r.Dst.IP.To4())
		if ones > 0 && netip.PrefixFrom(ip, ones).Overlaps(p) {
			return true
		}
	}
	return false
}

// NewNetns pins a fresh network namespace on a file in a temp dir and
// unpins it in Cleanup (a no-op if the test already did).
func NewNetns(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "netns")
	if err := CreateNetns(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := DeleteNetns(path); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return path
}

// CreateNetns unshares a network namespace on a locked thread and bind-mounts
// it onto path. The thread is never unlocked, so the Go runtime discards it
// rather than reuse a thread sitting in the wrong namespace.
func CreateNetns(path string) error {
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

// EnterNewNetns moves the calling test goroutine into a fresh network
// namespace with lo up, for the rest of the test and its Cleanup: the test's
// own "host", so that what the test does to the host (its loopback, sysctls
// and nftables) happens there and not on the machine. The thread stays
// locked, so the Go runtime ends it with the test instead of reusing it;
// subtests and other goroutines run outside it.
func EnterNewNetns(t testing.TB) {
	t.Helper()
	testutil.RequireRoot(t)
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		t.Fatalf("unshare netns: %v", err)
	}
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("bring up lo in the test's netns: %v", err)
	}
}

// DeleteNetns unpins a netns; already gone is success.
func DeleteNetns(path string) error {
	err := unix.Unmount(path, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("failed to unpin netns %q: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to remove netns pin %q: %w", path, err)
	}
	return nil
}

// InNetns runs fn on a locked thread inside the netns at path; sockets fn
// creates stay in that netns. The thread is discarded afterwards.
func InNetns(path string, fn func() error) error {
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

// Serve starts a TCP server on addr inside the netns at nsPath that writes
// each client's address back and closes; it returns the address it listens on.
func Serve(t testing.TB, nsPath string, addr netip.AddrPort) netip.AddrPort {
	t.Helper()
	var ln net.Listener
	err := InNetns(nsPath, func() error {
		var err error
		ln, err = net.Listen("tcp4", addr.String())
		return err
	})
	if err != nil {
		t.Fatalf("listen on %s in %q: %v", addr, nsPath, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(conn, conn.RemoteAddr().(*net.TCPAddr).IP.String())
			conn.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// PeerSeen dials addr, from the netns at nsPath or the host's if "", and
// returns the client address the Serve server saw.
func PeerSeen(nsPath string, addr netip.AddrPort) (string, error) {
	var conn net.Conn
	dial := func() error {
		var err error
		conn, err = net.DialTimeout("tcp4", addr.String(), 3*time.Second)
		return err
	}
	var err error
	if nsPath == "" {
		err = dial()
	} else {
		err = InNetns(nsPath, dial)
	}
	if err != nil {
		return "", fmt.Errorf("failed to dial %s from %q: %w", addr, nsPath, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	b, err := io.ReadAll(conn)
	if err != nil {
		return "", fmt.Errorf("failed to read from %s: %w", addr, err)
	}
	return string(b), nil
}

// Peer is a network namespace linked to the host by a veth pair on its own
// /30: the host end carries HostIP, the netns end NsIP and a default route
// via HostIP. It stands for another machine (or a container of another
// runtime) reaching the host.
type Peer struct {
	Netns  string     // the pinned netns
	HostIP netip.Addr // the host end's address
	NsIP   netip.Addr // the netns end's address
	Link   string     // the host end's name
}

// NewPeer creates a Peer on p (a /30 is taken from its start) and removes it
// in Cleanup.
func NewPeer(t testing.TB, p netip.Prefix) Peer {
	t.Helper()
	peer := Peer{
		Netns:  NewNetns(t),
		HostIP: p.Addr().Next(),
		NsIP:   p.Addr().Next().Next(),
		Link:   "pq" + RandHex(t, 6),
	}
	ns, err := os.Open(peer.Netns)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = peer.Link
	attrs.Flags = net.FlagUp
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: "eth0", PeerNamespace: netlink.NsFd(ns.Fd())}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatalf("create peer veth %q: %v", peer.Link, err)
	}
	t.Cleanup(func() {
		if err := DeleteLink(peer.Link); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if err := netlink.AddrAdd(veth, &netlink.Addr{IPNet: ipNet(peer.HostIP, 30)}); err != nil {
		t.Fatalf("address peer veth: %v", err)
	}
	err = InNetns(peer.Netns, func() error {
		eth0, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if err := netlink.AddrAdd(eth0, &netlink.Addr{IPNet: ipNet(peer.NsIP, 30)}); err != nil {
			return err
		}
		for _, name := range []string{"lo", "eth0"} {
			l, err := netlink.LinkByName(name)
			if err != nil {
				return err
			}
			if err := netlink.LinkSetUp(l); err != nil {
				return err
			}
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: net.IP(peer.HostIP.AsSlice())})
	})
	if err != nil {
		t.Fatalf("configure peer netns: %v", err)
	}
	return peer
}

// ipNet is ip/bits as netlink wants it.
func ipNet(ip netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: net.IP(ip.AsSlice()), Mask: net.CIDRMask(bits, 32)}
}

// DeleteLink deletes a host link by name; not found is success.
func DeleteLink(name string) error {
	link, err := netlink.LinkByName(name)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to look up link %q: %w", name, err)
	}
	if err := netlink.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("failed to delete link %q: %w", name, err)
	}
	return nil
}

// DeleteBridge deletes a test network's bridge and the masquerade table
// peapod keeps beside it (table ip peapod-<bridge>); either being gone
// already is success.
func DeleteBridge(name string) error {
	conn := &nftables.Conn{}
	conn.DelTable(&nftables.Table{Name: "peapod-" + name, Family: nftables.TableFamilyIPv4})
	err := conn.Flush()
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("failed to delete nftables table peapod-%s: %w", name, err)
	}
	return DeleteLink(name)
}

// LinkExists reports whether a host link of that name exists.
func LinkExists(t testing.TB, name string) bool {
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

// CleanupIptablesTables deletes, at the end of the test, the iptables-nft
// tables (nat, filter, mangle) that did not exist before: Debian's portmap
// creates its CNI-HOSTPORT-* chains through iptables and never removes them.
func CleanupIptablesTables(t testing.TB) {
	t.Helper()
	// Often a root test's first call: without root, listing the tables
	// fails, and the test must skip instead (testutil.RequireRoot).
	testutil.RequireRoot(t)
	before := iptablesTables(t)
	t.Cleanup(func() {
		conn := &nftables.Conn{}
		for key, tb := range iptablesTables(t) {
			if !before[key].present {
				conn.DelTable(tb.table)
			}
		}
		if err := conn.Flush(); err != nil {
			t.Errorf("cleanup: delete portmap's iptables tables: %v", err)
		}
	})
}

// tableEntry is one table found by iptablesTables.
type tableEntry struct {
	present bool            // the table exists
	table   *nftables.Table // the table
}

// iptablesTables lists the IPv4/IPv6 tables named as iptables names them.
func iptablesTables(t testing.TB) map[string]tableEntry {
	t.Helper()
	tables, err := (&nftables.Conn{}).ListTables()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]tableEntry{}
	for _, tb := range tables {
		switch tb.Name {
		case "nat", "filter", "mangle":
			if tb.Family == nftables.TableFamilyIPv4 || tb.Family == nftables.TableFamilyIPv6 {
				found[fmt.Sprint(tb.Family, "/", tb.Name)] = tableEntry{present: true, table: tb}
			}
		}
	}
	return found
}
