package plugin

import (
	"context"
	"errors"
	"github.com/peapod/peapod/internal/testutil"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/peapod/peapod/cni"
	"github.com/peapod/peapod/cni/internal/nettest"
	"github.com/vishvananda/netlink"
)

// hostVeth is the result's host interface (not in a sandbox, not the bridge).
func hostVeth(t *testing.T, n testNet, ifaces []string) string {
	t.Helper()
	for _, name := range ifaces {
		if name != n.bridge {
			return name
		}
	}
	t.Fatalf("no host veth among %v", ifaces)
	return ""
}

func TestAddCheckDel(t *testing.T) {
	n := newTestNet(t)
	list := n.conflist(t, "1.0.0", n.pluginJSON("peapod-cni"))
	cc := n.cniConfig(binDir)
	ctx := context.Background()
	nsPath := nettest.NewNetns(t)
	rt := &libcni.RuntimeConf{ContainerID: "ctr-a", NetNS: nsPath, IfName: "eth0"}
	res := add(t, cc, list, rt)

	ip := podIP(t, res)
	if !n.subnet.Contains(ip.Addr()) || ip.Bits() != n.subnet.Bits() {
		t.Fatalf("pod address %s is not a host of %s", ip, n.subnet)
	}
	if len(res.Interfaces) != 3 || res.Interfaces[0].Name != n.bridge || res.Interfaces[2].Sandbox != nsPath || res.Interfaces[2].Name != "eth0" {
		t.Fatalf("interfaces = %v, want bridge, host veth, eth0 in %s", res.Interfaces, nsPath)
	}
	// the lease is host-local's: "<container id>\r\n<ifname>" named by the IP
	lease, err := os.ReadFile(filepath.Join(n.dataDir, n.name, ip.Addr().String()))
	if err != nil || string(lease) != "ctr-a\r\neth0" {
		t.Fatalf("lease file = %q, %v; want host-local's %q", lease, err, "ctr-a\r\neth0")
	}
	if err := cc.CheckNetworkList(ctx, list, rt); err != nil {
		t.Fatalf("CHECK of a fresh attachment: %v", err)
	}
	// the host reaches the pod through the bridge, from the gateway address
	srv := nettest.Serve(t, nsPath, netip.AddrPortFrom(ip.Addr(), 0))
	if got, err := nettest.PeerSeen("", srv); err != nil || got != n.subnet.Addr().Next().String() {
		t.Fatalf("host → pod: server saw %q, %v; want the gateway %s", got, err, n.subnet.Addr().Next())
	}

	for i := range 2 { // DEL twice: the second finds nothing and succeeds
		if err := cc.DelNetworkList(ctx, list, rt); err != nil {
			t.Fatalf("DEL #%d: %v", i+1, err)
		}
	}
	veth := hostVeth(t, n, []string{res.Interfaces[0].Name, res.Interfaces[1].Name})
	if nettest.LinkExists(t, veth) {
		t.Errorf("host veth %q survived DEL", veth)
	}
	if _, err := os.Stat(filepath.Join(n.dataDir, n.name, ip.Addr().String())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lease survived DEL: %v", err)
	}
	never := &libcni.RuntimeConf{ContainerID: "never-added", NetNS: nettest.NewNetns(t), IfName: "eth0"}
	if err := cc.DelNetworkList(ctx, list, never); err != nil {
		t.Fatalf("DEL without ADD: %v", err)
	}
}

func TestCheckFailsWhenBroken(t *testing.T) {
	for _, tc := range []struct {
		name    string
		breakIt func(t *testing.T, nsPath, hostVeth string, ip netip.Prefix)
		want    string
	}{{
		name: "address deleted",
		breakIt: func(t *testing.T, nsPath, _ string, ip netip.Prefix) {
			err := nettest.InNetns(nsPath, func() error {
				link, err := netlink.LinkByName("eth0")
				if err != nil {
					return err
				}
				addr, err := netlink.ParseAddr(ip.String())
				if err != nil {
					return err
				}
				return netlink.AddrDel(link, addr)
			})
			if err != nil {
				t.Fatal(err)
			}
		},
		want: "address",
	}, {
		name: "veth deleted",
		breakIt: func(t *testing.T, _, hostVeth string, _ netip.Prefix) {
			if err := nettest.DeleteLink(hostVeth); err != nil {
				t.Fatal(err)
			}
		},
		want: "host veth",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestNet(t)
			list := n.conflist(t, "1.0.0", n.pluginJSON("peapod-cni"))
			cc := n.cniConfig(binDir)
			nsPath := nettest.NewNetns(t)
			rt := &libcni.RuntimeConf{ContainerID: "ctr-b", NetNS: nsPath, IfName: "eth0"}
			res := add(t, cc, list, rt)
			tc.breakIt(t, nsPath, hostVeth(t, n, []string{res.Interfaces[0].Name, res.Interfaces[1].Name}), podIP(t, res))
			err := cc.CheckNetworkList(context.Background(), list, rt)
			if err == nil || !strings.Contains(err.Error(), cni.ErrAttachmentBroken.Error()) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CHECK after the break: err = %v, want %q about %q", err, cni.ErrAttachmentBroken, tc.want)
			}
		})
	}
}

func TestChainedWithPortmap(t *testing.T) {
	_, err := os.Stat(filepath.Join(refPluginDir, "portmap"))
	testutil.Requiref(t, err == nil, "Debian's containernetworking-plugins are not installed: %v", err)
	nettest.CleanupIptablesTables(t)
	n := newTestNet(t)
	peer := nettest.NewPeer(t, nettest.Subnet(t, nettest.BlockPlugin))
	portmap := map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}}
	list := n.conflist(t, "1.0.0", n.pluginJSON("peapod-cni"), portmap)
	cc := n.cniConfig(binDir, refPluginDir)
	nsPath := nettest.NewNetns(t)
	const hostPort = 23456
	rt := &libcni.RuntimeConf{
		ContainerID: "ctr-pm", NetNS: nsPath, IfName: "eth0",
		CapabilityArgs: map[string]any{"portMappings": []map[string]any{
			{"hostPort": hostPort, "containerPort": 8080, "protocol": "tcp", "hostIP": peer.HostIP.String()},
		}},
	}
	res := add(t, cc, list, rt)
	ip := podIP(t, res)
	nettest.Serve(t, nsPath, netip.AddrPortFrom(ip.Addr(), 8080))
	got, err := nettest.PeerSeen(peer.Netns, netip.AddrPortFrom(peer.HostIP, hostPort))
	if err != nil {
		t.Fatalf("through portmap's mapping: %v", err)
	}
	if got != peer.NsIP.String() {
		t.Fatalf("pod saw client %s, want %s", got, peer.NsIP)
	}
}

func TestGCAndStatus(t *testing.T) {
	n := newTestNet(t)
	n.subnet = netip.PrefixFrom(n.subnet.Addr(), 29) // 5 leasable addresses
	list := n.conflist(t, "1.1.0", n.pluginJSON("peapod-cni"))
	cc := n.cniConfig(binDir)
	ctx := context.Background()
	if err := cc.GetStatusNetworkList(ctx, list); err != nil {
		t.Fatalf("STATUS of an empty network: %v", err)
	}
	kept := &libcni.RuntimeConf{ContainerID: "kept", NetNS: nettest.NewNetns(t), IfName: "eth0"}
	keptRes := add(t, cc, list, kept)
	// "stale" goes through a second cache, so libcni's own GC pass (a DEL per
	// cached attachment not valid) does not know it: only the plugin's GC verb
	// can remove it
	other := libcni.NewCNIConfigWithCacheDir([]string{binDir}, t.TempDir(), nil)
	stale := &libcni.RuntimeConf{ContainerID: "stale", NetNS: nettest.NewNetns(t), IfName: "eth0"}
	staleRes := add(t, other, list, stale)
	for i := range 3 { // fill the /29
		add(t, other, list, &libcni.RuntimeConf{ContainerID: "fill" + string(rune('0'+i)), NetNS: nettest.NewNetns(t), IfName: "eth0"})
	}
	err := cc.GetStatusNetworkList(ctx, list)
	var cniErr *types.Error
	if !errors.As(err, &cniErr) || cniErr.Code != types.ErrPluginNotAvailable {
		t.Fatalf("STATUS of a full network: err = %v, want code %d", err, types.ErrPluginNotAvailable)
	}

	valid := []types.GCAttachment{{ContainerID: "kept", IfName: "eth0"}}
	if err := cc.GCNetworkList(ctx, list, &libcni.GCArgs{ValidAttachments: valid}); err != nil {
		t.Fatalf("GC: %v", err)
	}
	staleVeth := hostVeth(t, n, []string{staleRes.Interfaces[0].Name, staleRes.Interfaces[1].Name})
	if nettest.LinkExists(t, staleVeth) {
		t.Errorf("GC left the stale attachment's veth %q", staleVeth)
	}
	if _, err := os.Stat(filepath.Join(n.dataDir, n.name, podIP(t, staleRes).Addr().String())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("GC left the stale lease: %v", err)
	}
	if err := cc.CheckNetworkList(ctx, list, kept); err != nil {
		t.Fatalf("CHECK of the kept attachment after GC: %v", err)
	}
	if !nettest.LinkExists(t, hostVeth(t, n, []string{keptRes.Interfaces[0].Name, keptRes.Interfaces[1].Name})) {
		t.Fatal("GC removed the kept attachment's veth")
	}
	if err := cc.GetStatusNetworkList(ctx, list); err != nil {
		t.Fatalf("STATUS after GC freed addresses: %v", err)
	}
}
