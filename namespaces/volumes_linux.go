package namespaces

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/ktrace"
)

// MountTmpfs mounts a tmpfs of at most size bytes (0: the kernel's default,
// half of RAM) on dir, creating dir. Pod-wide memory-backed directories
// (/dev/shm, emptyDir with medium Memory) live in such a mount on the host
// so every container of the pod binds the same one.
// mode is the octal mode of the tmpfs root (e.g. 01777 for /dev/shm).
func MountTmpfs(dir string, size int64, mode uint32) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("failed to create %q: %w", dir, err)
	}
	data := fmt.Sprintf("mode=%04o", mode&0o7777)
	if size > 0 {
		data += ",size=" + strconv.FormatInt(size, 10)
	}
	if err := ktrace.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, data); err != nil {
		return fmt.Errorf("failed to mount tmpfs on %q: %w", dir, err)
	}
	return nil
}

// UnmountUnder detaches every mount at or below dir, deepest first, so a
// directory tree can be removed without reaching into a mounted
// filesystem. Nothing mounted is success; so is a mount that went away
// meanwhile (EINVAL, ENOENT).
func UnmountUnder(dir string) error {
	dir = filepath.Clean(dir)
	points, err := mountPointsUnder(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range points {
		err := ktrace.Unmount(p, unix.MNT_DETACH)
		if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("failed to unmount %q: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// mountPointsUnder lists mount points at or below dir, deepest first.
func mountPointsUnder(dir string) ([]string, error) {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil, fmt.Errorf("failed to read mountinfo: %w", err)
	}
	out := make([]string, 0, len(mounts))
	for _, m := range mounts {
		out = append(out, m.Mountpoint)
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}
