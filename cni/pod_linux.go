package cni

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/peapod/peapod/cni/ipam"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// podAliasPrefix starts the IFLA_IFALIAS of every host veth; the rest is the
// pod uid, so gc and `peapod net` can map bridge ports back to pods.
const podAliasPrefix = "peapod:"

// ErrPodNetworkExists is returned by SetupPod when the pod's host veth is
// already there: the pod has a network, or a crash left one for gc.
var ErrPodNetworkExists = errors.New("pod network already exists")

// Port is one pod's host veth on the bridge.
type Port struct {
	PodUID   string // from the host veth's alias
	HostVeth string // the host end's name
	MAC      string // the host end's hardware address
}

// HostVethName derives the host end's name from the bridge and pod uid:
// "pp" + 10 hex digits, deterministic so teardown needs no state, and well
// inside IFNAMSIZ.
func HostVethName(c Config, podUID string) string {
	bridge := c.Bridge
	if bridge == "" {
		bridge = DefaultBridge
	}
	sum := sha256.Sum256([]byte(bridge + "/" + podUID))
	return "pp" + hex.EncodeToString(sum[:5])
}

// SetupPod connects the pod network namespace at netnsPath to the bridge: a
// lease for podUID, a veth pair whose peer is created directly in the pod's
// netns as eth0 with the address and a default route, and whose host end is a
// bridge port. On error everything acquired is rolled back.
func SetupPod(c Config, netnsPath, podUID string) (res *Result, err error) {
	if c, err = c.normalize(); err != nil {
		return nil, err
	}
	hostName := HostVethName(c, podUID)
	if _, err := netlink.LinkByName(hostName); err == nil {
		return nil, fmt.Errorf("failed to set up network of pod %q: %w (host veth %q)", podUID, ErrPodNetworkExists, hostName)
	}
	podNS, err := netns.GetFromPath(netnsPath)
	if err != nil {
		return nil, fmt.Errorf("failed to open network namespace %q: %w", netnsPath, err)
	}
	defer podNS.Close()

	var cl cleanup
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
	ip, err := store.Allocate(podUID, PodIfName)
	if err != nil {
		return nil, fmt.Errorf("failed to allocate an IP for pod %q: %w", podUID, err)
	}
	// one rollback for lease and egress: egress is undone only after the
	// lease is gone, or the idle check would see this pod's own lease
	cl.Add(func() error { return releaseLease(c, store, podUID) })
	if c.IPMasq {
		if err := enableEgress(c); err != nil {
			return nil, err
		}
	}

	// registered before LinkAdd: it may create the pair and then fail to
	// enslave it, and deleting the host end takes the peer with it
	cl.Add(func() error { return deleteLink(hostName) })
	if err := addVeth(c, br, hostName, podUID, podNS); err != nil {
		return nil, err
	}
	res = &Result{
		IP:       netipPrefix(ip, c.Subnet.Bits()),
		Gateway:  c.Gateway,
		HostVeth: hostName,
		Bridge:   c.Bridge,
	}
	if res.MAC, err = configurePodSide(podNS, res); err != nil {
		return nil, fmt.Errorf("failed to configure %s in %q: %w", PodIfName, netnsPath, err)
	}
	cl.Release()
	return res, nil
}

// addVeth creates the pair with the host end up and enslaved to the bridge,
// the peer born inside the pod's netns as eth0 so it never appears on the
// host, and then labels the host end with the pod uid.
func addVeth(c Config, br netlink.Link, hostName, podUID string, podNS netns.NsHandle) error {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = hostName
	attrs.MTU = c.MTU
	attrs.Flags = net.FlagUp
	attrs.MasterIndex = br.Attrs().Index
	veth := &netlink.Veth{
		LinkAttrs:     attrs,
		PeerName:      PodIfName,
		PeerNamespace: netlink.NsFd(podNS),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("failed to create veth %q for pod %q on bridge %q: %w", hostName, podUID, c.Bridge, err)
	}
	// a separate request: the kernel ignores IFLA_IFALIAS in RTM_NEWLINK
	if err := netlink.LinkSetAlias(veth, podAliasPrefix+podUID); err != nil {
		return fmt.Errorf("failed to label veth %q with pod %q: %w", hostName, podUID, err)
	}
	return nil
}

// configurePodSide brings lo and eth0 up inside the pod's netns, gives eth0
// the pod's address and a default route via the gateway, and returns eth0's MAC.
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
	if err := h.LinkSetUp(lo); err != nil {
		return "", fmt.Errorf("failed to bring up lo: %w", err)
	}
	// look eth0 up by name in the pod's netns: indexes are per namespace
	eth0, err := h.LinkByName(PodIfName)
	if err != nil {
		return "", fmt.Errorf("failed to find %s: %w", PodIfName, err)
	}
	if err := h.AddrAdd(eth0, &netlink.Addr{IPNet: ipNet(res.IP)}); err != nil {
		return "", fmt.Errorf("failed to add %s to %s: %w", res.IP, PodIfName, err)
	}
	// up before the route: a gateway is unreachable through a link that is down
	if err := h.LinkSetUp(eth0); err != nil {
		return "", fmt.Errorf("failed to bring up %s: %w", PodIfName, err)
	}
	gw := net.IP(res.Gateway.AsSlice())
	if err := h.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: gw}); err != nil {
		return "", fmt.Errorf("failed to add default route via %s: %w", res.Gateway, err)
	}
	return eth0.Attrs().HardwareAddr.String(), nil
}

// TeardownPod removes the pod's network: the host veth (the kernel deletes the
// peer with it) and the pod's lease, released by owner. It is idempotent and
// works when the netns is already gone; netnsPath is not needed for that.
func TeardownPod(c Config, netnsPath, podUID string) error {
	c, err := c.normalize()
	if err != nil {
		return err
	}
	hostName := HostVethName(c, podUID)
	// Deleted synchronously. Measured on the 2-core VM: the delete takes
	// ~30 ms (RCU grace periods), but leaving the veth to die with the netns
	// is no quicker to "veth gone" (~36 ms after the unpin), and would keep a
	// live bridge port with the pod's address for as long as anything still
	// holds the netns, while its lease is already free. Run in parallel the
	// deletes amortise to ~5.5 ms per pod either way.
	if err := deleteLink(hostName); err != nil {
		return fmt.Errorf("failed to tear down network of pod %q: %w", podUID, err)
	}
	store, err := ipam.Open(c.DataDir, c.Subnet, c.Gateway)
	if err != nil {
		return err
	}
	return releaseLease(c, store, podUID)
}

// releaseLease frees the pod's lease and, when it was the network's last,
// removes masquerade and restores ip_forward (whatever c.IPMasq says now: an
// earlier configuration may have turned them on).
func releaseLease(c Config, store *ipam.Store, podUID string) error {
	if err := store.Release(podUID, PodIfName); err != nil {
		return fmt.Errorf("failed to release IP of pod %q: %w", podUID, err)
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
	if err := netlink.LinkDel(link); err != nil && !isNotFound(err) {
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
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("failed to list links: %w", err)
	}
	var ports []Port
	for _, l := range links {
		a := l.Attrs()
		uid, ok := strings.CutPrefix(a.Alias, podAliasPrefix)
		if !ok || a.MasterIndex != br.Attrs().Index {
			continue
		}
		ports = append(ports, Port{PodUID: uid, HostVeth: a.Name, MAC: a.HardwareAddr.String()})
	}
	return ports, nil
}
