package pod

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/peapod/peapod/cni"
	"github.com/peapod/peapod/runtime/spec"
)

// PodTree is what `peapod inspect --tree` draws: the pod's shared
// namespaces, each container's own namespaces and processes, and the
// network path from the pod's eth0 to the host.
type PodTree struct {
	Namespace, Name, UID, Phase string
	// SupervisorPID and ReaperPID are host pids (0: not running).
	SupervisorPID, ReaperPID int
	// Shared are the pod's shared namespaces (net, uts, ipc; pid when shared).
	Shared []TreeNS
	// Containers in start order, init containers first.
	Containers []TreeContainer
	// Net is the network path; nil for a host-network pod, a pod without
	// an address, or one on an external CNI chain.
	Net *TreeNet
}

// TreeNS is one namespace.
type TreeNS struct {
	// Type is the /proc/PID/ns name: net, uts, ipc, pid, mnt, cgroup.
	Type string
	// Inode identifies it (what readlink /proc/PID/ns/TYPE shows).
	Inode uint64
	// Path is its pin, for a shared one.
	Path string
	// Owner says whose it is for a container's: "own", "pod" (the pod's
	// shared one) or "host" (the host's, not unshared).
	Owner string
}

// TreeContainer is one container.
type TreeContainer struct {
	Name, State string
	Init        bool
	// Cgroup is its cgroup path below the hierarchy root.
	Cgroup string
	// NS are its mnt, pid and cgroup namespaces (empty while not running).
	NS []TreeNS
	// Procs are the processes in its mount namespace.
	Procs []TreeProc
}

// TreeProc is one process.
type TreeProc struct {
	// HostPID is its pid on the host; NSpid its pid in each nested pid
	// namespace, outermost first (the last one is what the container sees).
	HostPID int
	NSpid   []int
	// Comm and Cmdline are its name and arguments.
	Comm, Cmdline string
}

// TreeNet is the path a pod's packet takes to the host.
type TreeNet struct {
	// Pod is the pod's end of the veth pair (eth0), in the pod's netns.
	Pod cni.LinkView
	// HostVeth is the host end, a port of the bridge.
	HostVeth cni.LinkView
	// Bridge is the network's bridge, with the gateway address.
	Bridge cni.LinkView
	// Masquerade is whether traffic leaving the subnet is NATed.
	Masquerade bool
	// HostPorts are the pod's ports[].hostPort mappings.
	HostPorts []string
}

// nsTypes maps spec namespace keys to /proc/PID/ns names.
var nsTypes = map[string]string{spec.NSNet: "net", spec.NSUTS: "uts", spec.NSIPC: "ipc", spec.NSPID: "pid"}

// Tree builds the picture of a pod from its record, pins, /proc and netlink.
func (m *Manager) Tree(ns, name string) (*PodTree, error) {
	in, err := m.Inspect(ns, name)
	if err != nil {
		return nil, err
	}
	t := &PodTree{Namespace: in.Namespace, Name: in.Name, UID: in.UID, Phase: in.Phase, SupervisorPID: in.SupervisorPID, ReaperPID: in.ReaperPID}
	shared := map[uint64]bool{}
	for key, info := range in.Namespaces {
		typ := nsTypes[key]
		if typ == "" {
			typ = key
		}
		t.Shared = append(t.Shared, TreeNS{Type: typ, Inode: info.Inode, Path: info.Path, Owner: "pod"})
		shared[info.Inode] = true
	}
	// A shared pid namespace is not pinned: the reaper, its PID 1, holds it.
	if _, pinned := in.Namespaces[spec.NSPID]; !pinned && in.ReaperPID > 0 {
		if ino, err := nsInode(in.ReaperPID, "pid"); err == nil {
			t.Shared = append(t.Shared, TreeNS{Type: "pid", Inode: ino, Path: fmt.Sprintf("/proc/%d/ns/pid (held by the reaper)", in.ReaperPID), Owner: "pod"})
			shared[ino] = true
		}
	}
	sort.Slice(t.Shared, func(i, j int) bool { return nsOrder(t.Shared[i].Type) < nsOrder(t.Shared[j].Type) })
	host := map[string]uint64{}
	for _, typ := range []string{"mnt", "pid", "cgroup"} {
		host[typ], _ = nsInode(os.Getpid(), typ) // the namespaces peapod itself runs in
	}
	byMnt := processesByMountNS()
	for _, c := range in.Containers {
		tc := TreeContainer{Name: c.Name, State: c.State, Init: c.Init, Cgroup: c.Cgroup}
		if c.PID > 0 {
			for _, typ := range []string{"mnt", "pid", "cgroup"} {
				ino, err := nsInode(c.PID, typ)
				if err != nil {
					continue
				}
				owner := "own"
				switch {
				case shared[ino]:
					owner = "pod"
				case ino == host[typ]:
					owner = "host"
				}
				tc.NS = append(tc.NS, TreeNS{Type: typ, Inode: ino, Owner: owner})
				if typ == "mnt" {
					tc.Procs = byMnt[ino]
				}
			}
		}
		t.Containers = append(t.Containers, tc)
	}
	if in.HostVeth != "" && m.o.Chain == nil {
		if net, err := m.treeNet(in); err == nil {
			t.Net = net
		}
	}
	return t, nil
}

// treeNet reads the pod's network path through netlink.
func (m *Manager) treeNet(in *Inspect) (*TreeNet, error) {
	netns := in.Namespaces[spec.NSNet].Path
	pod, err := cni.ViewLink(netns, cni.PodIfName)
	if err != nil {
		return nil, err
	}
	hv, err := cni.ViewLink("", in.HostVeth)
	if err != nil {
		return nil, err
	}
	br, err := cni.ViewLink("", m.o.Network.Bridge)
	if err != nil {
		return nil, err
	}
	n := &TreeNet{Pod: *pod, HostVeth: *hv, Bridge: *br, Masquerade: m.o.Network.IPMasq}
	ports, _ := cni.HostPorts(m.o.Network)
	for _, p := range ports {
		if p.PodUID == in.UID {
			n.HostPorts = append(n.HostPorts, p.String())
		}
	}
	return n, nil
}

// nsOrder sorts namespace types as `lsns` readers expect them.
func nsOrder(typ string) int {
	for i, t := range []string{"net", "uts", "ipc", "pid", "mnt", "cgroup"} {
		if t == typ {
			return i
		}
	}
	return 99
}

// nsInode reads the inode of /proc/PID/ns/TYPE ("mnt:[4026531841]").
func nsInode(pid int, typ string) (uint64, error) {
	link, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "ns", typ))
	if err != nil {
		return 0, err
	}
	lb, rb := strings.IndexByte(link, '['), strings.IndexByte(link, ']')
	if lb < 0 || rb < lb {
		return 0, fmt.Errorf("unexpected namespace link %q", link)
	}
	return strconv.ParseUint(link[lb+1:rb], 10, 64)
}

// processesByMountNS groups every process of the host by its mount
// namespace: a container's mount namespace is its own, so this finds its
// main process, what it forked, and execs into it.
func processesByMountNS() map[uint64][]TreeProc {
	out := map[uint64][]TreeProc{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ino, err := nsInode(pid, "mnt")
		if err != nil {
			continue // gone, or a kernel thread
		}
		p := TreeProc{HostPID: pid, NSpid: nspids(pid)}
		if b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm")); err == nil {
			p.Comm = strings.TrimSpace(string(b))
		}
		if b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil {
			p.Cmdline = strings.Join(strings.Fields(strings.ReplaceAll(string(b), "\x00", " ")), " ")
		}
		out[ino] = append(out[ino], p)
	}
	for _, ps := range out {
		sort.Slice(ps, func(i, j int) bool { return ps[i].HostPID < ps[j].HostPID })
	}
	return out
}

// nspids reads NSpid from /proc/PID/status: the pid in each pid namespace
// the process is in, outermost (the host's) first.
func nspids(pid int) []int {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "NSpid:")
		if !ok {
			continue
		}
		var out []int
		for _, f := range strings.Fields(rest) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
		return out
	}
	return nil
}

// NetworkGraph is what `peapod net --dot` draws: the bridge and every pod
// on it with its veth, address and host ports.
type NetworkGraph struct {
	*NetworkView
	// BridgeAddrs are the bridge's addresses (the gateway).
	BridgeAddrs []string
	// HostPorts are the network's host port mappings by pod uid.
	HostPorts map[string][]string
	// Subnet is the network's subnet.
	Subnet netip.Prefix
}

// Graph builds the NetworkGraph of the root's network.
func (m *Manager) Graph() (*NetworkGraph, error) {
	v, err := m.Network()
	if err != nil {
		return nil, err
	}
	g := &NetworkGraph{NetworkView: v, HostPorts: map[string][]string{}, Subnet: m.o.Network.Subnet}
	if br, err := cni.ViewLink("", m.o.Network.Bridge); err == nil {
		g.BridgeAddrs = br.Addrs
	}
	ports, err := cni.HostPorts(m.o.Network)
	if err != nil {
		return nil, err
	}
	for _, p := range ports {
		g.HostPorts[p.PodUID] = append(g.HostPorts[p.PodUID], p.String())
	}
	return g, nil
}
