package containerinit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/runtime/spec"

	"github.com/peapod/peapod/internal/ktrace"
)

// setupRootfs builds the container's root inside the init stage's new mount
// namespace and pivots into it. Nothing here is visible on the host, so
// nothing needs unmounting there when the container ends.
func setupRootfs(c *spec.Container) error {
	root := c.OCI.Root.Path
	if err := makeRootSlave(c.OCI.Linux, root); err != nil {
		return err
	}
	if err := mountOverlay(root, c.Rootfs); err != nil {
		return err
	}
	// pivot_root needs the new root to be a mount point of its own.
	if err := ktrace.Mount(root, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("failed to bind rootfs %q on itself: %w", root, err)
	}
	if err := populateRootfs(c, root); err != nil {
		return err
	}
	if err := pivotRoot(root); err != nil {
		return err
	}
	if c.OCI.Root.Readonly {
		if err := remountReadonly("/"); err != nil {
			return fmt.Errorf("failed to make root read-only: %w", err)
		}
	}
	return nil
}

// makeRootSlave stops every mount made from here on from propagating to the
// host, honouring a private rootfsPropagation. A shared one (the CRI's
// bidirectional mounts ask for it, as containerd does) keeps the mounts
// that are shared with the host's peers, so that a bind of one joins its
// peer group and mounts made in it inside reach the host; the mount that
// holds root is then made private, as runc does, so that the rootfs and
// everything mounted into it stay the container's (and pivot_root, which
// refuses a shared parent, works).
func makeRootSlave(l *specs.Linux, root string) error {
	flag := unix.MS_SLAVE | unix.MS_REC
	if l != nil {
		switch l.RootfsPropagation {
		case "", "slave", "rslave":
		case "private", "rprivate":
			flag = unix.MS_PRIVATE | unix.MS_REC
		case "shared", "rshared":
			flag = unix.MS_SHARED | unix.MS_REC
		default:
			return fmt.Errorf("unsupported rootfsPropagation %q", l.RootfsPropagation)
		}
	}
	if err := ktrace.Mount("", "/", "", uintptr(flag), ""); err != nil {
		return fmt.Errorf("failed to make / %s: %w", propagationName(flag), err)
	}
	if flag&unix.MS_SHARED != 0 {
		return parentMountPrivate(root)
	}
	return nil
}

// parentMountPrivate makes the mount that holds path private (runc's
// rootfsParentMountPrivate): EINVAL says path is no mount point (ENOENT
// that it is not made yet), so the walk goes up until it finds the one it
// is on.
func parentMountPrivate(path string) error {
	path = filepath.Clean(path)
	for {
		err := ktrace.Mount("", path, "", unix.MS_PRIVATE, "")
		if err == nil {
			return nil
		}
		if !(errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT)) || path == "/" {
			return fmt.Errorf("failed to make the mount holding %q private: %w", path, err)
		}
		path = filepath.Dir(path)
	}
}

// propagationName names a propagation flag for error messages.
func propagationName(flag int) string {
	switch {
	case flag&unix.MS_PRIVATE != 0:
		return "rprivate"
	case flag&unix.MS_SHARED != 0:
		return "rshared"
	}
	return "rslave"
}

// populateRootfs performs every mount, creates /dev and applies masked and
// read-only paths, all resolved inside root before pivot_root.
func populateRootfs(c *spec.Container, root string) error {
	rootDir, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("failed to open rootfs %q: %w", root, err)
	}
	defer rootDir.Close()
	// The host's /dev/null, verified, for masking (CVE-2025-31133): the
	// container's own /dev/null could be a symlink to something writable.
	null, err := openVerifiedDevNull()
	if err != nil {
		return err
	}
	defer null.Close()
	devIsTmpfs := false
	for _, m := range c.OCI.Mounts {
		if err := mountInRoot(rootDir, m); err != nil {
			return err
		}
		devIsTmpfs = devIsTmpfs || (filepath.Clean(m.Destination) == "/dev" && m.Type == "tmpfs")
	}
	if devIsTmpfs {
		if err := populateDev(rootDir, c.OCI.Linux); err != nil {
			return err
		}
	}
	if c.OCI.Linux == nil {
		return nil
	}
	if err := maskPaths(rootDir, null, c.OCI.Linux.MaskedPaths); err != nil {
		return err
	}
	return readonlyPaths(rootDir, c.OCI.Linux.ReadonlyPaths)
}

// openVerifiedDevNull opens /dev/null O_PATH and checks it is char 1:3.
func openVerifiedDevNull() (*os.File, error) {
	f, err := os.OpenFile("/dev/null", unix.O_PATH|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("failed to open /dev/null: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("failed to stat /dev/null: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
		f.Close()
		return nil, errors.New("/dev/null is not the 1:3 character device")
	}
	return f, nil
}

// maskPaths hides each existing path: a file under a bind of the verified
// /dev/null, a directory under an empty read-only tmpfs.
func maskPaths(rootDir, null *os.File, paths []string) error {
	for _, p := range paths {
		if err := maskPath(rootDir, null, p); err != nil {
			return fmt.Errorf("failed to mask %q: %w", p, err)
		}
	}
	return nil
}

// maskPath masks one path; a path the kernel does not have is skipped.
func maskPath(rootDir, null *os.File, p string) error {
	f, err := pathrs.OpenatInRoot(rootDir, p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return ktrace.Mount("tmpfs", fdPath(f), "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "nr_blocks=1,nr_inodes=1,mode=0555")
	}
	return ktrace.Mount(fdPath(null), fdPath(f), "", unix.MS_BIND, "")
}

// readonlyPaths makes each existing path a read-only bind of itself.
func readonlyPaths(rootDir *os.File, paths []string) error {
	for _, p := range paths {
		if err := readonlyPath(rootDir, p); err != nil {
			return fmt.Errorf("failed to make %q read-only: %w", p, err)
		}
	}
	return nil
}

// readonlyPath binds p on itself and remounts the bind read-only.
func readonlyPath(rootDir *os.File, p string) error {
	f, err := pathrs.OpenatInRoot(rootDir, p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if err := ktrace.Mount(fdPath(f), fdPath(f), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	// Re-resolve: f is the directory under the new bind, not the bind.
	bound, err := pathrs.OpenatInRoot(rootDir, p)
	if err != nil {
		return err
	}
	defer bound.Close()
	return remountReadonly(fdPath(bound))
}

// remountReadonly remounts the bind mount at path read-only, keeping its
// nosuid/nodev/noexec and atime flags: dropping a locked one is EPERM.
func remountReadonly(path string) error {
	return remountBind(path, unix.MS_RDONLY)
}

// remountBind remounts the bind at path with flags plus those it has.
func remountBind(path string, flags uintptr) error {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return fmt.Errorf("failed to statfs %q: %w", path, err)
	}
	kept := uintptr(0)
	for _, f := range []struct{ st, ms uintptr }{
		{unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NODEV, unix.MS_NODEV}, {unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_NOATIME, unix.MS_NOATIME}, {unix.ST_NODIRATIME, unix.MS_NODIRATIME}, {unix.ST_RELATIME, unix.MS_RELATIME},
		{unix.ST_RDONLY, unix.MS_RDONLY},
	} {
		if uintptr(st.Flags)&f.st != 0 {
			kept |= f.ms
		}
	}
	if err := ktrace.Mount("", path, "", unix.MS_BIND|unix.MS_REMOUNT|kept|flags, ""); err != nil {
		return fmt.Errorf("failed to remount %q: %w", path, err)
	}
	return nil
}

// pivotRoot makes root the process's root and detaches the old one, so no
// host mount stays reachable (unlike chroot).
func pivotRoot(root string) error {
	newRoot, err := unix.Open(root, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("failed to open new root %q: %w", root, err)
	}
	defer unix.Close(newRoot)
	oldRoot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("failed to open old root: %w", err)
	}
	defer unix.Close(oldRoot)
	if err := unix.Fchdir(newRoot); err != nil {
		return fmt.Errorf("failed to enter new root %q: %w", root, err)
	}
	// pivot_root(".", ".") stacks the old root on top of the new one; no
	// put_old directory is needed inside the image.
	if err := ktrace.PivotRoot(".", ".", root); err != nil {
		return fmt.Errorf("failed to pivot_root to %q: %w", root, err)
	}
	if err := unix.Fchdir(oldRoot); err != nil {
		return fmt.Errorf("failed to enter old root: %w", err)
	}
	// Slave first, so the detach cannot propagate anywhere.
	if err := ktrace.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("failed to make old root rslave: %w", err)
	}
	if err := ktrace.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("failed to detach old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("failed to enter new root: %w", err)
	}
	return nil
}

// fdPath is the magic link through which mount(2) reaches an open file
// without resolving its path again.
func fdPath(f *os.File) string {
	return fmt.Sprintf("/proc/self/fd/%d", f.Fd())
}

// defaultDevices are created in every container with a tmpfs /dev, as runc's
// specconv adds them (the device cgroup allows exactly these).
var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0},
}

// devSymlinks are the links runtime-linux.md requires in /dev.
var devSymlinks = [][2]string{
	{"fd", "/proc/self/fd"},
	{"stdin", "/proc/self/fd/0"},
	{"stdout", "/proc/self/fd/1"},
	{"stderr", "/proc/self/fd/2"},
	{"ptmx", "pts/ptmx"},
}

// populateDev creates the device nodes and links in the container's fresh
// /dev tmpfs. Every operation is relative to a /dev dirfd checked to be that
// tmpfs, so an image whose /dev is a symlink to a host directory cannot
// make the runtime touch the host (CVE-2026-41579).
func populateDev(rootDir *os.File, l *specs.Linux) error {
	dev, err := pathrs.OpenatInRoot(rootDir, "/dev")
	if err != nil {
		return fmt.Errorf("failed to open /dev in rootfs: %w", err)
	}
	defer dev.Close()
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(int(dev.Fd()), &sfs); err != nil {
		return fmt.Errorf("failed to statfs /dev: %w", err)
	}
	if sfs.Type != unix.TMPFS_MAGIC {
		return errors.New("refusing to populate /dev: it is not the tmpfs mounted for it")
	}
	var devices []specs.LinuxDevice
	if l != nil {
		devices = l.Devices
	}
	old := unix.Umask(0) // nodes get exactly their spec mode
	defer unix.Umask(old)
	for _, d := range mergeDevices(defaultDevices, devices) {
		if err := createDevice(rootDir, dev, d); err != nil {
			return fmt.Errorf("failed to create device %q: %w", d.Path, err)
		}
	}
	return createDevSymlinks(dev)
}

// mergeDevices returns defaults overridden and extended by spec devices,
// without /dev/ptmx, which is always the pts/ptmx link.
func mergeDevices(defaults, devices []specs.LinuxDevice) []specs.LinuxDevice {
	byPath := make(map[string]int)
	var out []specs.LinuxDevice
	for _, d := range append(append([]specs.LinuxDevice(nil), defaults...), devices...) {
		p := filepath.Clean(d.Path)
		if p == "/dev/ptmx" {
			continue
		}
		if i, ok := byPath[p]; ok {
			out[i] = d
			continue
		}
		byPath[p] = len(out)
		out = append(out, d)
	}
	return out
}

// createDevice mknods d below /dev, relative to dirfds only.
func createDevice(rootDir, dev *os.File, d specs.LinuxDevice) error {
	rel, ok := strings.CutPrefix(filepath.Clean(d.Path), "/dev/")
	if !ok || rel == "" {
		return errors.New("device path must be below /dev")
	}
	mode, err := deviceMode(d)
	if err != nil {
		return err
	}
	parent := dev
	if dir := filepath.Dir(rel); dir != "." {
		parent, err = pathrs.MkdirAllHandle(dev, dir, 0o755)
		if err != nil {
			return err
		}
		defer parent.Close()
	}
	name := filepath.Base(rel)
	if err := unix.Mknodat(int(parent.Fd()), name, mode, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))); err != nil {
		return err
	}
	if d.UID != nil || d.GID != nil {
		uid, gid := -1, -1
		if d.UID != nil {
			uid = int(*d.UID)
		}
		if d.GID != nil {
			gid = int(*d.GID)
		}
		return unix.Fchownat(int(parent.Fd()), name, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
	}
	return nil
}

// deviceMode is the mknod mode of d: its type bits plus permissions
// (0666 when the spec gives none).
func deviceMode(d specs.LinuxDevice) (uint32, error) {
	perm := uint32(0o666)
	if d.FileMode != nil {
		perm = uint32(d.FileMode.Perm())
	}
	switch d.Type {
	case "c", "u":
		return unix.S_IFCHR | perm, nil
	case "b":
		return unix.S_IFBLK | perm, nil
	case "p":
		return unix.S_IFIFO | perm, nil
	}
	return 0, fmt.Errorf("unknown device type %q", d.Type)
}

// createDevSymlinks creates the /dev links with symlinkat on the /dev
// dirfd.
func createDevSymlinks(dev *os.File) error {
	for _, l := range devSymlinks {
		if err := unix.Symlinkat(l[1], int(dev.Fd()), l[0]); err != nil {
			return fmt.Errorf("failed to link /dev/%s to %q: %w", l[0], l[1], err)
		}
	}
	return nil
}
