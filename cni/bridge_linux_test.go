package cni

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

// addHostLink creates a host veth pair named name (peer name+"p"), optionally
// with addr, and deletes it in Cleanup.
func addHostLink(t *testing.T, name string, addr netip.Prefix) netlink.Link {
	t.Helper()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	link := &netlink.Veth{LinkAttrs: attrs, PeerName: name + "p"}
	if err := netlink.LinkAdd(link); err != nil {
		t.Fatalf("create %q: %v", name, err)
	}
	t.Cleanup(func() {
		if err := deleteLink(name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if addr.IsValid() {
		if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: ipNet(addr)}); err != nil {
			t.Fatalf("add %s to %q: %v", addr, name, err)
		}
	}
	return link
}

func TestEnsureBridgeCreatesAndAdopts(t *testing.T) {
	c := testConfig(t)
	br, err := EnsureBridge(c)
	if err != nil {
		t.Fatal(err)
	}
	again, err := EnsureBridge(c)
	if err != nil {
		t.Fatalf("adopting the existing bridge: %v", err)
	}
	if again.Attrs().Index != br.Attrs().Index {
		t.Fatalf("second EnsureBridge returned link #%d, want #%d", again.Attrs().Index, br.Attrs().Index)
	}
	addrs, err := netlink.AddrList(again, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 1 || addrs[0].IPNet.String() != c.gatewayPrefix().String() {
		t.Fatalf("bridge addresses = %v, want only %s", addrs, c.gatewayPrefix())
	}
	if again.Attrs().OperState != netlink.OperUp && again.Attrs().Flags&1 == 0 {
		t.Fatalf("bridge %q is not up", c.Bridge)
	}
}

func TestEnsureBridgeRefuses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, c *Config) // sets the scene, may change c
		want    []string                      // substrings of the error
	}{{
		name: "address in the subnet on another link",
		prepare: func(t *testing.T, c *Config) {
			addHostLink(t, "pd"+randHex(t, 6), netip.PrefixFrom(c.Subnet.Addr().Next().Next(), 28))
		},
		want: []string{"overlaps address", "pd"},
	}, {
		name: "route to part of the subnet via another link",
		prepare: func(t *testing.T, c *Config) {
			name := "pd" + randHex(t, 6)
			link := addHostLink(t, name, netip.Prefix{})
			if err := netlink.LinkSetUp(link); err != nil {
				t.Fatal(err)
			}
			dst := netip.PrefixFrom(c.Subnet.Addr(), 26)
			if err := netlink.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: ipNet(dst)}); err != nil {
				t.Fatal(err)
			}
		},
		want: []string{"overlaps route", "pd"},
	}, {
		name: "bridge carrying another subnet",
		prepare: func(t *testing.T, c *Config) {
			if _, err := EnsureBridge(*c); err != nil {
				t.Fatal(err)
			}
			c.Subnet = netip.PrefixFrom(c.Subnet.Addr(), 25)
		},
		want: []string{"carries"},
	}, {
		name: "bridge of another peapod root",
		prepare: func(t *testing.T, c *Config) {
			if _, err := EnsureBridge(*c); err != nil {
				t.Fatal(err)
			}
			c.DataDir = filepath.Join(t.TempDir(), "other-root")
		},
		want: []string{"another peapod network"},
	}, {
		name: "link of that name that is not a bridge",
		prepare: func(t *testing.T, c *Config) {
			addHostLink(t, c.Bridge, netip.Prefix{})
		},
		want: []string{"not a bridge"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig(t)
			tc.prepare(t, &c)
			_, err := EnsureBridge(c)
			if err == nil {
				t.Fatal("EnsureBridge succeeded, want a refusal")
			}
			for _, w := range append(tc.want, c.Bridge) {
				if w == c.Bridge && strings.Contains(err.Error(), "overlaps") {
					w = c.Subnet.String() // overlap errors name the subnet, not the bridge
				}
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
