// Package plugin is peapod-cni: peapod's in-process pod network (package
// cni) behind the CNI protocol. It reads the reference bridge plugin's
// configuration where the keys mean the same, and does host-local IPAM
// in-process with lease files host-local can read, so "type": "bridge" can
// become "type": "peapod-cni" in an existing conflist.
package plugin

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/utils"
	"github.com/peapod/peapod/cni"
)

const (
	// defaultBridge is the reference bridge plugin's default bridge name.
	defaultBridge = "cni0"
	// defaultDataDir is host-local's default lease directory; leases of a
	// network live in <dataDir>/<network name>.
	defaultDataDir = "/var/lib/cni/networks"
	// hostLocal is the only IPAM type peapod-cni handles.
	hostLocal = "host-local"
)

// NetConf is the plugin's configuration: the bridge plugin's keys.
type NetConf struct {
	types.PluginConf
	Bridge           string   `json:"bridge"`           // bridge name; default cni0
	IsGateway        bool     `json:"isGateway"`        // the bridge carries the gateway address
	IsDefaultGateway bool     `json:"isDefaultGateway"` // also a default route via it (implies isGateway)
	IPMasq           bool     `json:"ipMasq"`           // masquerade traffic leaving the subnet
	MTU              int      `json:"mtu"`              // bridge and veth MTU; 0 = kernel default
	HairpinMode      bool     `json:"hairpinMode"`      // hairpin mode on the host veth port
	IPAM             IPAMConf `json:"ipam"`             // host-local's configuration

	// keys of the bridge plugin whose behaviour peapod-cni lacks: refused
	// rather than silently ignored
	Vlan        int             `json:"vlan"`        // refused if set
	VlanTrunk   json.RawMessage `json:"vlanTrunk"`   // refused if set
	PromiscMode bool            `json:"promiscMode"` // refused if set
}

// IPAMConf is host-local's configuration, as far as peapod-cni reads it.
type IPAMConf struct {
	Type    string        `json:"type"`    // must be host-local
	Subnet  string        `json:"subnet"`  // the old single-range form
	Gateway string        `json:"gateway"` // with Subnet
	Ranges  [][]RangeConf `json:"ranges"`  // the current form; one IPv4 range
	Routes  []RouteConf   `json:"routes"`  // routes for the pod
	DataDir string        `json:"dataDir"` // lease directory root; default /var/lib/cni/networks

	RangeStart string `json:"rangeStart"` // refused if set: the whole subnet is leased
	RangeEnd   string `json:"rangeEnd"`   // refused if set
	ResolvConf string `json:"resolvConf"` // refused if set: no DNS from a file
}

// RangeConf is one host-local range.
type RangeConf struct {
	Subnet     string `json:"subnet"`     // the range's subnet
	Gateway    string `json:"gateway"`    // default: the subnet's first address
	RangeStart string `json:"rangeStart"` // refused if set
	RangeEnd   string `json:"rangeEnd"`   // refused if set
}

// RouteConf is one host-local route.
type RouteConf struct {
	Dst string `json:"dst"` // destination prefix
	GW  string `json:"gw"`  // next hop; default the gateway
}

// ParseConfig decodes stdin and maps it onto a cni.Config.
func ParseConfig(stdin []byte) (*NetConf, cni.Config, error) {
	var conf NetConf
	if err := json.Unmarshal(stdin, &conf); err != nil {
		return nil, cni.Config{}, fmt.Errorf("failed to parse network configuration: %w", err)
	}
	c, err := conf.netConfig()
	if err != nil {
		return nil, cni.Config{}, fmt.Errorf("network %q: %w", conf.Name, err)
	}
	return &conf, c, nil
}

// netConfig checks the configuration and maps it onto a cni.Config.
func (n *NetConf) netConfig() (cni.Config, error) {
	if err := n.refuseUnsupported(); err != nil {
		return cni.Config{}, err
	}
	subnet, gateway, err := n.IPAM.subnet()
	if err != nil {
		return cni.Config{}, err
	}
	routes, hasDefault, err := n.IPAM.routes()
	if err != nil {
		return cni.Config{}, err
	}
	c := cni.Config{
		Bridge:         n.Bridge,
		Subnet:         subnet,
		Gateway:        gateway,
		MTU:            n.MTU,
		DataDir:        filepath.Join(n.IPAM.DataDir, n.Name),
		IPMasq:         n.IPMasq,
		NoBridgeAddr:   !n.IsGateway && !n.IsDefaultGateway,
		NoDefaultRoute: !n.IsDefaultGateway || hasDefault,
		Routes:         routes,
		HairpinMode:    n.HairpinMode,
	}
	if c.Bridge == "" {
		c.Bridge = defaultBridge
	}
	if n.IPAM.DataDir == "" {
		c.DataDir = filepath.Join(defaultDataDir, n.Name)
	}
	return c, nil
}

// refuseUnsupported names the first key whose behaviour peapod-cni lacks.
func (n *NetConf) refuseUnsupported() error {
	switch {
	case n.Name == "":
		return fmt.Errorf("missing network name")
	case utils.ValidateNetworkName(n.Name) != nil:
		// The name is a directory under dataDir: "../x" would put the
		// leases elsewhere. libcni refuses such names too, but a plugin
		// may be run by any runtime.
		return fmt.Errorf("invalid characters found in network name: letters, digits, '_', '.' and '-' only, starting with a letter or digit")
	case n.IPAM.Type != hostLocal:
		return fmt.Errorf("ipam type %q is not supported: peapod-cni does %s IPAM in-process", n.IPAM.Type, hostLocal)
	case n.Vlan != 0 || len(n.VlanTrunk) > 0:
		return fmt.Errorf("vlan is not supported")
	case n.PromiscMode:
		return fmt.Errorf("promiscMode is not supported")
	case n.IPAM.RangeStart != "" || n.IPAM.RangeEnd != "":
		return fmt.Errorf("ipam rangeStart/rangeEnd are not supported: the whole subnet is leased")
	case n.IPAM.ResolvConf != "":
		return fmt.Errorf("ipam resolvConf is not supported")
	}
	return nil
}

// subnet returns the one IPv4 range, from ranges or the old subnet key, and
// its gateway (default: the subnet's first address, as host-local).
func (i IPAMConf) subnet() (netip.Prefix, netip.Addr, error) {
	r := RangeConf{Subnet: i.Subnet, Gateway: i.Gateway}
	switch {
	case len(i.Ranges) > 1 || len(i.Ranges) == 1 && len(i.Ranges[0]) != 1:
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("ipam ranges: exactly one range is supported")
	case len(i.Ranges) == 1 && i.Subnet != "":
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("ipam: both subnet and ranges are set")
	case len(i.Ranges) == 1:
		r = i.Ranges[0][0]
	}
	if r.RangeStart != "" || r.RangeEnd != "" {
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("ipam rangeStart/rangeEnd are not supported: the whole subnet is leased")
	}
	subnet, err := netip.ParsePrefix(r.Subnet)
	if err != nil {
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("ipam subnet %q: %w", r.Subnet, err)
	}
	if !subnet.Addr().Is4() {
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("ipam subnet %s: only IPv4 is supported", subnet)
	}
	subnet = subnet.Masked()
	gateway := subnet.Addr().Next()
	if r.Gateway != "" {
		if gateway, err = netip.ParseAddr(r.Gateway); err != nil {
			return netip.Prefix{}, netip.Addr{}, fmt.Errorf("ipam gateway %q: %w", r.Gateway, err)
		}
	}
	return subnet, gateway, nil
}

// routes parses the IPAM routes and reports whether one is a default route.
func (i IPAMConf) routes() ([]cni.Route, bool, error) {
	var routes []cni.Route
	hasDefault := false
	for _, rc := range i.Routes {
		dst, err := netip.ParsePrefix(rc.Dst)
		if err != nil {
			return nil, false, fmt.Errorf("ipam route dst %q: %w", rc.Dst, err)
		}
		r := cni.Route{Dst: dst.Masked()}
		if rc.GW != "" {
			if r.Via, err = netip.ParseAddr(rc.GW); err != nil {
				return nil, false, fmt.Errorf("ipam route gw %q: %w", rc.GW, err)
			}
		}
		hasDefault = hasDefault || dst.Bits() == 0
		routes = append(routes, r)
	}
	return routes, hasDefault, nil
}
