package plugin

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/peapod/peapod/cni"
	"github.com/peapod/peapod/cni/ipam"
)

// About is printed by the binary when run without CNI_COMMAND.
const About = "peapod-cni: peapod's bridge network as a CNI plugin"

// Versions are the CNI spec versions peapod-cni speaks.
var Versions = version.PluginSupports("1.0.0", "1.1.0")

// Main runs the plugin: the whole of cmd/peapod-cni.
func Main() {
	skel.PluginMainFuncs(skel.CNIFuncs{
		Add:    cmdAdd,
		Del:    cmdDel,
		Check:  cmdCheck,
		GC:     cmdGC,
		Status: cmdStatus,
	}, Versions, About)
}

// attachment names the interface a CNI call is about; the container id is
// the owner in IPAM, as for host-local.
func attachment(args *skel.CmdArgs) cni.Attachment {
	return cni.Attachment{Owner: args.ContainerID, IfName: args.IfName, NetnsPath: args.Netns}
}

// cmdAdd attaches the container's netns to the bridge and prints the result.
func cmdAdd(args *skel.CmdArgs) error {
	conf, c, err := ParseConfig(args.StdinData)
	if err != nil {
		return types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	}
	res, err := cni.Attach(c, attachment(args))
	if err != nil {
		return err
	}
	return types.PrintResult(newResult(conf, res, args.Netns), conf.CNIVersion)
}

// newResult is the CNI result of an attachment: interfaces in the bridge
// plugin's order (bridge, host veth, container interface), the IP on the
// container interface, the routes and the configured DNS.
func newResult(conf *NetConf, res *cni.Result, netnsPath string) *current.Result {
	const containerIface = 2
	r := &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{
			{Name: res.Bridge, Mac: res.BridgeMAC},
			{Name: res.HostVeth, Mac: res.HostVethMAC},
			{Name: res.IfName, Mac: res.MAC, Sandbox: netnsPath},
		},
		IPs: []*current.IPConfig{{
			Interface: current.Int(containerIface),
			Address:   *prefixNet(res.IP),
			Gateway:   net.IP(res.Gateway.AsSlice()),
		}},
		DNS: conf.DNS,
	}
	for _, rt := range res.Routes {
		r.Routes = append(r.Routes, &types.Route{Dst: *prefixNet(rt.Dst.Masked()), GW: net.IP(rt.Via.AsSlice())})
	}
	return r
}

// prefixNet converts a prefix, host bits kept, to a net.IPNet.
func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// cmdDel detaches the container; nothing there is success, as the spec asks.
func cmdDel(args *skel.CmdArgs) error {
	_, c, err := ParseConfig(args.StdinData)
	if err != nil {
		return types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	}
	return cni.Detach(c, attachment(args))
}

// cmdCheck verifies the attachment against the address of prevResult.
func cmdCheck(args *skel.CmdArgs) error {
	conf, c, err := ParseConfig(args.StdinData)
	if err != nil {
		return types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	}
	want, err := prevAddress(conf, args)
	if err != nil {
		return err
	}
	return cni.Verify(c, attachment(args), want)
}

// prevAddress finds, in prevResult, the IPv4 address of the container
// interface named ifName in the container's netns.
func prevAddress(conf *NetConf, args *skel.CmdArgs) (netip.Prefix, error) {
	if conf.RawPrevResult == nil {
		return netip.Prefix{}, fmt.Errorf("CHECK without prevResult")
	}
	if err := version.ParsePrevResult(&conf.PluginConf); err != nil {
		return netip.Prefix{}, fmt.Errorf("failed to parse prevResult: %w", err)
	}
	prev, err := current.NewResultFromResult(conf.PrevResult)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("failed to convert prevResult: %w", err)
	}
	for _, ipc := range prev.IPs {
		// The index comes from whoever ran the previous plugin: check both ends.
		if ipc.Interface == nil || *ipc.Interface < 0 || *ipc.Interface >= len(prev.Interfaces) {
			continue
		}
		iface := prev.Interfaces[*ipc.Interface]
		if iface.Name != args.IfName || iface.Sandbox != args.Netns {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipc.Address.IP.To4())
		if !ok {
			continue
		}
		ones, bits := ipc.Address.Mask.Size()
		if bits == 8*net.IPv6len {
			ones -= 96 // an IPv4-mapped address: its mask counts the 96-bit prefix too
		}
		if p := netip.PrefixFrom(ip, ones); p.IsValid() {
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("prevResult has no IPv4 address on %s in %q", args.IfName, args.Netns)
}

// cmdGC removes the leases and bridge ports of every attachment not in
// cni.dev/valid-attachments.
func cmdGC(args *skel.CmdArgs) error {
	conf, c, err := ParseConfig(args.StdinData)
	if err != nil {
		return types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	}
	valid := map[cni.Attachment]bool{}
	for _, a := range conf.ValidAttachments {
		valid[cni.Attachment{Owner: a.ContainerID, IfName: a.IfName}] = true
	}
	_, err = cni.GCAttachments(c, func(a cni.Attachment) bool { return valid[a] }, false)
	return err
}

// cmdStatus reports whether an ADD can succeed: the lease directory is
// usable and holds a free address.
func cmdStatus(args *skel.CmdArgs) error {
	_, c, err := ParseConfig(args.StdinData)
	if err != nil {
		return types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	}
	store, err := ipam.Open(c.DataDir, c.Subnet, c.Gateway)
	if err != nil {
		return types.NewError(types.ErrPluginNotAvailable, err.Error(), "")
	}
	leases, err := store.Leases()
	if err != nil {
		return types.NewError(types.ErrPluginNotAvailable, err.Error(), "")
	}
	// network, gateway and broadcast are never leased
	size := 1<<(32-c.Subnet.Bits()) - 3
	if len(leases) >= size {
		msg := fmt.Sprintf("%v in %s: %d of %d addresses leased", ipam.ErrExhausted, c.Subnet, len(leases), size)
		return types.NewError(types.ErrPluginNotAvailable, msg, "")
	}
	return nil
}
