package cni

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/peapod/peapod/cni/ipam"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// ErrAttachmentBroken is returned by Verify when an attachment is not as
// Attach left it.
var ErrAttachmentBroken = errors.New("pod network attachment is broken")

// Verify checks that an attachment is still as Attach left it (the CNI CHECK
// verb): the host veth is a port of the bridge labelled with the owner and
// guarded by its anti-spoofing table, the
// owner holds the lease of want's address, and inside the netns the interface
// carries want and the routes. want is the address Attach returned.
func Verify(c Config, a Attachment, want netip.Prefix) error {
	c, err := c.normalize()
	if err != nil {
		return err
	}
	if err := verifyHostVeth(c, a); err != nil {
		return err
	}
	if err := verifyAntispoof(c, a); err != nil {
		return err
	}
	if err := verifyLease(c, a, want.Addr()); err != nil {
		return err
	}
	return verifyPodSide(c, a, want)
}

// broken wraps ErrAttachmentBroken with what is wrong with the attachment.
func broken(a Attachment, format string, args ...any) error {
	return fmt.Errorf("%w: pod %q %s: %s", ErrAttachmentBroken, a.Owner, a.ifName(), fmt.Sprintf(format, args...))
}

// verifyHostVeth checks the host end: present, a veth, a port of the
// bridge, carrying the owner's alias.
func verifyHostVeth(c Config, a Attachment) error {
	name := hostVethName(c, a)
	link, err := netlink.LinkByName(name)
	if err != nil {
		return broken(a, "host veth %q: %v", name, err)
	}
	br, err := bridgeByName(c)
	if err != nil {
		return broken(a, "bridge %q: %v", c.Bridge, err)
	}
	switch attrs := link.Attrs(); {
	case link.Type() != "veth":
		return broken(a, "host link %q is a %s, not a veth", name, link.Type())
	case attrs.MasterIndex != br.Attrs().Index:
		return broken(a, "host veth %q is not a port of bridge %q", name, c.Bridge)
	case attrs.Alias != portAlias(a):
		return broken(a, "host veth %q is labelled %q, not %q", name, attrs.Alias, portAlias(a))
	}
	return nil
}

// verifyAntispoof checks that the host veth's anti-spoofing chain is there,
// with its drop policy and its rules.
func verifyAntispoof(c Config, a Attachment) error {
	table := antispoofTable(c, hostVethName(c, a))
	conn := &nftables.Conn{}
	chains, err := conn.ListChainsOfTableFamily(nftables.TableFamilyNetdev)
	if err != nil {
		return fmt.Errorf("failed to list netdev nftables chains: %w", err)
	}
	for _, ch := range chains {
		if ch.Table.Name != table.Name || ch.Name != antispoofChain {
			continue
		}
		if ch.Policy == nil || *ch.Policy != nftables.ChainPolicyDrop {
			return broken(a, "anti-spoofing chain %s/%s does not drop by default", table.Name, ch.Name)
		}
		rules, err := conn.GetRules(table, ch)
		if err != nil {
			return fmt.Errorf("failed to list rules of %s/%s: %w", table.Name, ch.Name, err)
		}
		if len(rules) != antispoofRuleCount {
			return broken(a, "anti-spoofing chain %s/%s has %d rules, not %d", table.Name, ch.Name, len(rules), antispoofRuleCount)
		}
		return nil
	}
	return broken(a, "no anti-spoofing chain in nftables table %s", table.Name)
}

// verifyLease checks that the owner's interface holds the lease of ip.
func verifyLease(c Config, a Attachment, ip netip.Addr) error {
	store, err := ipam.Open(c.DataDir, c.Subnet, c.Gateway)
	if err != nil {
		return err
	}
	leases, err := store.Leases()
	if err != nil {
		return err
	}
	for _, l := range leases {
		if l.Owner == a.Owner && l.IfName == a.ifName() {
			if l.IP != ip {
				return broken(a, "holds lease %s, not %s", l.IP, ip)
			}
			return nil
		}
	}
	return broken(a, "holds no lease in %s", c.DataDir)
}

// verifyPodSide checks the interface inside the netns: present, up, carrying
// want, with every route the network gives.
func verifyPodSide(c Config, a Attachment, want netip.Prefix) error {
	podNS, err := netns.GetFromPath(a.NetnsPath)
	if err != nil {
		return broken(a, "network namespace %q: %v", a.NetnsPath, err)
	}
	defer podNS.Close()
	h, err := netlink.NewHandleAt(podNS)
	if err != nil {
		return fmt.Errorf("failed to open netlink in %q: %w", a.NetnsPath, err)
	}
	defer h.Close()
	link, err := h.LinkByName(a.ifName())
	if err != nil {
		return broken(a, "interface in %q: %v", a.NetnsPath, err)
	}
	if link.Type() != "veth" {
		return broken(a, "interface is a %s, not a veth", link.Type())
	}
	if err := verifyAddr(h, link, a, want); err != nil {
		return err
	}
	return verifyRoutes(h, link, a, c.podRoutes())
}

// verifyAddr checks that link carries want.
func verifyAddr(h *netlink.Handle, link netlink.Link, a Attachment, want netip.Prefix) error {
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return h.AddrList(link, netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("failed to list addresses of %s in %q: %w", a.ifName(), a.NetnsPath, err)
	}
	for _, addr := range addrs {
		if p, ok := prefixOf(addr.IPNet); ok && p == want {
			return nil
		}
	}
	return broken(a, "address %s is missing", want)
}

// verifyRoutes checks that every route the network gives is on link.
func verifyRoutes(h *netlink.Handle, link netlink.Link, a Attachment, want []Route) error {
	routes, err := retryDump(func() ([]netlink.Route, error) { return h.RouteList(link, netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("failed to list routes of %s in %q: %w", a.ifName(), a.NetnsPath, err)
	}
	have := map[Route]bool{}
	for _, r := range routes {
		dst := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if p, ok := prefixOf(r.Dst); ok {
			dst = p
		}
		via, _ := netip.AddrFromSlice(r.Gw.To4())
		have[Route{Dst: dst, Via: via}] = true
	}
	for _, r := range want {
		if !have[r] {
			return broken(a, "route to %s via %s is missing", r.Dst, r.Via)
		}
	}
	return nil
}
