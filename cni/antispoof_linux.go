package cni

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/ktrace"
)

// antispoofPrefix starts the name of the anti-spoofing tables of the
// network's pods, "peapod-<bridge>-antispoof-<host veth>": it names the
// network, so gc finds its own, and starts like the network's other tables.
func antispoofPrefix(c Config) string { return "peapod-" + c.Bridge + "-antispoof-" }

// antispoofTable names the netdev table guarding one host veth.
func antispoofTable(c Config, hostVeth string) *nftables.Table {
	return &nftables.Table{Name: antispoofPrefix(c) + hostVeth, Family: nftables.TableFamilyNetdev}
}

// antispoofChain is the base chain of an anti-spoofing table, and
// antispoofRuleCount the number of rules antispoofRules gives it.
const (
	antispoofChain     = "ingress"
	antispoofRuleCount = 3
)

// Ethernet types and the fixed start of an Ethernet/IPv4 ARP packet.
var (
	etherTypeIPv4 = binaryutil.BigEndian.PutUint16(unix.ETH_P_IP)
	etherTypeARP  = binaryutil.BigEndian.PutUint16(unix.ETH_P_ARP)
	// htype 1 (Ethernet), ptype 0x0800 (IPv4), hlen 6, plen 4: only then are
	// the sender's MAC and IP at bytes 8..17
	arpEtherIPv4 = []byte{0, 1, 8, 0, 6, 4}
)

// addAntispoof makes the pod on hostVeth unable to speak as anyone else: a
// netdev ingress chain on the host end (so it sees every frame the pod sends,
// before the bridge does) lets through only
//
//	ether saddr <podMAC>, and then only
//	IPv4 with ip saddr <podIP>, or
//	Ethernet/IPv4 ARP whose sender is <podMAC>, <podIP>;
//
// everything else is dropped by the chain's policy: other sources, gratuitous
// ARP for a neighbour's address, VLAN tags, and IPv6 (peapod networks are
// IPv4 only; a pod has no business sending neighbour discovery or router
// advertisements to its neighbours).
func addAntispoof(c Config, hostVeth string, podMAC net.HardwareAddr, podIP netip.Addr) error {
	conn := &nftables.Conn{}
	// create, not add: a table of that name left by an earlier veth (a
	// teardown cut short) must not keep its rules. Recent kernels (seen on
	// 6.18; older ones deleted it) keep a netdev chain whose device is gone
	// and bind it to the next device of that name.
	queueAntispoof(conn, conn.CreateTable(antispoofTable(c, hostVeth)), hostVeth, podMAC, podIP)
	err := ktrace.Do("nft create table", "netdev "+antispoofTable(c, hostVeth).Name+": ingress of "+hostVeth+" passes only "+podMAC.String()+" "+podIP.String(), conn.Flush)
	if errors.Is(err, unix.EEXIST) {
		// replaced in one batch; not the common path, as any nftables
		// delete makes the commit wait for an RCU grace period (~10 ms)
		conn.DelTable(antispoofTable(c, hostVeth))
		queueAntispoof(conn, conn.AddTable(antispoofTable(c, hostVeth)), hostVeth, podMAC, podIP)
		err = ktrace.Do("nft replace table", "netdev "+antispoofTable(c, hostVeth).Name, conn.Flush)
	}
	if err != nil {
		return fmt.Errorf("failed to add anti-spoofing table %s for %s %s: %w", antispoofTable(c, hostVeth).Name, podMAC, podIP, err)
	}
	return nil
}

// hasAntispoof checks that hostVeth's anti-spoofing chain exists.
func hasAntispoof(c Config, hostVeth string) error {
	table := antispoofTable(c, hostVeth)
	if _, err := (&nftables.Conn{}).ListChain(table, antispoofChain); err != nil {
		return fmt.Errorf("anti-spoofing chain %s/%s of %s is missing: %w", table.Name, antispoofChain, hostVeth, err)
	}
	return nil
}

// queueAntispoof queues the chain and rules of addAntispoof into table.
func queueAntispoof(conn *nftables.Conn, table *nftables.Table, hostVeth string, podMAC net.HardwareAddr, podIP netip.Addr) {
	drop := nftables.ChainPolicyDrop
	chain := conn.AddChain(&nftables.Chain{
		Name: antispoofChain, Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookIngress, Priority: nftables.ChainPriorityFilter,
		Device: hostVeth, Policy: &drop,
	})
	for _, exprs := range antispoofRules(podMAC, podIP) {
		conn.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: exprs})
	}
}

// antispoofRules are the rules of addAntispoof's chain, in order.
func antispoofRules(mac net.HardwareAddr, ip netip.Addr) [][]expr.Any {
	load := func(base expr.PayloadBase, offset, n uint32) *expr.Payload {
		return &expr.Payload{DestRegister: 1, Base: base, Offset: offset, Len: n}
	}
	eq := func(data []byte) *expr.Cmp { return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data} }
	accept := &expr.Verdict{Kind: expr.VerdictAccept}
	sender := append(append([]byte{}, mac...), ip.AsSlice()...)
	return [][]expr.Any{
		{ // ether saddr != <mac> drop
			load(expr.PayloadBaseLLHeader, 6, 6),
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: mac},
			&expr.Verdict{Kind: expr.VerdictDrop},
		},
		{ // ether type ip ip saddr <ip> accept
			load(expr.PayloadBaseLLHeader, 12, 2), eq(etherTypeIPv4),
			load(expr.PayloadBaseNetworkHeader, 12, 4), eq(ip.AsSlice()),
			accept,
		},
		{ // ether type arp, Ethernet/IPv4, sender <mac> <ip>: accept
			load(expr.PayloadBaseLLHeader, 12, 2), eq(etherTypeARP),
			load(expr.PayloadBaseNetworkHeader, 0, 6), eq(arpEtherIPv4),
			load(expr.PayloadBaseNetworkHeader, 8, 10), eq(sender),
			accept,
		},
	}
}

// deleteAntispoof removes the anti-spoofing table of hostVeth; already gone
// is success. Deleting the veth does not remove it (see addAntispoof).
func deleteAntispoof(c Config, hostVeth string) error {
	conn := &nftables.Conn{}
	// Looked up first: a delete is a transaction, and its commit waits for
	// an RCU grace period (~6 ms here) even when the table is already gone,
	// which is the common case of a second teardown (rm after stop, gc).
	// A lookup that fails for another reason falls through to the delete.
	if _, err := conn.ListTableOfFamily(antispoofTable(c, hostVeth).Name, nftables.TableFamilyNetdev); errors.Is(err, unix.ENOENT) {
		return nil
	}
	conn.DelTable(antispoofTable(c, hostVeth))
	if err := ktrace.Do("nft delete table", "netdev "+antispoofTable(c, hostVeth).Name, conn.Flush); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("failed to delete anti-spoofing table %s: %w", antispoofTable(c, hostVeth).Name, err)
	}
	return nil
}

// removeHostVeth deletes a host veth and its anti-spoofing table; either
// being gone already is success. Both deletes make the kernel wait for an
// RCU grace period (~10 ms each here), so they run side by side; the veth's
// bridge port is disabled first, so that between the table going and the
// veth going no frame of the pod's reaches the bridge. Should the port not
// be disabled, the table goes after the veth.
func removeHostVeth(c Config, hostVeth string) error {
	link, err := netlink.LinkByName(hostVeth)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return deleteAntispoof(c, hostVeth)
	}
	if err != nil {
		return fmt.Errorf("failed to look up link %q: %w", hostVeth, err)
	}
	if disableBridgePort(link) != nil {
		return errors.Join(deleteLink(hostVeth), deleteAntispoof(c, hostVeth))
	}
	errc := make(chan error, 1)
	go func() { errc <- deleteAntispoof(c, hostVeth) }()
	err = ktrace.Do("netlink link del", hostVeth, func() error { return netlink.LinkDel(link) })
	if err != nil && !isNotFound(err) {
		err = fmt.Errorf("failed to delete link %q: %w", hostVeth, err)
	} else {
		err = nil
	}
	return errors.Join(err, <-errc)
}

// disableBridgePort puts a bridge port in state disabled (IFLA_BRPORT_STATE
// 0, as `bridge link set dev X state 0`): the bridge drops every frame
// arriving on it. The kernel allows it while the bridge runs no STP, as
// peapod's bridges do not.
func disableBridgePort(link netlink.Link) error {
	req := nl.NewNetlinkRequest(unix.RTM_SETLINK, unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_BRIDGE)
	msg.Index = int32(link.Attrs().Index)
	req.AddData(msg)
	protinfo := nl.NewRtAttr(unix.IFLA_PROTINFO|unix.NLA_F_NESTED, nil)
	protinfo.AddRtAttr(nl.IFLA_BRPORT_STATE, []byte{0}) // BR_STATE_DISABLED
	req.AddData(protinfo)
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
		return fmt.Errorf("failed to disable bridge port %q: %w", link.Attrs().Name, err)
	}
	return nil
}

// orphanAntispoofTables lists the network's anti-spoofing tables whose host
// veth is not leased and no longer exists, by veth name.
func orphanAntispoofTables(c Config, leased map[string]bool) ([]string, error) {
	tables, err := (&nftables.Conn{}).ListTablesOfFamily(nftables.TableFamilyNetdev)
	if err != nil {
		return nil, fmt.Errorf("failed to list netdev nftables tables: %w", err)
	}
	var orphans []string
	for _, t := range tables {
		veth, ok := strings.CutPrefix(t.Name, antispoofPrefix(c))
		if !ok || leased[veth] {
			continue
		}
		_, err := netlink.LinkByName(veth)
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			orphans = append(orphans, veth)
		} else if err != nil {
			return nil, fmt.Errorf("failed to look up link %q: %w", veth, err)
		}
	}
	return orphans, nil
}

// randomMAC is a random locally administered unicast MAC, as the kernel
// would pick for a veth; chosen here so the anti-spoofing rules can exist
// before the pod's interface comes up.
func randomMAC() (net.HardwareAddr, error) {
	mac := make(net.HardwareAddr, 6)
	if _, err := rand.Read(mac); err != nil {
		return nil, fmt.Errorf("failed to pick a MAC address: %w", err)
	}
	mac[0] = mac[0]&^0x01 | 0x02 // unicast, locally administered
	return mac, nil
}
