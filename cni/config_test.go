package cni

import (
	"net/netip"
	"testing"
)

func TestHostVethName(t *testing.T) {
	c := DefaultConfig("/var/lib/peapod")
	a, b := HostVethName(c, "uid-a"), HostVethName(c, "uid-b")
	other := c
	other.Bridge = "peapod1"
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"deterministic", HostVethName(c, "uid-a") == a},
		{"per pod", a != b},
		{"per bridge", HostVethName(other, "uid-a") != a},
		{"fits IFNAMSIZ", len(a) <= maxIfNameLen && len(a) == 12},
	} {
		if !tc.ok {
			t.Errorf("%s: names %q %q", tc.name, a, b)
		}
	}
}

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		name    string
		c       Config
		wantErr bool
		wantGW  string
	}{
		{"defaults", Config{DataDir: "/d"}, false, "10.220.0.1"},
		{"gateway from subnet", Config{Subnet: netip.MustParsePrefix("10.221.3.7/24"), DataDir: "/d"}, false, "10.221.3.1"},
		{"gateway outside", Config{Subnet: netip.MustParsePrefix("10.221.3.0/24"), Gateway: netip.MustParseAddr("10.9.9.9"), DataDir: "/d"}, true, ""},
		{"long bridge name", Config{Bridge: "a-very-long-bridge", DataDir: "/d"}, true, ""},
		{"no data dir", Config{}, true, ""},
		{"ipv6", Config{Subnet: netip.MustParsePrefix("fd00::/64"), DataDir: "/d"}, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.c.normalize()
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err == nil && got.Gateway.String() != tc.wantGW {
				t.Fatalf("gateway = %s, want %s", got.Gateway, tc.wantGW)
			}
		})
	}
}
