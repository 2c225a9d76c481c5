package cni

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/ktrace"

	"github.com/peapod/peapod/internal/kfeature"
)

// bridgeAliasPrefix marks a bridge as a peapod network; the rest of the alias
// is the network's DataDir, so a second peapod root cannot adopt it.
const bridgeAliasPrefix = "peapod-net:"

// netAddrSet is NET_ADDR_SET from linux/netdevice.h: the MAC was set
// explicitly, so the bridge no longer follows its ports' addresses.
const netAddrSet = "3"

// EnsureBridge creates or adopts the network's bridge, gives it the gateway
// address, pins its MAC and brings it up. It refuses a subnet that overlaps a
// route or address not on this bridge, a bridge carrying another subnet, and a
// bridge that another peapod root owns.
func EnsureBridge(c Config) (netlink.Link, error) {
	c, err := c.normalize()
	if err != nil {
		return nil, err
	}
	br, err := bridgeByName(c)
	if err != nil && !errors.Is(err, errLinkNotFound) {
		return nil, err
	}
	brIndex := 0
	if br != nil {
		brIndex = br.Attrs().Index
	}
	if err := checkOverlap(c, brIndex); err != nil {
		return nil, err
	}
	if br == nil {
		if br, err = createBridge(c); err != nil {
			return nil, err
		}
	}
	if !c.NoBridgeAddr {
		if err := ensureGatewayAddr(c, br); err != nil {
			return nil, err
		}
	}
	if err := configureBridge(c, br); err != nil {
		return nil, err
	}
	return br, nil
}

// errLinkNotFound is returned by bridgeByName when no link has the name.
var errLinkNotFound = errors.New("link not found")

// bridgeByName finds the network's bridge and checks that it is a bridge and
// that no other peapod root owns it.
func bridgeByName(c Config) (*netlink.Bridge, error) {
	link, err := netlink.LinkByName(c.Bridge)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, errLinkNotFound
		}
		return nil, fmt.Errorf("failed to look up bridge %q: %w", c.Bridge, err)
	}
	br, ok := link.(*netlink.Bridge)
	if !ok {
		return nil, fmt.Errorf("link %q exists but is a %s, not a bridge", c.Bridge, link.Type())
	}
	alias := br.Attrs().Alias
	if strings.HasPrefix(alias, bridgeAliasPrefix) && alias != bridgeAlias(c) {
		return nil, fmt.Errorf("bridge %q belongs to another peapod network (%s), not %s",
			c.Bridge, strings.TrimPrefix(alias, bridgeAliasPrefix), c.DataDir)
	}
	return br, nil
}

// bridgeAlias is the IFLA_IFALIAS that marks the bridge as this network's.
func bridgeAlias(c Config) string { return bridgeAliasPrefix + c.DataDir }

// createBridge adds the bridge, tolerating a concurrent creator (EEXIST), and
// fetches it again to check what is there now.
func createBridge(c Config) (*netlink.Bridge, error) {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = c.Bridge
	attrs.MTU = c.MTU
	attrs.Flags = net.FlagUp
	err := ktrace.Do("netlink link add", "bridge "+c.Bridge, func() error { return netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}) })
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("failed to create bridge %q: %w", c.Bridge, kfeature.Bridge.Wrap(err))
	}
	br, err := bridgeByName(c)
	if errors.Is(err, errLinkNotFound) {
		return nil, fmt.Errorf("bridge %q vanished right after it was created", c.Bridge)
	}
	return br, err
}

// configureBridge marks the bridge as ours, sets the MTU, pins the MAC and
// brings it up, each only when needed so an adopted bridge costs no writes.
func configureBridge(c Config, br *netlink.Bridge) error {
	a := br.Attrs()
	if a.Alias != bridgeAlias(c) {
		if err := ktrace.Do("netlink link set alias", c.Bridge+" "+bridgeAlias(c), func() error { return netlink.LinkSetAlias(br, bridgeAlias(c)) }); err != nil {
			return fmt.Errorf("failed to mark bridge %q as peapod's: %w", c.Bridge, err)
		}
	}
	if c.MTU > 0 && a.MTU != c.MTU {
		if err := ktrace.Do("netlink link set mtu", c.Bridge, func() error { return netlink.LinkSetMTU(br, c.MTU) }); err != nil {
			return fmt.Errorf("failed to set MTU %d on bridge %q: %w", c.MTU, c.Bridge, err)
		}
	}
	if err := pinMAC(br); err != nil {
		return err
	}
	if a.Flags&net.FlagUp == 0 {
		if err := ktrace.Do("netlink link set up", c.Bridge, func() error { return netlink.LinkSetUp(br) }); err != nil {
			return fmt.Errorf("failed to bring up bridge %q: %w", c.Bridge, err)
		}
	}
	return nil
}

// pinMAC sets the bridge's address to itself. A bridge whose MAC was never set
// takes the lowest MAC of its ports and changes it as ports come and go, which
// makes every pod's ARP entry for the gateway go stale; once set explicitly the
// kernel keeps it (addr_assign_type becomes NET_ADDR_SET).
func pinMAC(br *netlink.Bridge) error {
	name := br.Attrs().Name
	b, err := os.ReadFile("/sys/class/net/" + name + "/addr_assign_type")
	if err == nil && strings.TrimSpace(string(b)) == netAddrSet {
		return nil
	}
	if err := ktrace.Do("netlink link set address", name+" "+br.Attrs().HardwareAddr.String(), func() error { return netlink.LinkSetHardwareAddr(br, br.Attrs().HardwareAddr) }); err != nil {
		return fmt.Errorf("failed to pin MAC of bridge %q: %w", name, err)
	}
	return nil
}

// ensureGatewayAddr gives the bridge the gateway address, and refuses a bridge
// that carries any other IPv4 address.
func ensureGatewayAddr(c Config, br *netlink.Bridge) error {
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return netlink.AddrList(br, netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("failed to list addresses of bridge %q: %w", c.Bridge, err)
	}
	want := c.gatewayPrefix()
	found := false
	for _, a := range addrs {
		p, ok := prefixOf(a.IPNet)
		if !ok {
			continue
		}
		if p != want {
			return fmt.Errorf("bridge %q carries %s, not this network's gateway %s", c.Bridge, p, want)
		}
		found = true
	}
	if found {
		return nil
	}
	err = ktrace.Do("netlink addr add", want.String()+" dev "+c.Bridge, func() error { return netlink.AddrAdd(br, &netlink.Addr{IPNet: ipNet(want)}) })
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("failed to add gateway %s to bridge %q: %w", want, c.Bridge, err)
	}
	return nil
}

// checkOverlap refuses a subnet that overlaps an IPv4 address or main-table
// route on any link but the bridge (brIndex; 0 when it does not exist yet).
func checkOverlap(c Config, brIndex int) error {
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return netlink.AddrList(nil, netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("failed to list host addresses: %w", err)
	}
	for _, a := range addrs {
		p, ok := prefixOf(a.IPNet)
		if ok && a.LinkIndex != brIndex && p.Masked().Overlaps(c.Subnet) {
			return fmt.Errorf("pod subnet %s overlaps address %s on %s", c.Subnet, p, linkName(a.LinkIndex))
		}
	}
	routes, err := retryDump(func() ([]netlink.Route, error) { return netlink.RouteList(nil, netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("failed to list host routes: %w", err)
	}
	for _, r := range routes {
		p, ok := prefixOf(r.Dst)
		// the default route (no Dst) overlaps everything and is not a conflict
		if ok && p.Bits() > 0 && r.LinkIndex != brIndex && p.Overlaps(c.Subnet) {
			return fmt.Errorf("pod subnet %s overlaps route %s dev %s", c.Subnet, p, linkName(r.LinkIndex))
		}
	}
	return nil
}

// linkName names a link index for an error message.
func linkName(index int) string {
	if l, err := netlink.LinkByIndex(index); err == nil {
		return fmt.Sprintf("%q", l.Attrs().Name)
	}
	return fmt.Sprintf("link #%d", index)
}

// prefixOf converts a netlink IPv4 net to a netip.Prefix.
func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(n.IP.To4())
	if !ok {
		return netip.Prefix{}, false
	}
	bits, size := n.Mask.Size()
	if size != 32 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(ip, bits), true
}

// ipNet converts a netip.Prefix, host bits kept, to the net.IPNet netlink wants.
func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
