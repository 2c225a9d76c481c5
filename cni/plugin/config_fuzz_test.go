//go:build linux

package plugin

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
)

// FuzzPluginConfig feeds peapod-cni's configuration parser and its CHECK
// prevResult reader whatever a runtime might pipe in. An accepted
// configuration names a usable IPv4 network whose lease directory lies
// inside the configured (or default) data directory; a prevResult yields a
// valid IPv4 prefix or an error, and neither panics.
func FuzzPluginConfig(f *testing.F) {
	f.Fuzz(func(t *testing.T, stdin []byte, ifName, netns string) {
		conf, c, err := ParseConfig(stdin)
		if err != nil {
			return
		}
		if !c.Subnet.IsValid() || !c.Subnet.Addr().Is4() || c.Subnet != c.Subnet.Masked() || !c.Gateway.IsValid() {
			t.Fatalf("config %q: subnet %v gateway %v", stdin, c.Subnet, c.Gateway)
		}
		base := conf.IPAM.DataDir
		if base == "" {
			base = defaultDataDir
		}
		if rel, err := filepath.Rel(base, c.DataDir); err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
			t.Fatalf("config %q: lease directory %q is not inside %q", stdin, c.DataDir, base)
		}
		for _, r := range c.Routes {
			if !r.Dst.IsValid() {
				t.Fatalf("config %q: route %+v", stdin, r)
			}
		}
		p, err := prevAddress(conf, &skel.CmdArgs{IfName: ifName, Netns: netns, StdinData: stdin})
		if err == nil && (!p.IsValid() || !p.Addr().Is4() || p != netip.PrefixFrom(p.Addr(), p.Bits())) {
			t.Fatalf("config %q: prevResult address %v", stdin, p)
		}
	})
}
