package cni

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestPortStateReplacePod(t *testing.T) {
	ip1, ip2 := netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")
	hostA := netip.MustParseAddr("192.0.2.1")
	held := func() *portState {
		return &portState{Mappings: []mappingRecord{
			{PortMapping: PortMapping{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}, Pod: "a", PodIP: ip1},
			{PortMapping: PortMapping{HostIP: hostA, HostPort: 53, ContainerPort: 53, Protocol: "udp"}, Pod: "a", PodIP: ip1},
		}}
	}
	for _, tc := range []struct {
		name    string
		pod     string
		ports   []PortMapping
		wantErr string // substring; "" = success
		wantLen int    // mappings after
	}{
		{"other port", "b", []PortMapping{{HostPort: 8081, ContainerPort: 80}}, "", 3},
		{"same port other protocol", "b", []PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "UDP"}}, "", 3},
		{"same port any address", "b", []PortMapping{{HostPort: 8080, ContainerPort: 81}}, `pod "a" holds tcp 0.0.0.0:8080`, 2},
		{"specific address under any", "b", []PortMapping{{HostIP: hostA, HostPort: 8080, ContainerPort: 81}}, `pod "a"`, 2},
		{"any address over specific", "b", []PortMapping{{HostPort: 53, ContainerPort: 53, Protocol: "udp"}}, `pod "a"`, 2},
		{"other specific address", "b", []PortMapping{{HostIP: netip.MustParseAddr("192.0.2.9"), HostPort: 53, ContainerPort: 53, Protocol: "udp"}}, "", 3},
		{"0.0.0.0 is any", "b", []PortMapping{{HostIP: netip.IPv4Unspecified(), HostPort: 8080, ContainerPort: 1}}, "already allocated", 2},
		{"same pod replaces its own", "a", []PortMapping{{HostPort: 8080, ContainerPort: 81}}, "", 1},
		{"duplicate within request", "b", []PortMapping{{HostPort: 9, ContainerPort: 1}, {HostPort: 9, ContainerPort: 2}}, `pod "b"`, 2},
		{"bad protocol", "b", []PortMapping{{HostPort: 9, ContainerPort: 1, Protocol: "icmp"}}, "unsupported protocol", 2},
		{"zero container port", "b", []PortMapping{{HostPort: 9}}, "1..65535", 2},
		{"IPv6 host address", "b", []PortMapping{{HostIP: netip.MustParseAddr("::1"), HostPort: 9, ContainerPort: 1}}, "IPv4", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := held()
			err := s.replacePod(tc.pod, ip2, tc.ports)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("replacePod: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("replacePod: err = %v, want one containing %q", err, tc.wantErr)
			case tc.wantErr != "" && strings.Contains(tc.wantErr, "holds") && !errors.Is(err, ErrPortAllocated):
				t.Fatalf("replacePod: err = %v, want ErrPortAllocated", err)
			}
			if err == nil && len(s.Mappings) != tc.wantLen {
				t.Fatalf("mappings = %v, want %d", s.Mappings, tc.wantLen)
			}
		})
	}
}

func TestPortStateRemovePods(t *testing.T) {
	s := &portState{Mappings: []mappingRecord{{Pod: "a"}, {Pod: "b"}, {Pod: "a"}}}
	removed := s.removePods(func(p string) bool { return p == "a" })
	if len(removed) != 2 || len(s.Mappings) != 1 || s.Mappings[0].Pod != "b" {
		t.Fatalf("removed %v, kept %v; want both of a removed and b kept", removed, s.Mappings)
	}
	if again := s.removePods(func(p string) bool { return p == "a" }); len(again) != 0 {
		t.Fatalf("second removal removed %v", again)
	}
}
