// Package kfeature names the kernel features peapod needs and says, in one
// place, how to get each: `peapod check` prints these words next to a
// missing feature, and a command that runs into the same missing feature
// (an overlay mount's EINVAL, an unshare's EINVAL, a cgroup hierarchy that
// is not there) fails with the same words instead of a bare errno.
//
// A leaf (stdlib and x/sys/unix): the init stage links it.
package kfeature

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Feature is one kernel feature and how to get it.
type Feature struct {
	// Name is what `peapod check` calls it.
	Name string
	// Fix says what to do when it is missing.
	Fix string
}

// The features peapod checks.
var (
	Overlay = Feature{"overlayfs",
		"load the module (modprobe overlay; list it in /etc/modules to keep it) and keep --root on ext4, xfs (ftype=1), btrfs or tmpfs: overlayfs cannot use a directory on overlayfs as its upper layer"}
	Veth     = Feature{"veth", "load the module: modprobe veth (kernel option CONFIG_VETH)"}
	Bridge   = Feature{"bridge", "load the module: modprobe bridge (kernel option CONFIG_BRIDGE)"}
	Nftables = Feature{"nftables",
		"load the modules: modprobe nf_tables nft_chain_nat nft_masq (kernel options CONFIG_NF_TABLES, CONFIG_NFT_NAT, CONFIG_NFT_MASQ)"}
	Cgroups = Feature{"cgroups",
		"mount cgroup2 on /sys/fs/cgroup (systemd does with systemd.unified_cgroup_hierarchy=1 on the kernel command line), or the v1 hierarchies cpu, cpuacct, memory, pids, devices and freezer; --cgroup-driver picks one"}
)

// nsConfig is the kernel option behind each namespace type (/proc/self/ns name).
var nsConfig = map[string]string{
	"mnt": "CONFIG_NAMESPACES", "pid": "CONFIG_PID_NS", "net": "CONFIG_NET_NS",
	"uts": "CONFIG_UTS_NS", "ipc": "CONFIG_IPC_NS", "cgroup": "CONFIG_CGROUPS",
}

// Namespace is the feature of one namespace type, by its /proc/self/ns name.
func Namespace(kind string) Feature {
	return Feature{kind + " namespace",
		"boot a kernel built with " + nsConfig[kind] + "=y (Debian's and Ubuntu's are); inside a container, run peapod on the host or in a VM: a container's seccomp or missing CAP_SYS_ADMIN refuses new namespaces"}
}

// Wrap adds the feature's name and fix to err when err is what the kernel
// returns for a missing feature (EINVAL, ENODEV, ENOSYS, EOPNOTSUPP); other
// errors and nil pass unchanged.
func (f Feature) Wrap(err error) error {
	if err == nil || !missing(err) {
		return err
	}
	return f.Explain(err)
}

// Explain adds the feature's name and fix to a non-nil err, whatever it is.
func (f Feature) Explain(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w (is %s missing? %s; `peapod check` tests this)", err, f.Name, f.Fix)
}

func missing(err error) bool {
	for _, e := range []error{unix.EINVAL, unix.ENODEV, unix.ENOSYS, unix.EOPNOTSUPP} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// cloneKinds maps CLONE_NEW* flags to /proc/self/ns names.
var cloneKinds = []struct {
	flag int
	kind string
}{
	{unix.CLONE_NEWNS, "mnt"}, {unix.CLONE_NEWPID, "pid"}, {unix.CLONE_NEWNET, "net"},
	{unix.CLONE_NEWUTS, "uts"}, {unix.CLONE_NEWIPC, "ipc"}, {unix.CLONE_NEWCGROUP, "cgroup"},
}

// Unshare wraps an error of unshare(2) or clone(2) with flags: EINVAL names
// the namespace types of flags this kernel does not have (no
// /proc/self/ns file), EPERM says what refuses it.
func Unshare(flags int, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%w (new namespaces need root with CAP_SYS_ADMIN; in a container: --privileged, or run peapod on the host)", err)
	}
	if !missing(err) {
		return err
	}
	var absent []string
	for _, k := range cloneKinds {
		if flags&k.flag == 0 {
			continue
		}
		if _, serr := os.Stat("/proc/self/ns/" + k.kind); serr != nil {
			absent = append(absent, k.kind)
		}
	}
	if len(absent) == 0 {
		return err
	}
	f := Namespace(absent[0])
	f.Name = strings.Join(absent, ", ") + " namespace"
	return f.Explain(err)
}
