// Package cni is peapod's flat pod network, run in-process: one Linux bridge,
// a veth pair per pod and host-local-style IPAM (package ipam). The CLI calls
// it directly, with no fork/exec per pod; cmd/peapod-cni wraps the same code
// as a standard CNI plugin. The supervisor never links it.
package cni

import (
	"fmt"
	"net/netip"
	"path/filepath"
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
}

// Result is what SetupPod gave a pod.
type Result struct {
	IP       netip.Prefix // the pod's address with the subnet's length
	Gateway  netip.Addr   // the pod's default route
	HostVeth string       // the host end of the pod's veth pair
	MAC      string       // eth0's hardware address inside the pod
	Bridge   string       // the bridge HostVeth is a port of
}

// DefaultConfig is the default network of a peapod root.
func DefaultConfig(root string) Config {
	return Config{
		Bridge:  DefaultBridge,
		Subnet:  DefaultSubnet,
		Gateway: DefaultSubnet.Addr().Next(),
		DataDir: filepath.Join(root, "net", DefaultBridge),
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
	case c.MTU < 0:
		return c, fmt.Errorf("invalid MTU %d", c.MTU)
	case c.DataDir == "":
		return c, fmt.Errorf("network %q has no IPAM data directory", c.Bridge)
	}
	return c, nil
}

// gatewayPrefix is the bridge's address: the gateway with the subnet's length.
func (c Config) gatewayPrefix() netip.Prefix {
	return netip.PrefixFrom(c.Gateway, c.Subnet.Bits())
}
