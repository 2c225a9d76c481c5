package chain

import (
	"errors"
	"net"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"
)

func TestSandboxIP(t *testing.T) {
	ipnet := func(s string) net.IPNet {
		ip, n, err := net.ParseCIDR(s)
		if err != nil {
			t.Fatal(err)
		}
		n.IP = ip
		return *n
	}
	ifaces := []*current.Interface{{Name: "br0"}, {Name: "veth1"}, {Name: "eth0", Sandbox: "/run/netns/x"}, {Name: "lo", Sandbox: "/run/netns/x"}}
	for _, tc := range []struct {
		name string
		res  *current.Result
		want string // "" = ErrNoPodIP
	}{
		{"bridge result", &current.Result{Interfaces: ifaces, IPs: []*current.IPConfig{
			{Interface: current.Int(3), Address: ipnet("127.0.0.1/8")},
			{Interface: current.Int(2), Address: ipnet("10.225.9.7/24")},
		}}, "10.225.9.7"},
		{"single address without interface", &current.Result{IPs: []*current.IPConfig{{Address: ipnet("10.225.9.8/24")}}}, "10.225.9.8"},
		{"address on a host interface only", &current.Result{Interfaces: ifaces, IPs: []*current.IPConfig{
			{Interface: current.Int(0), Address: ipnet("10.225.9.1/24")},
		}}, ""},
		{"IPv6 only", &current.Result{Interfaces: ifaces, IPs: []*current.IPConfig{
			{Interface: current.Int(2), Address: ipnet("fd00::5/64")},
		}}, ""},
		{"index out of range", &current.Result{Interfaces: ifaces, IPs: []*current.IPConfig{
			{Interface: current.Int(9), Address: ipnet("10.225.9.9/24")}, {Address: ipnet("10.225.9.10/24")},
		}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ip, err := sandboxIP(tc.res, "eth0")
			if tc.want == "" {
				if !errors.Is(err, ErrNoPodIP) {
					t.Fatalf("sandboxIP = %v, %v; want ErrNoPodIP", ip, err)
				}
				return
			}
			if err != nil || ip.String() != tc.want {
				t.Fatalf("sandboxIP = %v, %v; want %s", ip, err, tc.want)
			}
		})
	}
}
