package pod

import (
	"fmt"

	"github.com/peapod/peapod/cni"
)

// NetworkView is what `peapod net` shows.
type NetworkView struct {
	// Config is the root's network.
	Config cni.Config
	// Pods are the bridge's pod ports, with the pods they belong to.
	Pods []NetworkPod
	// Warnings name host settings that would silently break pod traffic.
	Warnings []string
}

// NetworkPod is one pod on the bridge.
type NetworkPod struct {
	// Namespace and Name of the pod ("" when no record names it: gc removes it).
	Namespace, Name string
	// UID is the pod uid on the host veth's alias.
	UID string
	// IP is the pod's address.
	IP string
	// HostVeth is the bridge port.
	HostVeth string
	// MAC is the bridge port's MAC.
	MAC string
	// Netns is the pod's network namespace pin name.
	Netns string
}

// Network lists the root's network and its pods.
func (m *Manager) Network() (*NetworkView, error) {
	ports, err := cni.Pods(m.o.Network)
	if err != nil {
		return nil, err
	}
	recs, err := m.records()
	if err != nil {
		return nil, err
	}
	byUID := map[string]int{}
	for i, r := range recs {
		byUID[r.UID] = i
	}
	v := &NetworkView{Config: m.o.Network, Warnings: cni.Check(m.o.Network)}
	for _, p := range ports {
		np := NetworkPod{UID: p.PodUID, HostVeth: p.HostVeth, MAC: p.MAC}
		if i, ok := byUID[p.PodUID]; ok {
			r := recs[i]
			np.Namespace, np.Name, np.IP, np.Netns = r.Namespace, r.Name, r.IP, r.NetnsName
		}
		v.Pods = append(v.Pods, np)
	}
	return v, nil
}

// RemoveNetwork removes the root's bridge and masquerade table once no pod
// holds an address on it (cni.ErrNetworkInUse otherwise).
func (m *Manager) RemoveNetwork() error {
	if m.o.Chain != nil {
		return fmt.Errorf("this root's pods use the CNI chain %q, which owns its network", m.o.Chain.Name())
	}
	return cni.RemoveNetwork(m.o.Network)
}
