package plugin

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/peapod/peapod/cni"
)

func TestParseConfig(t *testing.T) {
	subnet := netip.MustParsePrefix("10.225.7.0/24")
	defaultRoute := cni.Route{Dst: netip.MustParsePrefix("0.0.0.0/0")}
	for _, tc := range []struct {
		name    string
		json    string
		want    cni.Config // compared when wantErr is ""
		wantErr string
	}{{
		name: "reference bridge conflist entry",
		json: `{"cniVersion":"1.0.0","name":"net1","type":"peapod-cni","bridge":"br9","isGateway":true,"ipMasq":true,"mtu":1400,"hairpinMode":true,
			"ipam":{"type":"host-local","ranges":[[{"subnet":"10.225.7.0/24","gateway":"10.225.7.254"}]],"routes":[{"dst":"0.0.0.0/0"}],"dataDir":"/tmp/x"}}`,
		want: cni.Config{Bridge: "br9", Subnet: subnet, Gateway: netip.MustParseAddr("10.225.7.254"), MTU: 1400, DataDir: "/tmp/x/net1",
			IPMasq: true, NoDefaultRoute: true, Routes: []cni.Route{defaultRoute}, HairpinMode: true},
	}, {
		name: "old subnet form and defaults",
		json: `{"cniVersion":"1.0.0","name":"net1","type":"peapod-cni","ipam":{"type":"host-local","subnet":"10.225.7.9/24"}}`,
		want: cni.Config{Bridge: "cni0", Subnet: subnet, Gateway: netip.MustParseAddr("10.225.7.1"), DataDir: "/var/lib/cni/networks/net1",
			NoBridgeAddr: true, NoDefaultRoute: true},
	}, {
		name: "isDefaultGateway implies isGateway and a default route",
		json: `{"name":"n","ipam":{"type":"host-local","subnet":"10.225.7.0/24","routes":[{"dst":"10.9.0.0/16","gw":"10.225.7.3"}]},"isDefaultGateway":true}`,
		want: cni.Config{Bridge: "cni0", Subnet: subnet, Gateway: netip.MustParseAddr("10.225.7.1"), DataDir: "/var/lib/cni/networks/n",
			Routes: []cni.Route{{Dst: netip.MustParsePrefix("10.9.0.0/16"), Via: netip.MustParseAddr("10.225.7.3")}}},
	}, {
		name:    "other IPAM",
		json:    `{"name":"n","ipam":{"type":"dhcp"}}`,
		wantErr: `ipam type "dhcp" is not supported`,
	}, {
		name:    "no name",
		json:    `{"ipam":{"type":"host-local","subnet":"10.225.7.0/24"}}`,
		wantErr: "missing network name",
	}, {
		name:    "two ranges",
		json:    `{"name":"n","ipam":{"type":"host-local","ranges":[[{"subnet":"10.225.7.0/24"},{"subnet":"10.225.8.0/24"}]]}}`,
		wantErr: "exactly one range",
	}, {
		name:    "IPv6",
		json:    `{"name":"n","ipam":{"type":"host-local","ranges":[[{"subnet":"fd00::/64"}]]}}`,
		wantErr: "only IPv4",
	}, {
		name:    "rangeStart",
		json:    `{"name":"n","ipam":{"type":"host-local","ranges":[[{"subnet":"10.225.7.0/24","rangeStart":"10.225.7.10"}]]}}`,
		wantErr: "rangeStart",
	}, {
		name:    "vlan",
		json:    `{"name":"n","vlan":5,"ipam":{"type":"host-local","subnet":"10.225.7.0/24"}}`,
		wantErr: "vlan",
	}, {
		name:    "bad route",
		json:    `{"name":"n","ipam":{"type":"host-local","subnet":"10.225.7.0/24","routes":[{"dst":"nope"}]}}`,
		wantErr: `route dst "nope"`,
	}, {
		name:    "not JSON",
		json:    `{`,
		wantErr: "failed to parse",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			_, got, err := ParseConfig([]byte(tc.json))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !configEqual(got, tc.want) {
				t.Fatalf("config =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

// configEqual compares two configs, Routes by value.
func configEqual(a, b cni.Config) bool {
	ra, rb := a.Routes, b.Routes
	a.Routes, b.Routes = nil, nil
	return reflect.DeepEqual(a, b) && slices.Equal(ra, rb)
}

func TestNewResult(t *testing.T) {
	conf := &NetConf{}
	conf.DNS.Nameservers = []string{"10.225.7.1"}
	res := &cni.Result{
		IP: netip.MustParsePrefix("10.225.7.5/24"), Gateway: netip.MustParseAddr("10.225.7.1"),
		HostVeth: "pp0123456789", HostVethMAC: "02:00:00:00:00:01", MAC: "02:00:00:00:00:02",
		Bridge: "br9", BridgeMAC: "02:00:00:00:00:03", IfName: "net1",
		Routes: []cni.Route{{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("10.225.7.1")}},
	}
	r := newResult(conf, res, "/run/netns/x")
	if len(r.Interfaces) != 3 || r.Interfaces[2].Name != "net1" || r.Interfaces[2].Sandbox != "/run/netns/x" ||
		r.Interfaces[1].Name != "pp0123456789" || r.Interfaces[1].Sandbox != "" || r.Interfaces[0].Mac != "02:00:00:00:00:03" {
		t.Fatalf("interfaces = %+v %+v %+v", r.Interfaces[0], r.Interfaces[1], r.Interfaces[2])
	}
	if len(r.IPs) != 1 || *r.IPs[0].Interface != 2 || r.IPs[0].Address.String() != "10.225.7.5/24" || r.IPs[0].Gateway.String() != "10.225.7.1" {
		t.Fatalf("IPs = %+v", r.IPs[0])
	}
	if len(r.Routes) != 1 || r.Routes[0].Dst.String() != "0.0.0.0/0" || r.Routes[0].GW.String() != "10.225.7.1" {
		t.Fatalf("routes = %+v", r.Routes)
	}
	if !slices.Equal(r.DNS.Nameservers, conf.DNS.Nameservers) {
		t.Fatalf("DNS = %+v", r.DNS)
	}
}
