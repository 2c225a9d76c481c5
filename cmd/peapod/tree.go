package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/peapod/peapod/cni"
	"github.com/peapod/peapod/runtime/pod"
)

// treeWriter draws an indented tree with box-drawing branches.
type treeWriter struct {
	// w receives the lines; err is the first write error.
	w   io.Writer
	err error
}

// line writes one line: prefix, the branch for the node (last or not), text.
func (t *treeWriter) line(prefix string, last bool, text string) {
	branch := "├─ "
	if last {
		branch = "└─ "
	}
	t.raw(prefix + branch + text)
}

func (t *treeWriter) raw(s string) {
	if t.err == nil {
		_, t.err = fmt.Fprintln(t.w, s)
	}
}

// child is the prefix of a node's children.
func child(prefix string, last bool) string {
	if last {
		return prefix + "   "
	}
	return prefix + "│  "
}

// renderTree draws a pod: its shared namespaces, each container with its
// own namespaces and processes, and the network path to the host.
func renderTree(w io.Writer, p *pod.PodTree) error {
	t := &treeWriter{w: w}
	t.raw(fmt.Sprintf("pod %s/%s  %s  uid %s", p.Namespace, p.Name, p.Phase, p.UID))
	var sections []func(prefix string, last bool)
	if p.SupervisorPID > 0 {
		sections = append(sections, func(prefix string, last bool) {
			s := fmt.Sprintf("supervisor  pid %d", p.SupervisorPID)
			if p.ReaperPID > 0 {
				s += fmt.Sprintf("  (reaper pid %d is PID 1 of the shared pid namespace)", p.ReaperPID)
			}
			t.line(prefix, last, s)
		})
	}
	sections = append(sections, func(prefix string, last bool) {
		t.line(prefix, last, "shared namespaces (every container joins them)")
		cp := child(prefix, last)
		if len(p.Shared) == 0 {
			t.line(cp, true, "none pinned (the pod is not running)")
		}
		for i, n := range p.Shared {
			t.line(cp, i == len(p.Shared)-1, fmt.Sprintf("%-6s %s  %s", n.Type, nsLink(n), n.Path))
		}
	})
	for _, c := range p.Containers {
		sections = append(sections, func(prefix string, last bool) { renderContainer(t, prefix, last, c) })
	}
	if p.Net != nil {
		sections = append(sections, func(prefix string, last bool) { renderNetPath(t, prefix, last, p.Net) })
	}
	for i, s := range sections {
		s("", i == len(sections)-1)
	}
	return t.err
}

// nsLink spells a namespace as readlink /proc/PID/ns/TYPE does.
func nsLink(n pod.TreeNS) string { return fmt.Sprintf("%s:[%d]", n.Type, n.Inode) }

var ownerWords = map[string]string{
	"own":  "its own",
	"pod":  "the pod's shared one",
	"host": "the host's (not unshared)",
}

func renderContainer(t *treeWriter, prefix string, last bool, c pod.TreeContainer) {
	kind := "container"
	if c.Init {
		kind = "init container"
	}
	t.line(prefix, last, fmt.Sprintf("%s %s  %s  cgroup %s", kind, c.Name, c.State, c.Cgroup))
	cp := child(prefix, last)
	if len(c.NS) == 0 {
		t.line(cp, true, "no process (not running)")
		return
	}
	for _, n := range c.NS {
		t.line(cp, false, fmt.Sprintf("%-6s %s  %s", n.Type, nsLink(n), ownerWords[n.Owner]))
	}
	t.line(cp, true, "processes (host pid → pid inside)")
	pp := child(cp, true)
	for i, pr := range c.Procs {
		inner := "?"
		if len(pr.NSpid) > 0 {
			inner = strconv.Itoa(pr.NSpid[len(pr.NSpid)-1])
		}
		t.line(pp, i == len(c.Procs)-1, fmt.Sprintf("%-7d → %-4s %s", pr.HostPID, inner, procText(pr)))
	}
}

// procText is a process's command line, or its name in brackets.
func procText(p pod.TreeProc) string {
	s := p.Cmdline
	if s == "" {
		s = "[" + p.Comm + "]"
	}
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

func renderNetPath(t *treeWriter, prefix string, last bool, n *pod.TreeNet) {
	t.line(prefix, last, "network path")
	cp := child(prefix, last)
	t.raw(cp + fmt.Sprintf("%s %s  mac %s  ifindex %d  (pod netns)", n.Pod.Name, addrs(n.Pod.Addrs), n.Pod.MAC, n.Pod.Index))
	t.raw(cp + fmt.Sprintf("  │ veth pair (the peer of ifindex %d is ifindex %d on the host)", n.Pod.Index, n.Pod.PeerIndex))
	t.raw(cp + fmt.Sprintf("%s  mac %s  ifindex %d  (host netns)", n.HostVeth.Name, n.HostVeth.MAC, n.HostVeth.Index))
	t.raw(cp + "  │ port of bridge " + n.HostVeth.Master)
	t.raw(cp + fmt.Sprintf("%s %s  mac %s  (bridge; its address is the pods' gateway)", n.Bridge.Name, addrs(n.Bridge.Addrs), n.Bridge.MAC))
	out := "  │ routed by the host"
	if n.Masquerade {
		out += "; masqueraded when leaving the subnet"
	}
	t.raw(cp + out)
	t.raw(cp + "host")
	for _, hp := range n.HostPorts {
		t.raw(cp + "  hostPort " + hp)
	}
}

func addrs(a []string) string {
	if len(a) == 0 {
		return "(no address)"
	}
	return strings.Join(a, " ")
}

// renderDot writes the network as Graphviz DOT: the host, the bridge with
// its gateway address, and per pod its netns with eth0 and address, the
// host veth, and its host ports.
func renderDot(w io.Writer, g *pod.NetworkGraph) error {
	var b strings.Builder
	c := g.Config
	fmt.Fprintf(&b, "digraph %q {\n", "peapod-"+c.Bridge)
	b.WriteString("  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n")
	hostLabel := []string{"host", "routing"}
	if c.IPMasq {
		hostLabel = append(hostLabel, "masquerade out of "+c.Subnet.String())
	}
	fmt.Fprintf(&b, "  host [label=%s, shape=house];\n", dotLabel(hostLabel...))
	fmt.Fprintf(&b, "  %s [label=%s, shape=box3d];\n", dotID("br", c.Bridge), dotLabel(c.Bridge, "bridge "+strings.Join(g.BridgeAddrs, " ")))
	fmt.Fprintf(&b, "  %s -> host [dir=both];\n", dotID("br", c.Bridge))
	pods := append([]pod.NetworkPod(nil), g.Pods...)
	sort.Slice(pods, func(i, j int) bool { return pods[i].HostVeth < pods[j].HostVeth })
	for _, p := range pods {
		name := p.Namespace + "/" + p.Name
		if p.Name == "" {
			name = "<gone: " + p.UID + ">"
		}
		bits := g.Subnet.Bits()
		ip := p.IP
		if ip != "" {
			ip += "/" + strconv.Itoa(bits)
		}
		cl := dotID("cluster", p.UID)
		fmt.Fprintf(&b, "  subgraph %s {\n    label=%s;\n    style=rounded;\n", cl, dotLabel("pod "+name, "netns "+dash(p.Netns)))
		fmt.Fprintf(&b, "    %s [label=%s];\n", dotID("eth", p.UID), dotLabel(cni.PodIfName, dash(ip)))
		b.WriteString("  }\n")
		fmt.Fprintf(&b, "  %s [label=%s, shape=ellipse];\n", dotID("veth", p.HostVeth), dotLabel(p.HostVeth, p.MAC))
		fmt.Fprintf(&b, "  %s -> %s [dir=both, label=\"veth pair\"];\n", dotID("eth", p.UID), dotID("veth", p.HostVeth))
		fmt.Fprintf(&b, "  %s -> %s [dir=both, label=\"port\"];\n", dotID("veth", p.HostVeth), dotID("br", c.Bridge))
		hp := append([]string(nil), g.HostPorts[p.UID]...)
		sort.Strings(hp)
		for i, m := range hp {
			id := dotID("hp", p.UID+"-"+strconv.Itoa(i))
			fmt.Fprintf(&b, "  %s [label=%s, shape=cds];\n", id, dotLabel("hostPort "+m))
			fmt.Fprintf(&b, "  host -> %s [style=dashed];\n  %s -> %s [style=dashed, label=\"DNAT\"];\n", id, id, dotID("eth", p.UID))
		}
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// dotLabel is a quoted DOT label of lines (DOT's \n escape between them).
func dotLabel(lines ...string) string {
	esc := make([]string, len(lines))
	for i, l := range lines {
		esc[i] = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", " ").Replace(l)
	}
	return `"` + strings.Join(esc, `\n`) + `"`
}

// dotID makes a DOT identifier from a kind and a name (uids and link
// names hold '-', which DOT identifiers cannot).
func dotID(kind, name string) string {
	return kind + "_" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, name)
}

func executeInspectTree(g *globals, name string, out io.Writer) error {
	m, err := g.manager()
	if err != nil {
		return err
	}
	t, err := m.Tree(g.namespace, name)
	if err != nil {
		return err
	}
	return renderTree(out, t)
}

func executeNetDot(g *globals, out io.Writer) error {
	m, err := g.manager()
	if err != nil {
		return err
	}
	gr, err := m.Graph()
	if err != nil {
		return err
	}
	return renderDot(out, gr)
}
