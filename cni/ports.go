package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ErrPortAllocated is returned by MapPorts when another pod holds the same
// host IP, port and protocol.
var ErrPortAllocated = errors.New("host port is already allocated")

// PortAllocatedError is ErrPortAllocated with the pods involved: the
// caller knows their names, the network only their uids.
type PortAllocatedError struct {
	// Mapping is what Pod asked for; Held is the mapping of Holder it overlaps.
	Mapping, Held PortMapping
	// Pod and Holder are the uids of the asking and the holding pod.
	Pod, Holder string
}

func (e *PortAllocatedError) Error() string {
	return fmt.Sprintf("failed to map %s for pod %q: %s: pod %q holds %s", e.Mapping, e.Pod, ErrPortAllocated, e.Holder, e.Held)
}

// Unwrap makes errors.Is(err, ErrPortAllocated) hold.
func (e *PortAllocatedError) Unwrap() error { return ErrPortAllocated }

// portStateFile, in DataDir, records every host port mapping of the network
// with its pod: the conflict check reads it and the nftables table is
// rebuilt from it.
const portStateFile = "hostports.json"

// PortMapping is one `ports[].hostPort` of a pod.
type PortMapping struct {
	HostIP        netip.Addr `json:"hostIP,omitzero"` // the host address to match; zero = every local address
	HostPort      uint16     `json:"hostPort"`        // the port on the host
	ContainerPort uint16     `json:"containerPort"`   // the port on the pod IP
	Protocol      string     `json:"protocol"`        // "tcp", "udp" or "sctp"; "" = tcp
}

// String prints the mapping as "tcp 0.0.0.0:8080 -> 80".
func (m PortMapping) String() string {
	host := m.HostIP
	if !host.IsValid() {
		host = netip.IPv4Unspecified()
	}
	return fmt.Sprintf("%s %s -> %d", m.Protocol, netip.AddrPortFrom(host, m.HostPort), m.ContainerPort)
}

// normalize lowercases the protocol, defaults it to tcp, folds 0.0.0.0 into
// the zero address and checks the rest.
func (m PortMapping) normalize() (PortMapping, error) {
	m.Protocol = strings.ToLower(m.Protocol)
	if m.Protocol == "" {
		m.Protocol = "tcp"
	}
	if m.HostIP == netip.IPv4Unspecified() {
		m.HostIP = netip.Addr{}
	}
	switch {
	case protoNumber(m.Protocol) == 0:
		return m, fmt.Errorf("host port mapping %d: unsupported protocol %q", m.HostPort, m.Protocol)
	case m.HostPort == 0 || m.ContainerPort == 0:
		return m, fmt.Errorf("host port mapping %s: ports must be 1..65535", m)
	case m.HostIP.IsValid() && !m.HostIP.Is4():
		return m, fmt.Errorf("host port mapping %s: only IPv4 host addresses are supported", m)
	}
	return m, nil
}

// overlaps reports whether two mappings claim the same host socket: same
// protocol and port, and host IPs equal or one of them any-address.
func (m PortMapping) overlaps(o PortMapping) bool {
	return m.Protocol == o.Protocol && m.HostPort == o.HostPort &&
		(!m.HostIP.IsValid() || !o.HostIP.IsValid() || m.HostIP == o.HostIP)
}

// protoNumber is the IP protocol number of a mapping's protocol; 0 if unknown.
func protoNumber(proto string) byte {
	switch proto {
	case "tcp":
		return 6
	case "udp":
		return 17
	case "sctp":
		return 132
	}
	return 0
}

// mappingRecord is one mapping in the state file, with the pod holding it.
type mappingRecord struct {
	PortMapping
	Pod   string     `json:"pod"`   // the pod uid
	PodIP netip.Addr `json:"podIP"` // the DNAT target
}

// portState is the content of the state file.
type portState struct {
	Mappings []mappingRecord `json:"mappings"` // every mapping of the network
	// RouteLocalnetBefore is the bridge's route_localnet before the first
	// mapping, put back after the last
	RouteLocalnetBefore string `json:"routeLocalnetBefore,omitempty"`
}

// replacePod drops pod's mappings and adds ports for it, refusing any that
// another pod holds or that repeat within ports.
func (s *portState) replacePod(pod string, podIP netip.Addr, ports []PortMapping) error {
	s.removePods(func(p string) bool { return p == pod })
	var added []mappingRecord
	for _, p := range ports {
		m, err := p.normalize()
		if err != nil {
			return err
		}
		for _, held := range append(slices.Clone(s.Mappings), added...) {
			if held.overlaps(m) {
				return &PortAllocatedError{Mapping: m, Pod: pod, Holder: held.Pod, Held: held.PortMapping}
			}
		}
		added = append(added, mappingRecord{PortMapping: m, Pod: pod, PodIP: podIP})
	}
	s.Mappings = append(s.Mappings, added...)
	return nil
}

// removePods drops the mappings of every pod drop selects and returns them.
func (s *portState) removePods(drop func(pod string) bool) []mappingRecord {
	var removed, kept []mappingRecord
	for _, m := range s.Mappings {
		if drop(m.Pod) {
			removed = append(removed, m)
		} else {
			kept = append(kept, m)
		}
	}
	s.Mappings = kept
	return removed
}

// readPortState reads the state file; a missing file is an empty state.
func readPortState(c Config) (*portState, error) {
	path := filepath.Join(c.DataDir, portStateFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &portState{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read host port state %q: %w", path, err)
	}
	var s portState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("failed to parse host port state %q: %w", path, err)
	}
	return &s, nil
}

// writePortState writes the state atomically; an empty state removes the file.
func writePortState(c Config, s *portState) error {
	path := filepath.Join(c.DataDir, portStateFile)
	if len(s.Mappings) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("failed to remove host port state %q: %w", path, err)
		}
		return nil
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("failed to encode host port state: %w", err)
	}
	return writeAtomic(path, b)
}
