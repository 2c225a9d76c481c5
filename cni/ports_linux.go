package cni

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/ktrace"

	"strconv"
)

// ipsDstNAT is IPS_DST_NAT from linux/netfilter/nf_conntrack_common.h: the
// connection's destination was rewritten (by our DNAT).
const ipsDstNAT = 1 << 5

// portsTable names the nftables table holding the network's host ports.
func portsTable(c Config) *nftables.Table {
	return &nftables.Table{Name: "peapod-hostport-" + c.Bridge, Family: nftables.TableFamilyIPv4}
}

// MapPorts maps host ports to podIP, in the manner of CNI's portmap plugin:
// DNAT for traffic to a local address arriving from elsewhere (prerouting)
// or sent by the host itself (output), route_localnet on the bridge and
// masquerade so that 127.0.0.1 works too, and a drop of anything else the
// bridge sends to 127/8 (see commitPortState). A mapping another pod holds is
// refused with ErrPortAllocated. Calling it again for a pod replaces the
// pod's mappings.
func MapPorts(c Config, podUID string, podIP netip.Addr, ports []PortMapping) error {
	c, err := c.normalize()
	if err != nil {
		return err
	}
	if !c.Subnet.Contains(podIP) {
		return fmt.Errorf("failed to map ports of pod %q: IP %s is outside subnet %s", podUID, podIP, c.Subnet)
	}
	return withForwardLock(c, func() error {
		state, err := readPortState(c)
		if err != nil {
			return err
		}
		if err := state.replacePod(podUID, podIP, ports); err != nil {
			return err
		}
		return commitPortState(c, state)
	})
}

// commitPortState records the state, then makes the rules match it. In that
// order a crash leaves at worst a recorded mapping without rules, which the
// next sync repairs, never a rule that no record names.
//
// It also owns the bridge's route_localnet, which lets the kernel route a
// packet whose source is 127.0.0.1 (DNATed in output) out of the bridge and
// its answer back in. That also routes a pod's frame addressed to 127.0.0.1
// to the host's loopback services (CVE-2020-8558), so it is on only while
// something is mapped and only after the input rule that drops such frames
// is in place; the value found before the first mapping is recorded with
// the state and put back, before that rule goes, when the last one does.
func commitPortState(c Config, state *portState) error {
	old, err := readPortState(c)
	if err != nil {
		return err
	}
	switch {
	case len(state.Mappings) == 0:
		if err := restoreRouteLocalnet(c, old); err != nil {
			return err
		}
	case len(old.Mappings) == 0: // the first mapping
		if state.RouteLocalnetBefore, err = readRouteLocalnet(c, c.Bridge); err != nil {
			return err
		}
	default:
		state.RouteLocalnetBefore = old.RouteLocalnetBefore
	}
	if err := writePortState(c, state); err != nil {
		return err
	}
	if err := syncPortRules(c, state); err != nil {
		return errors.Join(err, writePortState(c, old))
	}
	if len(state.Mappings) > 0 {
		if err := writeRouteLocalnet(c, "1"); err != nil {
			return errors.Join(err, writePortState(c, old), syncPortRules(c, old))
		}
	}
	return nil
}

// routeLocalnetSysctl is the bridge's route_localnet (or the default's).
func routeLocalnetSysctl(dev string) string {
	return "/proc/sys/net/ipv4/conf/" + dev + "/route_localnet"
}

// readRouteLocalnet reads a device's route_localnet.
func readRouteLocalnet(c Config, dev string) (string, error) {
	b, err := os.ReadFile(routeLocalnetSysctl(dev))
	if err != nil {
		return "", fmt.Errorf("failed to read route_localnet of %s for network %s: %w", dev, c.Bridge, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// writeRouteLocalnet sets the bridge's route_localnet; a bridge that is gone
// took the setting with it.
func writeRouteLocalnet(c Config, v string) error {
	err := ktrace.Do("sysctl write", routeLocalnetSysctl(c.Bridge)+" = "+v, func() error { return os.WriteFile(routeLocalnetSysctl(c.Bridge), []byte(v), 0o644) })
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to set route_localnet of bridge %s to %s: %w", c.Bridge, v, err)
	}
	return nil
}

// restoreRouteLocalnet puts back the route_localnet old recorded; a state
// without one (nothing mapped, or written by a peapod that did not record
// it) falls back to the value a new bridge gets, conf/default's.
func restoreRouteLocalnet(c Config, old *portState) error {
	v := old.RouteLocalnetBefore
	if v == "" {
		var err error
		if v, err = readRouteLocalnet(c, "default"); err != nil {
			return err
		}
	}
	return writeRouteLocalnet(c, v)
}

// UnmapPorts removes every host port mapping of the pod; it is idempotent.
func UnmapPorts(c Config, podUID string) error {
	c, err := c.normalize()
	if err != nil {
		return err
	}
	_, err = removePortMappings(c, func(pod string) bool { return pod == podUID }, false)
	return err
}

// removePortMappings drops the mappings of the pods drop selects, rebuilds
// the rules (also when nothing was dropped if resync) and returns what it
// removed.
func removePortMappings(c Config, drop func(pod string) bool, resync bool) (removed []mappingRecord, err error) {
	if _, err := os.Stat(c.DataDir); errors.Is(err, os.ErrNotExist) {
		return nil, nil // a network never used has nothing to unmap
	}
	err = withForwardLock(c, func() error {
		state, err := readPortState(c)
		if err != nil {
			return err
		}
		removed = state.removePods(drop)
		if len(removed) == 0 && !resync {
			return nil // the common teardown of a pod without host ports
		}
		return commitPortState(c, state)
	})
	return removed, err
}

// syncPortRules makes the network's table match the state in one atomic
// batch: create (so the delete cannot fail on a missing table), delete, and
// rebuild it; no table at all when nothing is mapped.
func syncPortRules(c Config, state *portState) error {
	conn := &nftables.Conn{}
	table := portsTable(c)
	conn.AddTable(table)
	conn.DelTable(table)
	if len(state.Mappings) > 0 {
		addPortTable(conn, c, state)
	}
	if err := ktrace.Do("nft replace table", "ip "+table.Name+" ("+strconv.Itoa(len(state.Mappings))+" host ports)", conn.Flush); err != nil {
		return fmt.Errorf("failed to write nftables table %s: %w", table.Name, err)
	}
	return nil
}

// addPortTable queues the table: prerouting and output jump to the
// hostports chain for local destinations; input drops what the bridge sends
// to 127/8 that is not ours (loopbackGuard); postrouting masquerades DNATed
// connections from 127/8 and those hairpinning through the bridge.
func addPortTable(conn *nftables.Conn, c Config, state *portState) {
	table := conn.AddTable(portsTable(c))
	hostports := conn.AddChain(&nftables.Chain{Name: "hostports", Table: table})
	for _, hook := range []struct {
		name string
		hook *nftables.ChainHook
	}{{"prerouting", nftables.ChainHookPrerouting}, {"output", nftables.ChainHookOutput}} {
		chain := conn.AddChain(&nftables.Chain{
			Name: hook.name, Table: table, Type: nftables.ChainTypeNAT,
			Hooknum: hook.hook, Priority: nftables.ChainPriorityNATDest,
		})
		conn.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: localDaddrJump(hostports.Name)})
	}
	input := conn.AddChain(&nftables.Chain{
		Name: "input", Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter,
	})
	for _, exprs := range loopbackGuard(c) {
		conn.AddRule(&nftables.Rule{Table: table, Chain: input, Exprs: exprs})
	}
	post := conn.AddChain(&nftables.Chain{
		Name: "postrouting", Table: table, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource,
	})
	conn.AddRule(&nftables.Rule{Table: table, Chain: post, Exprs: loopbackMasq()})
	conn.AddRule(&nftables.Rule{Table: table, Chain: post, Exprs: hairpinMasq(c)})
	for _, m := range state.Mappings {
		conn.AddRule(&nftables.Rule{Table: table, Chain: hostports, Exprs: dnatExprs(m), UserData: []byte(m.Pod)})
	}
}

// loopbackGuard is what kube-proxy added for CVE-2020-8558, scoped to the
// bridge: a packet from the bridge to 127.0.0.0/8 is accepted only as part
// of a connection our DNAT made (the answer to the host's 127.0.0.1:hostPort,
// de-masqueraded back to 127.0.0.1); every other one is dropped:
//
//	iifname <bridge> ip daddr 127.0.0.0/8 ct status dnat accept
//	iifname <bridge> ip daddr 127.0.0.0/8 drop
//
// Two rules, not one `ct status != dnat drop`: a packet conntrack found
// invalid has no ct, `ct status` then matches nothing, and it would pass.
// iifname, not the bridge port: input sees the bridge even with
// br_netfilter loaded.
func loopbackGuard(c Config) [][]expr.Any {
	match := func() []expr.Any {
		ifname := make([]byte, unix.IFNAMSIZ)
		copy(ifname, c.Bridge)
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{127}},
		}
	}
	dnated := append(append(match(), dnatedConn()...), &expr.Verdict{Kind: expr.VerdictAccept})
	return [][]expr.Any{dnated, append(match(), &expr.Verdict{Kind: expr.VerdictDrop})}
}

// localDaddrJump is `fib daddr type local jump <chain>`.
func localDaddrJump(chain string) []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
		&expr.Verdict{Kind: expr.VerdictJump, Chain: chain},
	}
}

// dnatedConn is `ct status dnat`.
func dnatedConn() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(ipsDstNAT), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

// loopbackMasq is `ct status dnat ip saddr 127.0.0.0/8 masquerade`: the pod
// cannot answer 127.0.0.1, so such a connection leaves with the bridge's
// address, as portmap does.
func loopbackMasq() []expr.Any {
	exprs := dnatedConn()
	exprs = append(exprs,
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{127}},
		&expr.Masq{})
	return exprs
}

// hairpinMasq is `ct status dnat ip saddr <subnet> ip daddr <subnet>
// masquerade`: a pod reaching a host port mapped to a pod must get the answer
// back through the host, not straight over the bridge from the target. It
// matches on addresses, not on iifname: with br_netfilter loaded the input
// device seen here is the bridge port, not the bridge.
func hairpinMasq(c Config) []expr.Any {
	mask := net.CIDRMask(c.Subnet.Bits(), 32)
	network := c.Subnet.Addr().AsSlice()
	exprs := dnatedConn()
	for _, offset := range []uint32{12, 16} { // IPv4 source, destination
		exprs = append(exprs,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: network})
	}
	return append(exprs, &expr.Masq{})
}

// dnatExprs is `[ip daddr <hostIP>] meta l4proto <proto> th dport <hostPort>
// dnat to <podIP>:<containerPort>`.
func dnatExprs(m mappingRecord) []expr.Any {
	var exprs []expr.Any
	if m.HostIP.IsValid() {
		exprs = append(exprs,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: m.HostIP.AsSlice()})
	}
	return append(exprs,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{protoNumber(m.Protocol)}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(m.HostPort)},
		&expr.Immediate{Register: 1, Data: m.PodIP.AsSlice()},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(m.ContainerPort)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	)
}
