package namespaces

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/ktrace"
)

// BindHelperReadOnly makes dst a read-only bind mount of the helper binary
// src (peapod-init), which every container start and exec then executes
// through dst.
//
// Why (CVE-2019-5736): every helper process runs inside a container's
// namespaces for a moment, and a hostile container can reach its
// /proc/<pid>/exe — directly, or by making a command's interpreter
// /proc/self/exe, which re-executes the helper inside the container. Once
// the helper has exited, opening that link for writing would overwrite the
// host's binary. Executed through a read-only mount, the link leads to a
// file whose mount refuses every write (EROFS), and the container cannot
// reach the host's mount table to remount it. Non-dumpable helpers alone do
// not close the interpreter path. A sealed memfd copy per start (runc's
// other answer) was measured at ~1 ms and 3 MiB per start or exec probe;
// this costs nothing per start.
//
// Idempotent: a dst that already is a read-only bind of src's current inode
// is left alone; one that binds an older inode (peapod was upgraded) is
// replaced.
func BindHelperReadOnly(src, dst string) error {
	var want unix.Stat_t
	if err := unix.Stat(src, &want); err != nil {
		return fmt.Errorf("failed to stat helper %q: %w", src, err)
	}
	if readOnlyBindOf(dst, &want) {
		return nil
	}
	if err := UnbindHelper(dst); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("failed to create dir of %q: %w", dst, err)
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_RDONLY, 0o755)
	if err != nil {
		return fmt.Errorf("failed to create mount point %q: %w", dst, err)
	}
	f.Close()
	if err := ktrace.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("failed to bind helper %q on %q: %w", src, dst, err)
	}
	// A bind mount takes its flags from the source mount; read-only needs
	// a remount of the bind itself.
	if err := ktrace.Mount("", dst, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return errors.Join(fmt.Errorf("failed to make helper mount %q read-only: %w", dst, err), UnbindHelper(dst))
	}
	return nil
}

// HelperBound reports whether dst is already what BindHelperReadOnly(src,
// dst) would make it.
func HelperBound(src, dst string) bool {
	var want unix.Stat_t
	return unix.Stat(src, &want) == nil && readOnlyBindOf(dst, &want)
}

// readOnlyBindOf reports whether dst is a read-only mount of the inode st.
func readOnlyBindOf(dst string, st *unix.Stat_t) bool {
	var got unix.Stat_t
	if unix.Stat(dst, &got) != nil || got.Dev != st.Dev || got.Ino != st.Ino {
		return false
	}
	var fs unix.Statfs_t
	return unix.Statfs(dst, &fs) == nil && fs.Flags&unix.ST_RDONLY != 0
}

// UnbindHelper unmounts and removes dst; nothing there is success.
func UnbindHelper(dst string) error {
	if err := UnmountUnder(dst); err != nil {
		return err
	}
	if err := os.Remove(dst); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to remove helper mount point %q: %w", dst, err)
	}
	return nil
}
