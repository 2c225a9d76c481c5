package main

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/peapod/peapod/cni"
	"github.com/peapod/peapod/runtime/pod"
)

// update rewrites the golden files: go test ./cmd/peapod -run Golden -update
var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (rerun with -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// fakeTree is the two-container example with a shared PID namespace, an
// init container that finished, an exec'd process and a host port.
func fakeTree() *pod.PodTree {
	return &pod.PodTree{
		Namespace: "default", Name: "web", UID: "6f1c2a9e-0d4b-4c41-9a57-3b0e5d1f2a77", Phase: "Running",
		SupervisorPID: 4100, ReaperPID: 4105,
		Shared: []pod.TreeNS{
			{Type: "net", Inode: 4026532257, Path: "/run/netns/peapod-eaa764-6f1c2a9e", Owner: "pod"},
			{Type: "uts", Inode: 4026532187, Path: "/run/peapod/pods/6f1c2a9e-0d4b-4c41-9a57-3b0e5d1f2a77/ns/uts", Owner: "pod"},
			{Type: "ipc", Inode: 4026532188, Path: "/run/peapod/pods/6f1c2a9e-0d4b-4c41-9a57-3b0e5d1f2a77/ns/ipc", Owner: "pod"},
			{Type: "pid", Inode: 4026532190, Path: "/proc/4105/ns/pid", Owner: "pod"},
		},
		Containers: []pod.TreeContainer{
			{Name: "setup", State: "terminated", Init: true, Cgroup: "peapod-eaa764/6f1c2a9e-0d4b-4c41-9a57-3b0e5d1f2a77/6f1c2a9e0d4b-setup"},
			{Name: "app", State: "running", Cgroup: "peapod-eaa764/6f1c2a9e-0d4b-4c41-9a57-3b0e5d1f2a77/6f1c2a9e0d4b-app",
				NS: []pod.TreeNS{{Type: "mnt", Inode: 4026532189, Owner: "own"}, {Type: "pid", Inode: 4026532190, Owner: "pod"}, {Type: "cgroup", Inode: 4026531835, Owner: "host"}},
				Procs: []pod.TreeProc{
					{HostPID: 4110, NSpid: []int{4110, 2}, Comm: "httpd", Cmdline: "busybox httpd -f -p 8080 -h /www"},
					{HostPID: 4300, NSpid: []int{4300, 9}, Comm: "sh", Cmdline: "sh -c wget -q -O - http://127.0.0.1:8080/ a very long command line that goes on"},
				}},
			{Name: "sidecar", State: "running", Cgroup: "peapod-eaa764/6f1c2a9e-0d4b-4c41-9a57-3b0e5d1f2a77/6f1c2a9e0d4b-sidecar",
				NS:    []pod.TreeNS{{Type: "mnt", Inode: 4026532193, Owner: "own"}, {Type: "pid", Inode: 4026532190, Owner: "pod"}, {Type: "cgroup", Inode: 4026532195, Owner: "own"}},
				Procs: []pod.TreeProc{{HostPID: 4120, NSpid: []int{4120, 3}, Comm: "sleep"}}},
		},
		Net: &pod.TreeNet{
			Pod:        cni.LinkView{Name: "eth0", Index: 2, MAC: "36:eb:e7:a1:df:5a", Addrs: []string{"10.220.0.7/16"}, PeerIndex: 31},
			HostVeth:   cni.LinkView{Name: "pp2292d03ec9", Index: 31, MAC: "fe:59:a6:74:f8:2a", Master: "peapod0", PeerIndex: 2},
			Bridge:     cni.LinkView{Name: "peapod0", Index: 5, MAC: "aa:dc:fa:32:20:b7", Addrs: []string{"10.220.0.1/16"}},
			Masquerade: true,
			HostPorts:  []string{"tcp 0.0.0.0:8080 -> 8080"},
		},
	}
}

func TestTreeGolden(t *testing.T) {
	var b bytes.Buffer
	if err := renderTree(&b, fakeTree()); err != nil {
		t.Fatal(err)
	}
	golden(t, "tree.golden", b.Bytes())

	// A stopped pod: nothing pinned, no processes, no network.
	stopped := &pod.PodTree{Namespace: "default", Name: "done", UID: "u1", Phase: "Succeeded",
		Containers: []pod.TreeContainer{{Name: "main", State: "terminated", Cgroup: "peapod-x/u1/main"}}}
	b.Reset()
	if err := renderTree(&b, stopped); err != nil {
		t.Fatal(err)
	}
	golden(t, "tree-stopped.golden", b.Bytes())
}

func fakeGraph() *pod.NetworkGraph {
	c := cni.DefaultConfig("/var/lib/peapod")
	return &pod.NetworkGraph{
		NetworkView: &pod.NetworkView{Config: c, Pods: []pod.NetworkPod{
			{Namespace: "default", Name: "web", UID: "6f1c2a9e-0d4b", IP: "10.220.0.7", HostVeth: "pp2292d03ec9", MAC: "fe:59:a6:74:f8:2a", Netns: "peapod-eaa764-6f1c2a9e"},
			{Namespace: "team-a", Name: "db.v1", UID: "0aa1-77", IP: "10.220.0.8", HostVeth: "pp0000aaaa01", MAC: "fe:00:00:00:00:01", Netns: "peapod-eaa764-0aa1"},
			{UID: "dead-beef", HostVeth: "pp0000aaaa02", MAC: "fe:00:00:00:00:02"},
		}},
		BridgeAddrs: []string{"10.220.0.1/16"},
		Subnet:      netip.MustParsePrefix("10.220.0.0/16"),
		HostPorts:   map[string][]string{"6f1c2a9e-0d4b": {"udp 0.0.0.0:5353 -> 53", "tcp 0.0.0.0:8080 -> 8080"}},
	}
}

func TestDotGolden(t *testing.T) {
	var b bytes.Buffer
	if err := renderDot(&b, fakeGraph()); err != nil {
		t.Fatal(err)
	}
	golden(t, "net.dot.golden", b.Bytes())
	checkDot(t, b.String())
}

// checkDot checks what Graphviz would reject: unbalanced braces, an edge
// to a node that is never declared, a label quote left open.
func checkDot(t *testing.T, dot string) {
	t.Helper()
	if strings.Count(dot, "{") != strings.Count(dot, "}") || !strings.HasPrefix(dot, "digraph ") {
		t.Fatalf("not a balanced digraph:\n%s", dot)
	}
	declared := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s*([A-Za-z_][A-Za-z0-9_]*) \[label=`).FindAllStringSubmatch(dot, -1) {
		declared[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`(?m)^\s*([A-Za-z_][A-Za-z0-9_]*) -> ([A-Za-z_][A-Za-z0-9_]*)`).FindAllStringSubmatch(dot, -1) {
		for _, id := range m[1:] {
			if !declared[id] {
				t.Errorf("edge %s -> %s uses undeclared node %s", m[1], m[2], id)
			}
		}
	}
	for i, line := range strings.Split(dot, "\n") {
		if strings.Count(strings.ReplaceAll(line, `\"`, ""), `"`)%2 != 0 {
			t.Errorf("line %d has an open quote: %s", i+1, line)
		}
	}
}

func TestDotLabelEscapes(t *testing.T) {
	if got := dotLabel(`a"b`, `c\d`, "e\nf"); got != `"a\"b\nc\\d\ne f"` {
		t.Errorf("dotLabel = %s", got)
	}
	if got := dotID("veth", "pp-1.2/x"); got != "veth_pp_1_2_x" {
		t.Errorf("dotID = %s", got)
	}
}
