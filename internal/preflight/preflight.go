// Package preflight is `peapod check`: it asks the host, like
// lxc-checkconfig or docker info, for every kernel feature and setting a
// pod needs, and says for each OK, WARN or FAIL, with what to do. The
// checks are pure functions of a Host, so table tests feed them fakes; the
// fix texts of kernel features are kfeature's, the words a command that
// runs into the same missing feature fails with.
package preflight

import (
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/peapod/peapod/cgroups"
	"github.com/peapod/peapod/internal/kfeature"
)

// Level is a check's verdict.
type Level int

const (
	// OK: nothing to do.
	OK Level = iota
	// Warn: pods run, but something will not work or may surprise.
	Warn
	// Fail: pods cannot run until it is fixed.
	Fail
)

func (l Level) String() string { return [...]string{"OK", "WARN", "FAIL"}[l] }

// Result is one line of the report.
type Result struct {
	// Check names what was checked.
	Check string
	// Level is the verdict.
	Level Level
	// Detail is what was found.
	Detail string
	// Fix says what to do; empty for OK.
	Fix string
}

// Host is what the checks ask of the machine.
type Host interface {
	// KernelRelease is uname -r.
	KernelRelease() (string, error)
	// HasNamespaceFile reports whether /proc/self/ns/<kind> exists.
	HasNamespaceFile(kind string) bool
	// ProbeNamespace creates a namespace of kind in a child process.
	ProbeNamespace(kind string) error
	// Filesystems is the content of /proc/filesystems.
	Filesystems() (string, error)
	// FSTypeName names the filesystem holding path (or its nearest existing parent).
	FSTypeName(path string) (string, error)
	// ProbeLinks creates and deletes a bridge and a veth pair in a throwaway netns.
	ProbeLinks() (bridgeErr, vethErr error)
	// ProbeNftables creates and deletes a nat table with a masquerade rule in a throwaway netns.
	ProbeNftables() error
	// Cgroups reports the cgroup mode, the driver --cgroup-driver picks (or its error) and the controllers it can use.
	Cgroups(driver string) (mode cgroups.Mode, driverName string, controllers []string, err error)
	// NetnsPropagation is the propagation of the /run/netns mount: "shared", "private", "slave" or "" when it is no mount.
	NetnsPropagation() (string, error)
	// Sysctl reads a file under /proc/sys.
	Sysctl(path string) (string, error)
	// FreeBytes is the space available to root on the filesystem of path (or its nearest existing parent).
	FreeBytes(path string) (uint64, error)
	// NetworkWarnings are the host firewall settings that would drop pod traffic (cni.Warnings).
	NetworkWarnings(n Network) []Result
	// SubnetOverlap reports what on the host overlaps the subnet (cni's check at bridge creation).
	SubnetOverlap(n Network) error
	// BridgeState says whether the bridge exists and with which address.
	BridgeState(n Network) (string, error)
}

// Network is the root's network as the checks see it.
type Network struct {
	// Bridge and Subnet of the built-in network.
	Bridge string
	Subnet netip.Prefix
	// DataDir is the network's lease directory (the bridge's owner mark).
	DataDir string
	// Chain is the external CNI conflist name, when the root uses one.
	Chain string
	// Configured is true when the root has a network.json (else the defaults or flags are shown).
	Configured bool
}

// Options is what to check.
type Options struct {
	// Root and RunRoot are --root and --run-root.
	Root, RunRoot string
	// CgroupDriver is --cgroup-driver.
	CgroupDriver string
	// Network is the root's network.
	Network Network
}

// Namespace kinds peapod uses, by /proc/self/ns name.
var namespaceKinds = []string{"mnt", "pid", "net", "uts", "ipc", "cgroup"}

// Free-space thresholds.
const (
	rootWarn    = 1 << 30  // images and container upper layers
	rootFail    = 64 << 20 // an image import or a log rotation fails
	runRootWarn = 16 << 20 // specs, status, sockets: tiny, but a full /run stops every write
	runRootFail = 1 << 20
	// minKernel is pidfd_open (5.3), which adoption needs to pin a container it did not start.
	minKernelMajor, minKernelMinor = 5, 3
)

// Run performs every check, in the order of the report.
func Run(h Host, o Options) []Result {
	var rs []Result
	rs = append(rs, checkKernel(h))
	for _, k := range namespaceKinds {
		rs = append(rs, checkNamespace(h, k))
	}
	rs = append(rs, checkOverlay(h, o))
	rs = append(rs, checkLinks(h)...)
	rs = append(rs, checkNftables(h))
	rs = append(rs, checkCgroups(h, o)...)
	rs = append(rs, checkNetnsDir(h))
	rs = append(rs, checkForwarding(h))
	rs = append(rs, h.NetworkWarnings(o.Network)...)
	rs = append(rs, checkSpace(h, "space in --root", o.Root, rootWarn, rootFail), checkSpace(h, "space in --run-root", o.RunRoot, runRootWarn, runRootFail))
	rs = append(rs, checkNetwork(h, o.Network)...)
	return rs
}

func checkKernel(h Host) Result {
	rel, err := h.KernelRelease()
	if err != nil {
		return Result{"kernel", Fail, err.Error(), "peapod needs Linux"}
	}
	var major, minor int
	if _, err := fmt.Sscanf(rel, "%d.%d", &major, &minor); err != nil {
		return Result{"kernel", Warn, "cannot parse release " + rel, fmt.Sprintf("peapod needs Linux %d.%d or later", minKernelMajor, minKernelMinor)}
	}
	if major < minKernelMajor || major == minKernelMajor && minor < minKernelMinor {
		return Result{"kernel", Fail, rel, fmt.Sprintf("boot Linux %d.%d or later (pidfd_open, which adopting a lost supervisor's containers needs)", minKernelMajor, minKernelMinor)}
	}
	return Result{Check: "kernel", Level: OK, Detail: rel}
}

func checkNamespace(h Host, kind string) Result {
	name := kind + " namespace"
	f := kfeature.Namespace(kind)
	if !h.HasNamespaceFile(kind) {
		return Result{name, Fail, "/proc/self/ns/" + kind + " is missing", f.Fix}
	}
	if err := h.ProbeNamespace(kind); err != nil {
		return Result{name, Fail, "creating one failed: " + err.Error(), f.Fix}
	}
	return Result{Check: name, Level: OK, Detail: "created one in a child process"}
}

func checkOverlay(h Host, o Options) Result {
	fs, err := h.Filesystems()
	if err != nil {
		return Result{"overlayfs", Warn, "cannot read /proc/filesystems: " + err.Error(), kfeature.Overlay.Fix}
	}
	if !hasFilesystem(fs, "overlay") {
		return Result{"overlayfs", Fail, "not in /proc/filesystems", kfeature.Overlay.Fix}
	}
	t, err := h.FSTypeName(o.Root)
	if err == nil && t == "overlayfs" {
		return Result{"overlayfs", Fail, fmt.Sprintf("--root %s is on overlayfs, which cannot hold upper layers", o.Root), kfeature.Overlay.Fix}
	}
	detail := "available"
	if t != "" {
		detail += "; --root is on " + t
	}
	return Result{Check: "overlayfs", Level: OK, Detail: detail}
}

// hasFilesystem reports whether /proc/filesystems lists name.
func hasFilesystem(procFilesystems, name string) bool {
	for _, line := range strings.Split(procFilesystems, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[len(f)-1] == name {
			return true
		}
	}
	return false
}

func checkLinks(h Host) []Result {
	brErr, vethErr := h.ProbeLinks()
	res := func(f kfeature.Feature, err error) Result {
		if err != nil {
			return Result{f.Name, Fail, "creating one in a throwaway netns failed: " + err.Error(), f.Fix}
		}
		return Result{Check: f.Name, Level: OK, Detail: "created and deleted one in a throwaway netns"}
	}
	return []Result{res(kfeature.Bridge, brErr), res(kfeature.Veth, vethErr)}
}

func checkNftables(h Host) Result {
	if err := h.ProbeNftables(); err != nil {
		return Result{"nftables", Fail, "a nat table with a masquerade rule failed in a throwaway netns: " + err.Error(), kfeature.Nftables.Fix}
	}
	return Result{Check: "nftables", Level: OK, Detail: "nat chain and masquerade rule work"}
}

// needControllers are the controllers without which resource limits of their kind are not applied.
var needControllers = []string{"cpu", "memory", "pids"}

func checkCgroups(h Host, o Options) []Result {
	mode, driver, ctrls, err := h.Cgroups(o.CgroupDriver)
	modeRes := Result{Check: "cgroup mode", Level: OK, Detail: mode.String()}
	switch mode {
	case cgroups.ModeHybrid:
		modeRes.Detail += " (v1 controllers, cgroup2 at /sys/fs/cgroup/unified)"
	case cgroups.ModeLegacy:
		modeRes.Detail += " (v1 only)"
	case cgroups.ModeUnified:
		modeRes.Detail += " (cgroup v2)"
	}
	if err != nil {
		return []Result{modeRes, {"cgroup driver", Fail, fmt.Sprintf("--cgroup-driver=%s: %v", o.CgroupDriver, err), kfeature.Cgroups.Fix}}
	}
	drv := Result{Check: "cgroup driver", Level: OK, Detail: fmt.Sprintf("%s (--cgroup-driver=%s)", driver, o.CgroupDriver)}
	have := map[string]bool{}
	for _, c := range ctrls {
		have[c] = true
	}
	var missing []string
	for _, c := range needControllers {
		if !have[c] {
			missing = append(missing, c)
		}
	}
	ctl := Result{Check: "cgroup controllers", Level: OK, Detail: strings.Join(ctrls, " ")}
	if len(ctrls) == 0 {
		ctl.Detail = "none"
	}
	if len(missing) > 0 {
		ctl.Level = Warn
		ctl.Detail += "; missing " + strings.Join(missing, " ") + ": resources limits of those kinds are not applied"
		ctl.Fix = "enable the controllers (cgroup v2: echo +memory > cgroup.subtree_control up the tree, or cgroup_enable=memory on the kernel command line)"
		if mode == cgroups.ModeHybrid && driver == cgroups.DriverV2 {
			ctl.Fix = "on this hybrid host the controllers are in the v1 hierarchies: use --cgroup-driver=v1 (or auto)"
		}
	}
	return []Result{modeRes, drv, ctl}
}

func checkNetnsDir(h Host) Result {
	p, err := h.NetnsPropagation()
	switch {
	case err != nil:
		return Result{"/run/netns", Warn, err.Error(), "check /proc/self/mountinfo"}
	case p == "":
		return Result{Check: "/run/netns", Level: OK, Detail: "not a mount yet: the first pod makes it a shared bind mount, as ip netns add does"}
	case p == "shared":
		return Result{Check: "/run/netns", Level: OK, Detail: "shared mount: a pod's netns pin, once unmounted, is gone from every mount namespace"}
	}
	return Result{"/run/netns", Warn, p + " mount: an unmounted pin stays in mount namespaces that copied it, keeping the netns alive",
		"mount --make-rshared /run/netns (the next pod does it too)"}
}

func checkForwarding(h Host) Result {
	v, err := h.Sysctl("net/ipv4/ip_forward")
	if err != nil {
		return Result{"ip_forward", Warn, err.Error(), "peapod needs /proc/sys/net/ipv4/ip_forward to give pods a way out"}
	}
	if v == "1" {
		return Result{Check: "ip_forward", Level: OK, Detail: "1"}
	}
	return Result{Check: "ip_forward", Level: OK, Detail: v + ": peapod turns it on while a masquerading network has pods, and puts it back after"}
}

func checkSpace(h Host, name, path string, warn, fail uint64) Result {
	free, err := h.FreeBytes(path)
	if err != nil {
		return Result{name, Warn, err.Error(), "check that " + path + " can be created"}
	}
	detail := fmt.Sprintf("%s free at %s", human(free), path)
	switch {
	case free < fail:
		return Result{name, Fail, detail, "free space there or choose another directory (--root/--run-root)"}
	case free < warn:
		return Result{name, Warn, detail, fmt.Sprintf("keep at least %s free there", human(warn))}
	}
	return Result{Check: name, Level: OK, Detail: detail}
}

func checkNetwork(h Host, n Network) []Result {
	src := "defaults or flags; written at first use"
	if n.Configured {
		src = "from network.json"
	}
	if n.Chain != "" {
		return []Result{{Check: "network", Level: OK, Detail: fmt.Sprintf("CNI conflist %q (%s); its plugins own the subnet", n.Chain, src)}}
	}
	rs := []Result{{Check: "network", Level: OK, Detail: fmt.Sprintf("bridge %s, subnet %s (%s)", n.Bridge, n.Subnet, src)}}
	if st, err := h.BridgeState(n); err != nil {
		rs = append(rs, Result{"bridge " + n.Bridge, Fail, err.Error(), "choose another --bridge for this root, or remove that link"})
	} else {
		rs = append(rs, Result{Check: "bridge " + n.Bridge, Level: OK, Detail: st})
	}
	if err := h.SubnetOverlap(n); err != nil {
		rs = append(rs, Result{"subnet " + n.Subnet.String(), Fail, err.Error(),
			"pick a free subnet for a new root (--subnet 10.x.0.0/16 on its first command), or remove the overlapping route"})
	} else {
		rs = append(rs, Result{Check: "subnet " + n.Subnet.String(), Level: OK, Detail: "overlaps no host address or route"})
	}
	return rs
}

// human prints a byte count in binary units.
func human(b uint64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := uint64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}

// Failed counts the FAIL results.
func Failed(rs []Result) int {
	n := 0
	for _, r := range rs {
		if r.Level == Fail {
			n++
		}
	}
	return n
}

// Print writes the report: one line per check, the fix indented below a
// WARN or FAIL, and a summary.
func Print(w io.Writer, rs []Result) error {
	var counts [3]int
	for _, r := range rs {
		counts[r.Level]++
		if _, err := fmt.Fprintf(w, "%-5s %-22s %s\n", r.Level, r.Check, r.Detail); err != nil {
			return err
		}
		if r.Level != OK && r.Fix != "" {
			fmt.Fprintf(w, "%-5s %-22s fix: %s\n", "", "", r.Fix)
		}
	}
	_, err := fmt.Fprintf(w, "\n%d OK, %d WARN, %d FAIL\n", counts[OK], counts[Warn], counts[Fail])
	return err
}
