package cni

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/peapod/peapod/cni/ipam"
	"github.com/peapod/peapod/internal/cleanup"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/peapod/peapod/internal/ktrace"

	"github.com/peapod/peapod/internal/kfeature"
)

// podAliasPrefix starts the IFLA_IFALIAS of every host veth; the rest is the
// owner (pod uid), then "/<ifname>" for an interface other than eth0, so gc
// and `peapod net` can map bridge ports back to pods.
const podAliasPrefix = "peapod:"

// ErrPodNetworkExists is returned by SetupPod when the pod's host veth is
// already there: the pod has a network, or a crash left one for gc.
var ErrPodNetworkExists = errors.New("pod network already exists")

// Port is one pod's host veth on the bridge.
type Port struct {
	PodUID   string // the owner, from the host veth's alias
	IfName   string // the interface inside the owner's netns, from the alias
	HostVeth string // the host end's name
	MAC      string // the host end's hardware address
}

// HostVethName derives the host end's name from the bridge and pod uid:
// "pp" + 10 hex digits, deterministic so teardown needs no state, and well
// inside IFNAMSIZ.
func HostVethName(c Config, podUID string) string {
	return hostVethName(c, Attachment{Owner: podUID})
}

// hostVethName is HostVethName for any interface; eth0 hashes as before so
// names of existing pods do not change.
func hostVethName(c Config, a Attachment) string {
	bridge := c.Bridge
	if bridge == "" {
		bridge = DefaultBridge
	}
	key := bridge + "/" + a.Owner
	if a.ifName() != PodIfName {
		key += "/" + a.ifName()
	}
	sum := sha256.Sum256([]byte(key))
	return "pp" + hex.EncodeToString(sum[:5])
}

// portAlias is the host veth's IFLA_IFALIAS for an attachment.
func portAlias(a Attachment) string {
	if a.ifName() == PodIfName {
		return podAliasPrefix + a.Owner
	}
	return podAliasPrefix + a.Owner + "/" + a.ifName()
}

// parsePortAlias is the inverse of portAlias.
func parsePortAlias(alias string) (owner, ifName string, ok bool) {
	rest, ok := strings.CutPrefix(alias, podAliasPrefix)
	if !ok || rest == "" {
		return "", "", false
	}
	owner, ifName, found := strings.Cut(rest, "/")
	if !found {
		ifName = PodIfName
	}
	return owner, ifName, true
}

// SetupPod connects the pod network namespace at netnsPath to the bridge as
// eth0; see Attach.
func SetupPod(c Config, netnsPath, podUID string) (*Result, error) {
	return Attach(c, Attachment{Owner: podUID, NetnsPath: netnsPath})
}

// TeardownPod removes the pod's network: its host port mappings, the host
// veth (the kernel deletes the peer with it) and the pod's lease, released by
// owner. ip, when valid, is the address the pod was given (its record says
// it): the lease is looked for there first. It is idempotent and works when
// the netns is already gone; netnsPath is not needed for that.
func TeardownPod(c Config, netnsPath, podUID string, ip netip.Addr) error {
	if err := UnmapPorts(c, podUID); err != nil {
		return err
	}
	return Detach(c, Attachment{Owner: podUID, NetnsPath: netnsPath, IP: ip})
}

// Attach connects a network namespace to the bridge: a lease for the owner's
// interface, a veth pair whose peer is created directly in the netns under
// a.IfName with the address and routes, and whose host end is a bridge port.
// On error everything acquired is rolled back.
func Attach(c Config, a Attachment) (res *Result, err error) {
	if c, err = c.normalize(); err != nil {
		return nil, err
	}
	hostName := hostVethName(c, a)
	if _, err := netlink.LinkByName(hostName); err == nil {
		// What failed is the caller's to say; this says what only Attach knows.
		return nil, fmt.Errorf("%w (host veth %q, owner %q)", ErrPodNetworkExists, hostName, a.Owner)
	}
	podNS, err := netns.GetFromPath(a.NetnsPath)
	if err != nil {
		return nil, fmt.Errorf("failed to open network namespace %q: %w", a.NetnsPath, err)
	}
	defer podNS.Close()

	var cl cleanup.Stack
	defer func() {
		if err != nil {
			err = errors.Join(err, cl.Clean())
		}
	}()
	br, err := EnsureBridge(c)
	if err != nil {
		return nil, err
	}
	store, err := ipam.Open(c.DataDir, c.Subnet, c.Gateway)
	if err != nil {
		return nil, err
	}
	ip, err := store.Allocate(a.Owner, a.ifName())
	if err != nil {
		return nil, fmt.Errorf("failed to allocate an IP for pod %q: %w", a.Owner, err)
	}
	// one rollback for lease and egress: egress is undone only after the
	// lease is gone, or the idle check would see this pod's own lease
	cl.Add(func() error { return releaseLease(c, store, a) })
	if c.IPMasq {
		if err := enableEgress(c); err != nil {
			return nil, err
		}
	}

	podMAC, err := randomMAC()
	if err != nil {
		return nil, err
	}
	// registered before LinkAdd: it may create the pair and then fail to
	// enslave it, and deleting the host end takes the peer with it
	cl.Add(func() error { return deleteLink(hostName) })
	hostVeth, err := addVeth(c, br, hostName, a, podNS, podMAC)
	if err != nil {
		return nil, err
	}
	// before the pod's interface comes up, so its first frame is checked
	cl.Add(func() error { return deleteAntispoof(c, hostName) })
	if err := addAntispoof(c, hostName, podMAC, ip); err != nil {
		return nil, err
	}
	res = &Result{
		IP:          netipPrefix(ip, c.Subnet.Bits()),
		Gateway:     c.Gateway,
		HostVeth:    hostName,
		HostVethMAC: hostVeth.Attrs().HardwareAddr.String(),
		Bridge:      c.Bridge,
		BridgeMAC:   br.Attrs().HardwareAddr.String(),
		IfName:      a.ifName(),
		Routes:      c.podRoutes(),
	}
	if res.MAC, err = configurePodSide(podNS, res); err != nil {
		return nil, fmt.Errorf("failed to configure %s in %q: %w", res.IfName, a.NetnsPath, err)
	}
	// gc deletes no table whose veth is leased; should anything else have,
	// the pod must not run unguarded
	if err := hasAntispoof(c, hostName); err != nil {
		return nil, err
	}
	cl.Release()
	return res, nil
}

// addVeth creates the pair with the host end up and enslaved to the bridge,
// the peer born inside the pod's netns under its final name and with podMAC
// so it never appears on the host, then labels the host end with the owner and returns it.
func addVeth(c Config, br netlink.Link, hostName string, a Attachment, podNS netns.NsHandle, podMAC net.HardwareAddr) (netlink.Link, error) {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = hostName
	attrs.MTU = c.MTU
	attrs.Flags = net.FlagUp
	attrs.MasterIndex = br.Attrs().Index
	veth := &netlink.Veth{
		LinkAttrs:        attrs,
		PeerName:         a.ifName(),
		PeerNamespace:    netlink.NsFd(podNS),
		PeerHardwareAddr: podMAC,
	}
	if err := ktrace.Do("netlink link add", "veth "+hostName+" peer "+a.ifName()+" in "+a.NetnsPath+" master "+c.Bridge, func() error { return netlink.LinkAdd(veth) }); err != nil {
		return nil, fmt.Errorf("failed to create veth %q for pod %q on bridge %q: %w", hostName, a.Owner, c.Bridge, kfeature.Veth.Wrap(err))
	}
	// a separate request: the kernel ignores IFLA_IFALIAS in RTM_NEWLINK
	if err := ktrace.Do("netlink link set alias", hostName+" "+portAlias(a), func() error { return netlink.LinkSetAlias(veth, portAlias(a)) }); err != nil {
		return nil, fmt.Errorf("failed to label veth %q with pod %q: %w", hostName, a.Owner, err)
	}
	if c.HairpinMode {
		if err := ktrace.Do("netlink link set hairpin", hostName, func() error { return netlink.LinkSetHairpin(veth, true) }); err != nil {
			return nil, fmt.Errorf("failed to set hairpin mode on veth %q: %w", hostName, err)
		}
	}
	// fetched again for the MAC the kernel chose
	link, err := netlink.LinkByName(hostName)
	if err != nil {
		return nil, fmt.Errorf("failed to look up veth %q: %w", hostName, err)
	}
	return link, nil
}

// configurePodSide brings lo and the pod interface up inside the pod's netns,
// gives it the pod's address and routes, and returns its MAC.
func configurePodSide(podNS netns.NsHandle, res *Result) (string, error) {
	h, err := netlink.NewHandleAt(podNS)
	if err != nil {
		return "", fmt.Errorf("failed to open netlink in pod netns: %w", err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return "", fmt.Errorf("failed to find lo: %w", err)
	}
	if err := ktrace.Do("netlink link set up", "lo (pod netns)", func() error { return h.LinkSetUp(lo) }); err != nil {
		return "", fmt.Errorf("failed to bring up lo: %w", err)
	}
	// look the interface up by name in the pod's netns: indexes are per namespace
	link, err := h.LinkByName(res.IfName)
	if err != nil {
		return "", fmt.Errorf("failed to find %s: %w", res.IfName, err)
	}
	if err := ktrace.Do("netlink addr add", res.IP.String()+" dev "+res.IfName+" (pod netns)", func() error { return h.AddrAdd(link, &netlink.Addr{IPNet: ipNet(res.IP)}) }); err != nil {
		return "", fmt.Errorf("failed to add %s to %s: %w", res.IP, res.IfName, err)
	}
	// up before the routes: a gateway is unreachable through a link that is down
	if err := ktrace.Do("netlink link set up", res.IfName+" (pod netns)", func() error { return h.LinkSetUp(link) }); err != nil {
		return "", fmt.Errorf("failed to bring up %s: %w", res.IfName, err)
	}
	for _, r := range res.Routes {
		route := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: ipNet(r.Dst), Gw: net.IP(r.Via.AsSlice())}
		if r.Dst.Bits() == 0 {
			route.Dst = nil // netlink's spelling of the default route
		}
		if err := ktrace.Do("netlink route add", r.Dst.String()+" via "+r.Via.String()+" dev "+res.IfName+" (pod netns)", func() error { return h.RouteAdd(route) }); err != nil {
			return "", fmt.Errorf("failed to add route to %s via %s: %w", r.Dst, r.Via, err)
		}
	}
	return link.Attrs().HardwareAddr.String(), nil
}

// Detach removes one attachment: the host veth (the kernel deletes the peer
// with it), its anti-spoofing table and its lease, released by owner. It is
// idempotent and works when the netns is already gone.
func Detach(c Config, a Attachment) error {
	c, err := c.normalize()
	if err != nil {
		return err
	}
	hostName := hostVethName(c, a)
	// Deleted synchronously. Measured on the 2-core VM: the delete takes
	// ~30 ms (RCU grace periods), but leaving the veth to die with the netns
	// is no quicker to "veth gone" (~36 ms after the unpin), and would keep a
	// live bridge port with the pod's address for as long as anything still
	// holds the netns, while its lease is already free. Run in parallel the
	// deletes amortise to ~5.5 ms per pod either way.
	if err := removeHostVeth(c, hostName); err != nil {
		return fmt.Errorf("failed to tear down network of pod %q: %w", a.Owner, err)
	}
	store, err := ipam.Open(c.DataDir, c.Subnet, c.Gateway)
	if err != nil {
		return err
	}
	return releaseLease(c, store, a)
}

// releaseLease frees the attachment's lease and, when it was the network's
// last, removes masquerade and restores ip_forward (whatever c.IPMasq says
// now: an earlier configuration may have turned them on).
func releaseLease(c Config, store *ipam.Store, a Attachment) error {
	if err := store.ReleaseAt(a.IP, a.Owner, a.ifName()); err != nil {
		return fmt.Errorf("failed to release IP of pod %q: %w", a.Owner, err)
	}
	if err := disableEgressIfIdle(c, store); err != nil {
		return fmt.Errorf("failed to turn off egress of network %q: %w", c.Bridge, err)
	}
	return nil
}

// deleteLink deletes a host link by name; not found is success.
func deleteLink(name string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("failed to look up link %q: %w", name, err)
	}
	if err := ktrace.Do("netlink link del", name, func() error { return netlink.LinkDel(link) }); err != nil && !isNotFound(err) {
		return fmt.Errorf("failed to delete link %q: %w", name, err)
	}
	return nil
}

// Pods lists the peapod host veths on the network's bridge with their pod
// uids. A missing bridge has no ports.
func Pods(c Config) ([]Port, error) {
	c, err := c.normalize()
	if err != nil {
		return nil, err
	}
	br, err := bridgeByName(c)
	if errors.Is(err, errLinkNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	links, err := retryDump(netlink.LinkList)
	if err != nil {
		return nil, fmt.Errorf("failed to list links: %w", err)
	}
	var ports []Port
	for _, l := range links {
		a := l.Attrs()
		owner, ifName, ok := parsePortAlias(a.Alias)
		if !ok || a.MasterIndex != br.Attrs().Index {
			continue
		}
		ports = append(ports, Port{PodUID: owner, IfName: ifName, HostVeth: a.Name, MAC: a.HardwareAddr.String()})
	}
	return ports, nil
}
