package preflight

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/moby/sys/mountinfo"
	"github.com/peapod/peapod/cgroups"
	"github.com/peapod/peapod/cni"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// LinuxHost asks this machine. Its probes create namespaces, links and
// nftables tables only inside throwaway namespaces that die with the probe.
type LinuxHost struct {
	// CgroupRoot is where the cgroup hierarchies are mounted (default /sys/fs/cgroup).
	CgroupRoot string
}

var _ Host = LinuxHost{}

func (LinuxHost) KernelRelease() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	return unix.ByteSliceToString(u.Release[:]) + " " + unix.ByteSliceToString(u.Machine[:]), nil
}

func (LinuxHost) HasNamespaceFile(kind string) bool {
	_, err := os.Lstat("/proc/self/ns/" + kind)
	return err == nil
}

var kindFlags = map[string]uintptr{
	"mnt": unix.CLONE_NEWNS, "pid": unix.CLONE_NEWPID, "net": unix.CLONE_NEWNET,
	"uts": unix.CLONE_NEWUTS, "ipc": unix.CLONE_NEWIPC, "cgroup": unix.CLONE_NEWCGROUP,
}

// ProbeNamespace runs `true` in a child cloned with the namespace's flag:
// clone(2) fails when the kernel or a seccomp filter refuses it. A child,
// not unshare(2) here: a Go process cannot unshare its mount namespace
// (its threads share their fs_struct).
func (LinuxHost) ProbeNamespace(kind string) error {
	flag, ok := kindFlags[kind]
	if !ok {
		return fmt.Errorf("unknown namespace kind %q", kind)
	}
	bin, err := exec.LookPath("true")
	if err != nil {
		return fmt.Errorf("no `true` to run in the probe: %w", err)
	}
	cmd := exec.Command(bin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: flag}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("clone(%s): %w", kind, err)
	}
	return nil
}

func (LinuxHost) Filesystems() (string, error) {
	b, err := os.ReadFile("/proc/filesystems")
	return string(b), err
}

// fsNames are the filesystems whose magic the report names.
var fsNames = map[int64]string{
	unix.EXT4_SUPER_MAGIC: "ext4", unix.XFS_SUPER_MAGIC: "xfs", unix.BTRFS_SUPER_MAGIC: "btrfs",
	unix.TMPFS_MAGIC: "tmpfs", unix.OVERLAYFS_SUPER_MAGIC: "overlayfs", unix.NFS_SUPER_MAGIC: "nfs",
	unix.V9FS_MAGIC: "9p", unix.FUSE_SUPER_MAGIC: "fuse",
}

func (LinuxHost) FSTypeName(path string) (string, error) {
	st, _, err := statfsNearest(path)
	if err != nil {
		return "", err
	}
	if n, ok := fsNames[int64(st.Type)]; ok {
		return n, nil
	}
	return fmt.Sprintf("filesystem 0x%x", st.Type), nil
}

// statfsNearest statfs'es path or, while it does not exist, its parent.
func statfsNearest(path string) (unix.Statfs_t, string, error) {
	p := filepath.Clean(path)
	for {
		var st unix.Statfs_t
		err := unix.Statfs(p, &st)
		if err == nil {
			return st, p, nil
		}
		if !errors.Is(err, unix.ENOENT) || p == "/" {
			return st, p, fmt.Errorf("statfs %s: %w", p, err)
		}
		p = filepath.Dir(p)
	}
}

func (LinuxHost) FreeBytes(path string) (uint64, error) {
	st, _, err := statfsNearest(path)
	if err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// inThrowawayNetns runs fn on a locked thread moved into a new network
// namespace that nothing pins: the thread is never unlocked, so the Go
// runtime ends it when fn returns, and the namespace dies with it, taking
// whatever fn created. The host's network is never touched.
func inThrowawayNetns(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see above
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

func (LinuxHost) ProbeLinks() (bridgeErr, vethErr error) {
	err := inThrowawayNetns(func() error {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "ppcheck0"}}
		if bridgeErr = netlink.LinkAdd(br); bridgeErr == nil {
			bridgeErr = netlink.LinkDel(br)
		}
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "ppcheck1"}, PeerName: "ppcheck2"}
		if vethErr = netlink.LinkAdd(veth); vethErr == nil {
			vethErr = netlink.LinkDel(veth)
		}
		return nil
	})
	if err != nil {
		return err, err
	}
	return bridgeErr, vethErr
}

func (LinuxHost) ProbeNftables() error {
	return inThrowawayNetns(func() error {
		conn := &nftables.Conn{}
		table := conn.AddTable(&nftables.Table{Name: "peapod-check", Family: nftables.TableFamilyIPv4})
		chain := conn.AddChain(&nftables.Chain{Name: "postrouting", Table: table, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource})
		conn.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: []expr.Any{&expr.Masq{}}})
		if err := conn.Flush(); err != nil {
			return err
		}
		conn.DelTable(table)
		return conn.Flush()
	})
}

func (h LinuxHost) cgroupRoot() string {
	if h.CgroupRoot != "" {
		return h.CgroupRoot
	}
	return cgroups.DefaultMountRoot
}

func (h LinuxHost) Cgroups(driver string) (cgroups.Mode, string, []string, error) {
	root := h.cgroupRoot()
	mode, err := cgroups.Detect(root)
	if err != nil {
		return mode, "", nil, err
	}
	d, err := cgroups.New(driver, root)
	if err != nil {
		return mode, "", nil, err
	}
	var ctrls []string
	if d.Name() == cgroups.DriverV2 {
		dir := root
		if mode == cgroups.ModeHybrid {
			dir = filepath.Join(root, "unified")
		}
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
		if err != nil {
			return mode, d.Name(), nil, err
		}
		ctrls = strings.Fields(string(b))
	} else {
		for _, c := range []string{"cpu", "cpuacct", "memory", "pids", "devices", "freezer"} {
			if _, err := d.Dir(c, "x"); err == nil {
				ctrls = append(ctrls, c)
			}
		}
	}
	return mode, d.Name(), ctrls, nil
}

func (LinuxHost) NetnsPropagation() (string, error) {
	ms, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter("/run/netns"))
	if err != nil {
		return "", fmt.Errorf("failed to read mountinfo: %w", err)
	}
	if len(ms) == 0 {
		return "", nil
	}
	opt := ms[len(ms)-1].Optional // the top mount is what a new pin lands on
	switch {
	case strings.Contains(opt, "shared:"):
		return "shared", nil
	case strings.Contains(opt, "master:"):
		return "slave", nil
	}
	return "private", nil
}

func (LinuxHost) Sysctl(path string) (string, error) {
	b, err := os.ReadFile(filepath.Join("/proc/sys", path))
	return strings.TrimSpace(string(b)), err
}

func (LinuxHost) NetworkWarnings(n Network) []Result {
	if n.Chain != "" {
		return nil
	}
	var rs []Result
	for _, w := range cni.HostWarnings(cniConfig(n)) {
		name := "forward policy"
		if strings.HasPrefix(w.Problem, "br_netfilter") {
			name = "br_netfilter"
		}
		rs = append(rs, Result{name, Warn, w.Problem, w.Fix})
	}
	if len(rs) == 0 {
		rs = append(rs, Result{Check: "host firewall", Level: OK, Detail: "no br_netfilter FORWARD pass, no forward hook with policy drop"})
	}
	return rs
}

func (LinuxHost) SubnetOverlap(n Network) error { return cni.CheckSubnet(cniConfig(n)) }

func (LinuxHost) BridgeState(n Network) (string, error) { return cni.BridgeState(cniConfig(n)) }

// cniConfig is the cni.Config of n.
func cniConfig(n Network) cni.Config {
	c := cni.DefaultConfig(filepath.Dir(n.DataDir))
	c.Bridge, c.Subnet, c.DataDir = n.Bridge, n.Subnet, n.DataDir
	c.Gateway = n.Subnet.Addr().Next()
	return c
}
