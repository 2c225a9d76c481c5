package cni

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// HostPort is one host port mapping and the pod holding it, for views.
type HostPort struct {
	PortMapping
	// PodUID holds it; PodIP is where it goes.
	PodUID string
	PodIP  netip.Addr
}

// HostPorts lists the network's host port mappings.
func HostPorts(c Config) ([]HostPort, error) {
	c, err := c.normalize()
	if err != nil {
		return nil, err
	}
	s, err := readPortState(c)
	if err != nil {
		return nil, err
	}
	out := make([]HostPort, 0, len(s.Mappings))
	for _, m := range s.Mappings {
		out = append(out, HostPort{PortMapping: m.PortMapping, PodUID: m.Pod, PodIP: m.PodIP})
	}
	return out, nil
}

// LinkView is what a picture of the network shows of one interface.
type LinkView struct {
	// Name, Index and MAC of the interface (Index is per network namespace).
	Name  string
	Index int
	MAC   string
	// Addrs are its IPv4 addresses with their prefix length.
	Addrs []string
	// PeerIndex is, for a veth, the ifindex of its peer in the peer's namespace.
	PeerIndex int
	// Master is the bridge it is a port of, if any.
	Master string
	// Up is the administrative state.
	Up bool
}

// ViewLink describes the interface name in the network namespace at
// netnsPath ("" for the host's).
func ViewLink(netnsPath, name string) (*LinkView, error) {
	h := &netlink.Handle{}
	if netnsPath != "" {
		ns, err := netns.GetFromPath(netnsPath)
		if err != nil {
			return nil, fmt.Errorf("failed to open network namespace %q: %w", netnsPath, err)
		}
		defer ns.Close()
		if h, err = netlink.NewHandleAt(ns); err != nil {
			return nil, fmt.Errorf("failed to open netlink in %q: %w", netnsPath, err)
		}
		defer h.Close()
	}
	l, err := h.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("failed to find %s in %q: %w", name, netnsPathOrHost(netnsPath), err)
	}
	a := l.Attrs()
	v := &LinkView{Name: a.Name, Index: a.Index, MAC: a.HardwareAddr.String(), Up: a.Flags&net.FlagUp != 0}
	if _, ok := l.(*netlink.Veth); ok {
		v.PeerIndex = a.ParentIndex // IFLA_LINK: the peer's ifindex in its namespace
	}
	if a.MasterIndex != 0 {
		if m, err := h.LinkByIndex(a.MasterIndex); err == nil {
			v.Master = m.Attrs().Name
		}
	}
	addrs, err := h.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("failed to list addresses of %s: %w", name, err)
	}
	for _, ad := range addrs {
		if p, ok := prefixOf(ad.IPNet); ok {
			v.Addrs = append(v.Addrs, p.String())
		}
	}
	return v, nil
}

func netnsPathOrHost(p string) string {
	if p == "" {
		return "the host's network namespace"
	}
	return p
}
