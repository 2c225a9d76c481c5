package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ipForwardSysctl is the knob the bridge plugin turns on for isGateway.
const ipForwardSysctl = "/proc/sys/net/ipv4/ip_forward"

// floorVeth matches the floor variants' host veth names.
var floorVeth = regexp.MustCompile(`^ppb[ku][0-9]+$`)

// bench is one run's state: what it made, so it can all be removed and
// checked gone at the end, whatever happened.
type bench struct {
	o         netOptions
	work      string            // the run's scratch dir: pins, IPAM, conflists, libcni cache
	madeDirs  []string          // the dirs made for o.dir, deepest first
	links     map[string]bool   // host links this run or its plugins made: bridges, veths
	bridges   []string          // the selected variants' bridges
	pins      map[string]bool   // netns pins not removed yet
	ipForward string            // ip_forward at the start
	markers   []string          // strings that name our objects in firewall rules
	firewall  map[string]bool   // firewall lines with a marker at the start
	cc        *libcni.CNIConfig // libcni, made on first use
}

// network is one variant's bridge and subnet.
type network struct {
	variant string
	bridge  string
	subnet  netip.Prefix
	netName string // the CNI network name, "" for peapod's in-process one
}

// prepare checks the host (no side effects) and then makes the scratch dir.
// It refuses bridges that exist already (they would not be ours to delete),
// subnets that overlap each other or anything on the host, and floor veth
// names in use.
func prepare(o netOptions) (*bench, error) {
	b := &bench{o: o, links: map[string]bool{}, pins: map[string]bool{}}
	all := []network{
		{vPeapod, o.bridge, o.subnet, ""},
		{vCNIBridge, o.cniBridge, o.cniSubnet, "ppbench-net"},
		{vPeapodCNILC, o.pcniBridge, o.pcniSubnet, "ppbench-pcni"},
		{vBridgeLC, o.lcniBridge, o.lcniSubnet, "ppbench-lcni"},
	}
	var nets []network
	for _, n := range all {
		if slices.Contains(o.variants, n.variant) {
			nets = append(nets, n)
		}
	}
	if err := checkNetworks(nets); err != nil {
		return nil, err
	}
	if err := checkFloorNames(); err != nil {
		return nil, err
	}
	for _, n := range nets {
		b.bridges = append(b.bridges, n.bridge)
		b.links[n.bridge] = true
		b.markers = append(b.markers, n.bridge, n.subnet.String())
		if n.netName != "" {
			b.markers = append(b.markers, n.netName)
		}
	}
	if slices.Contains(o.variants, vCNIBridge) || slices.Contains(o.variants, vBridgeLC) {
		if err := unix.Access(filepath.Join(o.cniPath, "bridge"), unix.X_OK); err != nil {
			return nil, fmt.Errorf("reference bridge plugin %q is not executable (apt-get install containernetworking-plugins): %w",
				filepath.Join(o.cniPath, "bridge"), err)
		}
	}
	if slices.Contains(o.variants, vPeapodCNILC) || slices.Contains(o.variants, vBridgeLC) {
		if err := b.findPeapodCNI(); err != nil {
			return nil, err
		}
	}
	fwd, err := os.ReadFile(ipForwardSysctl)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", ipForwardSysctl, err)
	}
	b.ipForward = strings.TrimSpace(string(fwd))
	b.firewall = map[string]bool{}
	for _, l := range b.firewallLines() {
		b.firewall[l] = true
	}
	if b.madeDirs, err = mkdirAll(o.dir); err != nil {
		return nil, err
	}
	if b.work, err = os.MkdirTemp(o.dir, "run-"); err != nil {
		err = fmt.Errorf("failed to create scratch dir in %q: %w", o.dir, err)
		for _, d := range b.madeDirs {
			os.Remove(d)
		}
		return nil, err
	}
	return b, nil
}

// findPeapodCNI resolves -peapod-cni (default: on PATH) to an absolute path.
func (b *bench) findPeapodCNI() error {
	p := b.o.peapodCNI
	if p == "" {
		var err error
		if p, err = exec.LookPath("peapod-cni"); err != nil {
			return fmt.Errorf("failed to find peapod-cni (build ./cmd/peapod-cni, give -peapod-cni): %w", err)
		}
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return fmt.Errorf("failed to resolve peapod-cni path %q: %w", p, err)
	}
	if err := unix.Access(abs, unix.X_OK); err != nil {
		return fmt.Errorf("peapod-cni %q is not executable: %w", abs, err)
	}
	b.o.peapodCNI = abs
	return nil
}

// checkNetworks refuses bad or existing bridge names and subnets that
// overlap each other, a host address or a host route of any table.
func checkNetworks(nets []network) error {
	for i, n := range nets {
		if n.bridge == "" || len(n.bridge) > unix.IFNAMSIZ-1 {
			return fmt.Errorf("%s: bridge name %q must be 1 to %d bytes", n.variant, n.bridge, unix.IFNAMSIZ-1)
		}
		for _, m := range nets[:i] {
			if n.bridge == m.bridge {
				return fmt.Errorf("%s and %s: both on bridge %q", m.variant, n.variant, n.bridge)
			}
			if n.subnet.Overlaps(m.subnet) {
				return fmt.Errorf("%s and %s: subnets %s and %s overlap", m.variant, n.variant, m.subnet, n.subnet)
			}
		}
		gone, err := linkGone(n.bridge)
		if err != nil {
			return err
		}
		if !gone {
			return fmt.Errorf("%s: link %q exists; benchtool net uses only bridges it creates (left by an earlier run? ip link del %s)",
				n.variant, n.bridge, n.bridge)
		}
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("failed to list host addresses: %w", err)
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("failed to list host routes: %w", err)
	}
	for _, n := range nets {
		for _, a := range addrs {
			if p, ok := prefixOf(a.IPNet); ok && p.Masked().Overlaps(n.subnet) {
				return fmt.Errorf("%s: subnet %s overlaps host address %s (link #%d)", n.variant, n.subnet, p, a.LinkIndex)
			}
		}
		for _, r := range routes {
			// A default route overlaps everything and is no conflict.
			if p, ok := prefixOf(r.Dst); ok && p.Bits() > 0 && p.Overlaps(n.subnet) {
				return fmt.Errorf("%s: subnet %s overlaps host route %s (table %d, link #%d)", n.variant, n.subnet, p, r.Table, r.LinkIndex)
			}
		}
	}
	return nil
}

// checkFloorNames refuses to start when a link has a floor veth's name.
func checkFloorNames() error {
	links, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("failed to list links: %w", err)
	}
	for _, l := range links {
		if floorVeth.MatchString(l.Attrs().Name) {
			return fmt.Errorf("link %q exists with a name the floor variants use (left by an earlier run? ip link del %s)",
				l.Attrs().Name, l.Attrs().Name)
		}
	}
	return nil
}

// prefixOf converts a netlink IPv4 net to a netip.Prefix.
func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(n.IP.To4())
	if !ok {
		return netip.Prefix{}, false
	}
	bits, size := n.Mask.Size()
	if size != 32 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(ip, bits), true
}

// mkdirAll is os.MkdirAll returning the dirs it made, deepest first.
func mkdirAll(dir string) ([]string, error) {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("failed to stat %q: %w", d, err)
		}
		missing = append(missing, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create scratch dir %q: %w", dir, err)
	}
	return missing, nil
}

// firewallLines lists the lines of `nft list ruleset` and `iptables-save`
// that name one of our bridges, subnets or CNI networks. With ipMasq false
// no plugin should add any; a missing tool is skipped.
func (b *bench) firewallLines() []string {
	var lines []string
	for _, cmd := range [][]string{{"nft", "list", "ruleset"}, {"iptables-save"}} {
		if _, err := exec.LookPath(cmd[0]); err != nil {
			continue
		}
		out, err := exec.Command(cmd[0], cmd[1:]...).Output()
		if err != nil {
			fmt.Fprintf(os.Stderr, "benchtool net: warning: %s failed, its rules are not checked: %v\n", strings.Join(cmd, " "), err)
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			l := sc.Text()
			for _, m := range b.markers {
				if strings.Contains(l, m) {
					lines = append(lines, cmd[0]+": "+strings.TrimSpace(l))
					break
				}
			}
		}
	}
	return lines
}

// cleanup removes whatever the run made that is still there: netns pins,
// veths, bridges, the scratch dir (IPAM leases, conflists, libcni cache),
// the dirs made for it, and ip_forward if a plugin turned it on.
func (b *bench) cleanup() error {
	var errs []error
	for pin := range b.pins {
		if err := deleteNetns(pin); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(b.pins, pin)
	}
	// Veths before bridges: a veth left is a bridge port.
	var names []string
	for name := range b.links {
		if !slices.Contains(b.bridges, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range append(names, b.bridges...) {
		if err := deleteLink(name); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(b.work); err != nil {
		errs = append(errs, fmt.Errorf("failed to remove scratch dir %q: %w", b.work, err))
	}
	for _, d := range b.madeDirs {
		// Not empty: someone else put something there; it stays.
		if err := os.Remove(d); err != nil && !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("failed to remove %q: %w", d, err))
		}
	}
	// The bridge plugin sets ip_forward for isGateway and never puts it
	// back; benchtool net itself never writes 0, so only 0 → 1 is undone.
	if b.ipForward == "0" && b.readIPForward() == "1" {
		if err := os.WriteFile(ipForwardSysctl, []byte("0"), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("failed to restore %s to 0: %w", ipForwardSysctl, err))
		}
	}
	return errors.Join(errs...)
}

// readIPForward reads ip_forward; "" when it cannot.
func (b *bench) readIPForward() string {
	v, err := os.ReadFile(ipForwardSysctl)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(v))
}

// deleteLink deletes a host link by name; not found is success.
func deleteLink(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("failed to look up link %q: %w", name, err)
	}
	if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("failed to delete link %q: %w", name, err)
	}
	return nil
}

// check fails when anything the run made is still there: a link it or a
// plugin created, a mount or file under the scratch dir, ip_forward turned
// on, or a firewall line naming our objects that was not there at the start.
func (b *bench) check() error {
	var left []string
	names := make([]string, 0, len(b.links))
	for name := range b.links {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		gone, err := linkGone(name)
		if err != nil {
			left = append(left, err.Error())
		} else if !gone {
			left = append(left, "link "+name)
		}
	}
	if err := checkFloorNames(); err != nil {
		left = append(left, err.Error())
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		left = append(left, fmt.Sprintf("mounts unchecked: %v", err))
	}
	for l := range strings.SplitSeq(string(mounts), "\n") {
		// Field 5 is the mount point.
		if f := strings.Fields(l); len(f) > 4 && (f[4] == b.work || strings.HasPrefix(f[4], b.work+"/")) {
			left = append(left, "mount "+f[4])
		}
	}
	if _, err := os.Lstat(b.work); !errors.Is(err, fs.ErrNotExist) {
		left = append(left, "scratch dir "+b.work)
	}
	if b.ipForward == "0" && b.readIPForward() != "0" {
		left = append(left, "ip_forward turned on")
	}
	for _, l := range b.firewallLines() {
		if !b.firewall[l] {
			left = append(left, l)
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("cleanup check failed, left behind: %s", strings.Join(left, "; "))
	}
	fmt.Fprintln(os.Stderr, "benchtool net: cleanup check: ok (links, netns pins and mounts, scratch dir, ip_forward, nftables/iptables rules)")
	return nil
}
