package containerinit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/peapod/peapod/runtime/spec"
	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/ktrace"
)

// mountFlag is what one OCI mount option does to mount(2) flags.
type mountFlag struct {
	// clear is set for options that turn a flag off (rw, suid, ...).
	clear bool
	// flag is the MS_* bit.
	flag uintptr
}

// mountFlagOptions are the OCI options that are mount(2) flags.
var mountFlagOptions = map[string]mountFlag{
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"nosuid": {false, unix.MS_NOSUID}, "suid": {true, unix.MS_NOSUID},
	"nodev": {false, unix.MS_NODEV}, "dev": {true, unix.MS_NODEV},
	"noexec": {false, unix.MS_NOEXEC}, "exec": {true, unix.MS_NOEXEC},
	"sync": {false, unix.MS_SYNCHRONOUS}, "async": {true, unix.MS_SYNCHRONOUS},
	"dirsync": {false, unix.MS_DIRSYNC}, "mand": {false, unix.MS_MANDLOCK}, "nomand": {true, unix.MS_MANDLOCK},
	"atime": {true, unix.MS_NOATIME}, "noatime": {false, unix.MS_NOATIME},
	"diratime": {true, unix.MS_NODIRATIME}, "nodiratime": {false, unix.MS_NODIRATIME},
	"relatime": {false, unix.MS_RELATIME}, "norelatime": {true, unix.MS_RELATIME},
	"strictatime": {false, unix.MS_STRICTATIME}, "nostrictatime": {true, unix.MS_STRICTATIME},
	"bind": {false, unix.MS_BIND}, "rbind": {false, unix.MS_BIND | unix.MS_REC},
}

// propagationOptions are applied after the mount exists.
var propagationOptions = map[string]uintptr{
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
	"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// parsedMount is an OCI mount's options split by what consumes them.
type parsedMount struct {
	// flags are the mount(2) flags.
	flags uintptr
	// propagation are flags applied by separate mount(2) calls afterwards.
	propagation []uintptr
	// data is the filesystem-specific option string.
	data string
	// subPath is the spec.SubPathOption value ("" when absent).
	subPath string
	// recursiveRO is spec.RecursiveReadOnlyOption: the mount and every
	// mount below it read-only.
	recursiveRO bool
}

// parseMountOptions sorts OCI mount options into flags, propagation,
// filesystem data and peapod's subPath.
func parseMountOptions(opts []string) parsedMount {
	var pm parsedMount
	var data []string
	for _, o := range opts {
		if f, ok := mountFlagOptions[o]; ok {
			if f.clear {
				pm.flags &^= f.flag
			} else {
				pm.flags |= f.flag
			}
			continue
		}
		if p, ok := propagationOptions[o]; ok {
			pm.propagation = append(pm.propagation, p)
			continue
		}
		if v, ok := strings.CutPrefix(o, spec.SubPathOption); ok {
			pm.subPath = v
			continue
		}
		if o == spec.RecursiveReadOnlyOption {
			pm.recursiveRO = true
			continue
		}
		data = append(data, o)
	}
	pm.data = strings.Join(data, ",")
	return pm
}

// isBind reports whether the mount is a bind mount.
func (pm parsedMount) isBind(typ string) bool {
	return typ == "bind" || pm.flags&unix.MS_BIND != 0
}

// checkMountDestination refuses destinations that could redirect the
// runtime's own writes to procfs (CVE-2019-16884 and friends): nothing may
// be mounted on or below /proc except procfs itself at /proc.
func checkMountDestination(m specs.Mount) error {
	if !filepath.IsAbs(m.Destination) {
		return fmt.Errorf("mount destination %q is not absolute", m.Destination)
	}
	dest := filepath.Clean(m.Destination)
	if dest == "/" {
		return errors.New("mount destination must not be /")
	}
	if dest == "/proc" && m.Type != "proc" {
		return fmt.Errorf("only procfs may be mounted on /proc, not %q", m.Type)
	}
	if strings.HasPrefix(dest, "/proc/") {
		return fmt.Errorf("mounting on %q under /proc is refused", dest)
	}
	return nil
}

// mountInRoot performs one OCI mount with its destination resolved inside
// the rootfs (symlinks cannot lead out: CVE-2021-30465, CVE-2024-45310), and
// mounts onto the resolved descriptor, so nothing can be swapped in between.
func mountInRoot(rootDir *os.File, m specs.Mount) error {
	if err := checkMountDestination(m); err != nil {
		return err
	}
	pm := parseMountOptions(m.Options)
	if err := doMountInRoot(rootDir, m, pm); err != nil {
		return fmt.Errorf("failed to mount %s %q on %q: %w", m.Type, m.Source, m.Destination, err)
	}
	return nil
}

// doMountInRoot is mountInRoot after validation.
func doMountInRoot(rootDir *os.File, m specs.Mount, pm parsedMount) error {
	source, isDir := m.Source, true
	if pm.isBind(m.Type) {
		src, err := openBindSource(m.Source, pm.subPath)
		if err != nil {
			return err
		}
		defer src.Close()
		var st unix.Stat_t
		if err := unix.Fstat(int(src.Fd()), &st); err != nil {
			return fmt.Errorf("failed to stat source: %w", err)
		}
		source, isDir = fdPath(src), st.Mode&unix.S_IFMT == unix.S_IFDIR
	} else if pm.subPath != "" {
		return errors.New("subPath is only valid on bind mounts")
	}
	dst, err := ensureMountpoint(rootDir, m.Destination, isDir)
	if err != nil {
		return err
	}
	defer dst.Close()
	if pm.isBind(m.Type) {
		if err := bindMount(rootDir, source, dst, m.Destination, pm); err != nil {
			return err
		}
	} else {
		if err := ktrace.Mount(source, fdPath(dst), m.Type, pm.flags, pm.data); err != nil {
			return err
		}
		if err := applyPropagation(rootDir, m.Destination, pm.propagation); err != nil {
			return err
		}
	}
	if pm.recursiveRO {
		return recursiveReadonly(rootDir, m.Destination)
	}
	return nil
}

// recursiveReadonly makes the mount at dest and every mount below it
// read-only. mount_setattr(2) with AT_RECURSIVE is needed: a
// MS_BIND|MS_REMOUNT|MS_RDONLY remount changes only the one mount it
// names (MS_REC is ignored on a remount), so a bind with "ro" leaves
// the submounts an rbind copied in (a tmpfs under a hostPath, say)
// writable.
func recursiveReadonly(rootDir *os.File, dest string) error {
	mnt, err := pathrs.OpenatInRoot(rootDir, dest)
	if err != nil {
		return fmt.Errorf("failed to reopen mount: %w", err)
	}
	defer mnt.Close()
	return ktrace.Do("mount_setattr", fdPath(mnt)+" MOUNT_ATTR_RDONLY AT_RECURSIVE", func() error {
		err := unix.MountSetattr(int(mnt.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE,
			&unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY})
		if err != nil {
			return fmt.Errorf("failed to make it recursively read-only (mount_setattr): %w", err)
		}
		return nil
	})
}

// bindMount binds source on dst, then remounts it with the requested flags:
// a bind ignores everything but MS_REC the first time.
func bindMount(rootDir *os.File, source string, dst *os.File, dest string, pm parsedMount) error {
	if err := ktrace.Mount(source, fdPath(dst), "", pm.flags&(unix.MS_BIND|unix.MS_REC)|unix.MS_BIND, ""); err != nil {
		return err
	}
	if rest := pm.flags &^ (unix.MS_BIND | unix.MS_REC); rest != 0 {
		mnt, err := pathrs.OpenatInRoot(rootDir, dest)
		if err != nil {
			return fmt.Errorf("failed to reopen bind: %w", err)
		}
		defer mnt.Close()
		if err := remountBind(fdPath(mnt), rest); err != nil {
			return err
		}
	}
	return applyPropagation(rootDir, dest, pm.propagation)
}

// applyPropagation applies propagation flags to the mount at dest.
func applyPropagation(rootDir *os.File, dest string, flags []uintptr) error {
	if len(flags) == 0 {
		return nil
	}
	mnt, err := pathrs.OpenatInRoot(rootDir, dest)
	if err != nil {
		return fmt.Errorf("failed to reopen mount: %w", err)
	}
	defer mnt.Close()
	for _, f := range flags {
		if err := ktrace.Mount("", fdPath(mnt), "", f, ""); err != nil {
			return fmt.Errorf("failed to set propagation: %w", err)
		}
	}
	return nil
}

// openBindSource opens a bind source O_PATH. With a subPath, the path is
// resolved beneath the volume: any component (absolute or relative symlink,
// "..") that leads out of it is refused with EXDEV, as the kubelet refuses
// such a subPath.
func openBindSource(source, subPath string) (*os.File, error) {
	if subPath == "" {
		f, err := os.OpenFile(source, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("failed to open bind source: %w", err)
		}
		return f, nil
	}
	vol, err := os.OpenFile(source, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("failed to open volume: %w", err)
	}
	defer vol.Close()
	fd, err := unix.Openat2(int(vol.Fd()), subPath, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	})
	if errors.Is(err, unix.EXDEV) {
		return nil, fmt.Errorf("subPath %q resolves outside the volume: %w", subPath, err)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to open subPath %q: %w", subPath, err)
	}
	return os.NewFile(uintptr(fd), filepath.Join(source, subPath)), nil
}

// ensureMountpoint opens dest inside the rootfs, creating it (a directory,
// or an empty file for a file bind) when missing, without ever leaving the
// rootfs. The result is an O_PATH handle.
func ensureMountpoint(rootDir *os.File, dest string, isDir bool) (*os.File, error) {
	f, err := pathrs.OpenatInRoot(rootDir, dest)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return f, err
	}
	if isDir {
		return pathrs.MkdirAllHandle(rootDir, dest, 0o755)
	}
	parent, err := pathrs.MkdirAllHandle(rootDir, filepath.Dir(dest), 0o755)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	fd, err := unix.Openat(int(parent.Fd()), filepath.Base(dest), unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("failed to create mount point: %w", err)
	}
	if err == nil {
		unix.Close(fd)
	}
	return pathrs.OpenatInRoot(rootDir, dest)
}
