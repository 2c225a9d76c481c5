package ktrace

import (
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Mount is unix.Mount, traced.
func Mount(source, target, fstype string, flags uintptr, data string) error {
	t := cur.Load()
	if t == nil {
		return unix.Mount(source, target, fstype, flags, data)
	}
	start := time.Now()
	err := unix.Mount(source, target, fstype, flags, data)
	t.emit("mount", start, err, "source", resolve(source), "target", resolve(target), "type", fstype, "flags", MountFlags(flags), "data", data)
	return err
}

// resolve names what a /proc/self/fd/N path (the init stage mounts through
// descriptors, resolved safely inside the rootfs) is open on, for the reader.
func resolve(p string) string {
	if !strings.HasPrefix(p, "/proc/self/fd/") {
		return p
	}
	if target, err := os.Readlink(p); err == nil {
		return p + " (" + target + ")"
	}
	return p
}

// Unmount is unix.Unmount, traced.
func Unmount(target string, flags int) error {
	t := cur.Load()
	if t == nil {
		return unix.Unmount(target, flags)
	}
	start := time.Now()
	err := unix.Unmount(target, flags)
	t.emit("umount", start, err, "target", target, "flags", umountFlags(flags))
	return err
}

// Unshare is unix.Unshare, traced.
func Unshare(flags int) error {
	t := cur.Load()
	if t == nil {
		return unix.Unshare(flags)
	}
	start := time.Now()
	err := unix.Unshare(flags)
	t.emit("unshare", start, err, "flags", CloneFlags(uintptr(flags)), "tid", unix.Gettid())
	return err
}

// Setns is unix.Setns, traced; path names the namespace file fd is open on.
func Setns(fd, nstype int, path string) error {
	t := cur.Load()
	if t == nil {
		return unix.Setns(fd, nstype)
	}
	start := time.Now()
	err := unix.Setns(fd, nstype)
	t.emit("setns", start, err, "type", CloneFlags(uintptr(nstype)), "path", path, "tid", unix.Gettid())
	return err
}

// PivotRoot is unix.PivotRoot, traced; dir names the new root (the
// calls use ".").
func PivotRoot(newroot, putold, dir string) error {
	t := cur.Load()
	if t == nil {
		return unix.PivotRoot(newroot, putold)
	}
	start := time.Now()
	err := unix.PivotRoot(newroot, putold)
	t.emit("pivot_root", start, err, "new_root", dir, "put_old", putold)
	return err
}

var cloneNames = []struct {
	flag uintptr
	name string
}{
	{unix.CLONE_NEWNS, "CLONE_NEWNS"}, {unix.CLONE_NEWPID, "CLONE_NEWPID"}, {unix.CLONE_NEWNET, "CLONE_NEWNET"},
	{unix.CLONE_NEWUTS, "CLONE_NEWUTS"}, {unix.CLONE_NEWIPC, "CLONE_NEWIPC"}, {unix.CLONE_NEWCGROUP, "CLONE_NEWCGROUP"},
	{unix.CLONE_NEWUSER, "CLONE_NEWUSER"}, {unix.CLONE_NEWTIME, "CLONE_NEWTIME"},
}

// CloneFlags spells a CLONE_NEW* set as names joined by "|".
func CloneFlags(f uintptr) string { return names(f, cloneNames) }

var mountNames = []struct {
	flag uintptr
	name string
}{
	{unix.MS_RDONLY, "MS_RDONLY"}, {unix.MS_NOSUID, "MS_NOSUID"}, {unix.MS_NODEV, "MS_NODEV"},
	{unix.MS_NOEXEC, "MS_NOEXEC"}, {unix.MS_REMOUNT, "MS_REMOUNT"}, {unix.MS_BIND, "MS_BIND"},
	{unix.MS_REC, "MS_REC"}, {unix.MS_PRIVATE, "MS_PRIVATE"}, {unix.MS_SLAVE, "MS_SLAVE"},
	{unix.MS_SHARED, "MS_SHARED"}, {unix.MS_STRICTATIME, "MS_STRICTATIME"}, {unix.MS_NOATIME, "MS_NOATIME"},
	{unix.MS_RELATIME, "MS_RELATIME"}, {unix.MS_NODIRATIME, "MS_NODIRATIME"}, {unix.MS_MOVE, "MS_MOVE"},
}

// MountFlags spells mount(2) flags as names joined by "|" ("0" for none).
func MountFlags(f uintptr) string { return names(f, mountNames) }

func umountFlags(f int) string {
	if f == unix.MNT_DETACH {
		return "MNT_DETACH"
	}
	return strconv.Itoa(f)
}

func names(f uintptr, table []struct {
	flag uintptr
	name string
}) string {
	if f == 0 {
		return "0"
	}
	var parts []string
	for _, n := range table {
		if f&n.flag != 0 {
			parts = append(parts, n.name)
			f &^= n.flag
		}
	}
	if f != 0 {
		parts = append(parts, "0x"+strconv.FormatUint(uint64(f), 16))
	}
	return strings.Join(parts, "|")
}

// StartProcess is os.StartProcess, traced as a clone with the namespace
// flags of attr.Sys (the fork is where new namespaces are made).
func StartProcess(path string, argv []string, attr *os.ProcAttr) (*os.Process, error) {
	t := cur.Load()
	if t == nil {
		return os.StartProcess(path, argv, attr)
	}
	var flags uintptr
	if attr.Sys != nil {
		flags = attr.Sys.Cloneflags
	}
	start := time.Now()
	p, err := os.StartProcess(path, argv, attr)
	pid := 0
	if p != nil {
		pid = p.Pid
	}
	t.emit("clone", start, err, "flags", CloneFlags(flags), "argv", strings.Join(argv, " "), "child", pid, "tid", unix.Gettid())
	return p, err
}
