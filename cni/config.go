// Package cni is peapod's flat pod network, run in-process: one Linux bridge,
// a veth pair per pod and host-local-style IPAM (package ipam). The CLI calls
// it directly, with no fork/exec per pod; cmd/peapod-cni wraps the same code
// as a standard CNI plugin. The supervisor never links it.
package cni

import (
	"fmt"
	"net/netip"

	"github.com/peapod/peapod/runtime/layout"
)

const (
	// DefaultBridge is the bridge of the default network.
	DefaultBridge = "peapod0"
	// PodIfName is the pod end of the veth pair.
	PodIfName = "eth0"
	// maxIfNameLen is IFNAMSIZ less the terminating NUL.
	maxIfNameLen = 15
)

// DefaultSubnet is the default pod network; not 10.88/16, which podman and
// containerd use.
var DefaultSubnet = netip.MustParsePrefix("10.220.0.0/16")

// Config describes one peapod network.
type Config struct {
	Bridge  string       // bridge name; default "peapod0"
	Subnet  netip.Prefix // pod subnet; default 10.220.0.0/16
	Gateway netip.Addr   // the bridge's address; default the first host address
	MTU     int          // bridge and veth MTU; 0 = the bridge default (1500)
	DataDir string       // IPAM dir: <--root>/net/<network name>
	IPMasq  bool         // masquerade pod → outside-the-subnet traffic

	// The fields below exist for peapod-cni, which maps the reference bridge
	// plugin's keys onto them; their zero values are peapod's own network.

	NoBridgeAddr   bool    // the bridge carries no address (CNI "isGateway": false)
	NoDefaultRoute bool    // the pod gets no default route via Gateway
	Routes         []Route // more routes in the pod (CNI IPAM "routes")
	HairpinMode    bool    // a frame may leave a bridge port it came in on
}

// Route is one extra route inside the pod.
type Route struct {
	Dst netip.Prefix // destination
	Via netip.Addr   // next hop; zero = the network's gateway
}

// Attachment names one interface of one owner on a network.
type Attachment struct {
	Owner     string // the pod uid, or the CNI container id
	IfName    string // the interface inside the netns; "" = eth0
	NetnsPath string // the owner's network namespace (only Attach and Verify need it)
	// IP is the address the owner holds, when the caller knows it (Detach
	// only): its lease is then released without reading every lease.
	IP netip.Addr
}

// ifName is the attachment's interface name, eth0 by default.
func (a Attachment) ifName() string {
	if a.IfName == "" {
		return PodIfName
	}
	return a.IfName
}

// Result is what SetupPod gave a pod.
type Result struct {
	IP          netip.Prefix // the pod's address with the subnet's length
	Gateway     netip.Addr   // the pod's default route
	HostVeth    string       // the host end of the pod's veth pair
	HostVethMAC string       // the host end's hardware address
	MAC         string       // eth0's hardware address inside the pod
	Bridge      string       // the bridge HostVeth is a port of
	BridgeMAC   string       // the bridge's (pinned) hardware address
	IfName      string       // the pod end's name inside the netns
	Routes      []Route      // the routes added in the pod, Via filled in
}

// DefaultConfig is the default network of a peapod root.
func DefaultConfig(root string) Config {
	return Config{
		Bridge:  DefaultBridge,
		Subnet:  DefaultSubnet,
		Gateway: DefaultSubnet.Addr().Next(),
		DataDir: layout.NetDataDir(root, DefaultBridge),
		IPMasq:  true,
	}
}

// normalize fills the zero fields that have a natural default and checks the rest.
func (c Config) normalize() (Config, error) {
	if c.Bridge == "" {
		c.Bridge = DefaultBridge
	}
	if !c.Subnet.IsValid() {
		c.Subnet = DefaultSubnet
	}
	c.Subnet = c.Subnet.Masked()
	if !c.Gateway.IsValid() {
		c.Gateway = c.Subnet.Addr().Next()
	}
	switch {
	case len(c.Bridge) > maxIfNameLen:
		return c, fmt.Errorf("bridge name %q is longer than %d bytes", c.Bridge, maxIfNameLen)
	case !c.Subnet.Addr().Is4():
		return c, fmt.Errorf("pod subnet %s: only IPv4 is supported", c.Subnet)
	case !c.Subnet.Contains(c.Gateway) || c.Gateway == c.Subnet.Addr():
		return c, fmt.Errorf("gateway %s is not a host address of subnet %s", c.Gateway, c.Subnet)
	case c.MTU < 0 || c.MTU > 65535:
		return c, fmt.Errorf("invalid MTU %d", c.MTU)
	case c.DataDir == "":
		return c, fmt.Errorf("network %q has no IPAM data directory", c.Bridge)
	}
	return c, c.checkRoutes()
}

// checkRoutes refuses non-IPv4 routes and next hops outside the subnet.
func (c Config) checkRoutes() error {
	for _, r := range c.Routes {
		if !r.Dst.IsValid() || !r.Dst.Addr().Is4() {
			return fmt.Errorf("route to %s: only IPv4 routes are supported", r.Dst)
		}
		if r.Via.IsValid() && !c.Subnet.Contains(r.Via) {
			return fmt.Errorf("route to %s: next hop %s is outside subnet %s", r.Dst, r.Via, c.Subnet)
		}
	}
	return nil
}

// podRoutes lists the routes the pod gets, each with its next hop.
func (c Config) podRoutes() []Route {
	var routes []Route
	if !c.NoDefaultRoute {
		routes = append(routes, Route{Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Via: c.Gateway})
	}
	for _, r := range c.Routes {
		if !r.Via.IsValid() {
			r.Via = c.Gateway
		}
		routes = append(routes, r)
	}
	return routes
}

// gatewayPrefix is the bridge's address: the gateway with the subnet's length.
func (c Config) gatewayPrefix() netip.Prefix {
	return netip.PrefixFrom(c.Gateway, c.Subnet.Bits())
}
