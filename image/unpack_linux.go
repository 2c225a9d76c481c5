package image

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// whiteoutPrefix marks a deleted file in an OCI/docker layer tar.
	whiteoutPrefix = ".wh."
	// whiteoutMetaPrefix marks AUFS bookkeeping entries (hardlink dirs).
	whiteoutMetaPrefix = ".wh..wh."
	// opaqueWhiteout marks a directory whose lower contents are hidden.
	opaqueWhiteout = ".wh..wh..opq"
	// overlayOpaqueXattr is what overlayfs reads to treat a directory as opaque.
	overlayOpaqueXattr = "trusted.overlay.opaque"
	// paxXattrPrefix is how archive/tar carries extended attributes.
	paxXattrPrefix = "SCHILY.xattr."
)

// resolveBeneath keeps every lookup inside the layer root and refuses any
// symlink on the way: an honest layer never writes through its own symlink,
// and one that does is the classic way to reach outside the root.
const resolveBeneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// unpacker writes one layer's tar stream into an empty directory.
type unpacker struct {
	root  int        // fd of the layer root
	chown bool       // apply the entries' uid/gid (only root can)
	dirs  []dirTimes // directory times, applied once all entries are written
	size  int64      // regular-file bytes written
}

// dirTimes remembers a directory's times until its children are written.
type dirTimes struct {
	rel   string    // path relative to the layer root
	atime time.Time // access time from the tar header
	mtime time.Time // modification time from the tar header
}

// unpackLayer unpacks the layer tar r into dir, which must be empty, and
// returns the number of regular-file bytes written.
func unpackLayer(dir string, r io.Reader, chown bool) (int64, error) {
	root, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("failed to open layer dir %q: %w", dir, err)
	}
	defer unix.Close(root)
	// The staging dir is 0700; a layer without a "./" entry gets the usual root mode.
	if err := unix.Fchmod(root, 0o755); err != nil {
		return 0, fmt.Errorf("failed to chmod layer dir %q: %w", dir, err)
	}
	u := &unpacker{root: root, chown: chown}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("failed to read layer tar: %w", err)
		}
		if err := u.entry(tr, hdr); err != nil {
			return 0, fmt.Errorf("failed to unpack tar entry %q: %w", hdr.Name, err)
		}
	}
	if err := u.applyDirTimes(); err != nil {
		return 0, err
	}
	return u.size, nil
}

// cleanName turns a tar entry name into a path relative to the layer root,
// refusing one that climbs out of it.
func cleanName(name string) (string, error) {
	// A leading "/" is stripped, as GNU tar does on extraction.
	rel := path.Clean(strings.TrimLeft(name, "/"))
	if rel == "" {
		rel = "."
	}
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%q climbs out of the layer root: %w", name, ErrUnsafePath)
	}
	return rel, nil
}

// entry applies one tar entry.
func (u *unpacker) entry(tr *tar.Reader, hdr *tar.Header) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if rel == "." {
		return u.rootDir(hdr)
	}
	parentRel, base := path.Dir(rel), path.Base(rel)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return u.whiteout(parentRel, base)
	}
	parent, err := u.openDir(parentRel)
	if err != nil {
		return err
	}
	defer unix.Close(parent)
	if hdr.Typeflag == tar.TypeDir {
		return u.dir(parent, rel, base, hdr)
	}
	if err := removeExisting(parent, base); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		return u.file(parent, base, tr, hdr)
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, parent, base); err != nil {
			return fmt.Errorf("failed to create symlink: %w", err)
		}
		return u.attrs(parent, base, hdr, false)
	case tar.TypeLink:
		return u.hardlink(parent, base, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return u.node(parent, base, hdr)
	default:
		return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
}

// openDir opens the directory rel beneath the root, creating missing
// components with mode 0755.
func (u *unpacker) openDir(rel string) (int, error) {
	fd, err := u.openBeneath(rel)
	if errors.Is(err, unix.ENOENT) {
		return u.mkdirWalk(rel)
	}
	return fd, err
}

// openBeneath opens the existing directory rel without leaving the root or
// following any symlink.
func (u *unpacker) openBeneath(rel string) (int, error) {
	how := &unix.OpenHow{
		// No O_NOFOLLOW: with it a trailing symlink fails as ENOTDIR, while
		// RESOLVE_NO_SYMLINKS already refuses it (and any other) as ELOOP.
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: resolveBeneath,
	}
	fd, err := unix.Openat2(u.root, rel, how)
	switch {
	case err == nil:
		return fd, nil
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV):
		// ELOOP: a symlink on the way; EXDEV: the path would leave the root.
		return -1, fmt.Errorf("directory %q is reached through a symlink: %w", rel, ErrUnsafePath)
	default:
		return -1, fmt.Errorf("failed to open directory %q in layer: %w", rel, err)
	}
}

// mkdirWalk creates rel one component at a time, never following a symlink.
func (u *unpacker) mkdirWalk(rel string) (int, error) {
	fd, err := unix.Openat(u.root, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("failed to reopen layer root: %w", err)
	}
	for _, c := range strings.Split(rel, "/") {
		if err := unix.Mkdirat(fd, c, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			unix.Close(fd)
			return -1, fmt.Errorf("failed to create directory %q in layer: %w", rel, err)
		}
		next, err := unix.Openat(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil && isSymlinkAt(fd, c) {
			err = fmt.Errorf("directory %q is reached through a symlink: %w", rel, ErrUnsafePath)
		}
		unix.Close(fd)
		if err != nil {
			return -1, fmt.Errorf("failed to open directory %q in layer: %w", rel, err)
		}
		fd = next
	}
	return fd, nil
}

// isSymlinkAt reports whether name in dir is a symlink.
func isSymlinkAt(dir int, name string) bool {
	var st unix.Stat_t
	return unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK
}

// removeExisting clears name in dir so that a later entry replaces an earlier one.
func removeExisting(dir int, name string) error {
	var st unix.Stat_t
	err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to stat existing %q: %w", name, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		// /proc/self/fd/N is our own open directory, so RemoveAll stays in it.
		if err := os.RemoveAll(procPath(dir, name)); err != nil {
			return fmt.Errorf("failed to replace directory %q: %w", name, err)
		}
		return nil
	}
	if err := unix.Unlinkat(dir, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("failed to replace %q: %w", name, err)
	}
	return nil
}

// procPath names name inside the open directory dir without resolving dir's path again.
func procPath(dir int, name string) string {
	return fmt.Sprintf("/proc/self/fd/%d/%s", dir, name)
}

// rootDir applies a "./" entry to the layer root itself.
func (u *unpacker) rootDir(hdr *tar.Header) error {
	if hdr.Typeflag != tar.TypeDir {
		return fmt.Errorf("the layer root must be a directory, not type %q: %w", hdr.Typeflag, ErrUnsafePath)
	}
	u.dirs = append(u.dirs, dirTimes{rel: ".", atime: hdr.AccessTime, mtime: hdr.ModTime})
	return u.attrs(u.root, ".", hdr, true)
}

// dir creates (or keeps) a directory and remembers its times for later.
func (u *unpacker) dir(parent int, rel, base string, hdr *tar.Header) error {
	var st unix.Stat_t
	err := unix.Fstatat(parent, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if err := removeExisting(parent, base); err != nil {
			return err
		}
	}
	// An existing directory is kept: it may hold earlier entries and an opaque marker.
	if err := unix.Mkdirat(parent, base, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("failed to create directory: %w", err)
	}
	u.dirs = append(u.dirs, dirTimes{rel: rel, atime: hdr.AccessTime, mtime: hdr.ModTime})
	return u.attrs(parent, base, hdr, true)
}

// file writes a regular file's content.
func (u *unpacker) file(parent int, base string, tr *tar.Reader, hdr *tar.Header) error {
	fd, err := unix.Openat(parent, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("failed to create file: %w", err)
	}
	f := os.NewFile(uintptr(fd), base)
	n, err := io.Copy(f, tr)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("failed to write file: %w", err)
	}
	u.size += n
	return u.attrs(parent, base, hdr, true)
}

// hardlink links base to an earlier entry of the same layer.
func (u *unpacker) hardlink(parent int, base string, hdr *tar.Header) error {
	// Link targets are archive-relative; an absolute one only comes from
	// `tar -P` of a host path, never from an image builder.
	if strings.HasPrefix(hdr.Linkname, "/") {
		return fmt.Errorf("hardlink target %q is absolute: %w", hdr.Linkname, ErrUnsafePath)
	}
	target, err := cleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hardlink target: %w", err)
	}
	if target == "." {
		return fmt.Errorf("hardlink target %q is the layer root: %w", hdr.Linkname, ErrUnsafePath)
	}
	tdir, err := u.openBeneath(path.Dir(target))
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
	}
	defer unix.Close(tdir)
	// linkat without AT_SYMLINK_FOLLOW links a symlink itself, never what it points at.
	if err := unix.Linkat(tdir, path.Base(target), parent, base, 0); err != nil {
		return fmt.Errorf("failed to link to %q: %w", hdr.Linkname, err)
	}
	return nil
}

// node creates a device node or FIFO.
func (u *unpacker) node(parent int, base string, hdr *tar.Header) error {
	mode := uint32(unix.S_IFIFO)
	switch hdr.Typeflag {
	case tar.TypeChar:
		mode = unix.S_IFCHR
	case tar.TypeBlock:
		mode = unix.S_IFBLK
	}
	dev := int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
	if err := unix.Mknodat(parent, base, mode|0o600, dev); err != nil {
		return fmt.Errorf("failed to create device node: %w", err)
	}
	return u.attrs(parent, base, hdr, true)
}

// whiteout turns a .wh. entry into its overlayfs form.
func (u *unpacker) whiteout(parentRel, base string) error {
	parent, err := u.openDir(parentRel)
	if err != nil {
		return err
	}
	defer unix.Close(parent)
	if base == opaqueWhiteout {
		if err := unix.Fsetxattr(parent, overlayOpaqueXattr, []byte("y"), 0); err != nil {
			return fmt.Errorf("failed to mark directory %q opaque: %w", parentRel, err)
		}
		return nil
	}
	if strings.HasPrefix(base, whiteoutMetaPrefix) {
		return nil // AUFS bookkeeping: nothing for overlayfs to apply
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "." || name == ".." {
		return fmt.Errorf("whiteout %q names a parent: %w", base, ErrUnsafePath)
	}
	if err := removeExisting(parent, name); err != nil {
		return err
	}
	// overlayfs reads a 0:0 character device as "deleted in this layer".
	if err := unix.Mknodat(parent, name, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("failed to create whiteout for %q: %w", name, err)
	}
	return nil
}

// attrs applies ownership, mode, xattrs and (except for directories) times.
// Order matters: chown clears setuid bits and file capabilities, so mode and
// xattrs come after it.
func (u *unpacker) attrs(parent int, base string, hdr *tar.Header, chmod bool) error {
	if u.chown {
		if err := unix.Fchownat(parent, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("failed to chown: %w", err)
		}
	}
	// chmod is never asked for on a symlink: fchmodat would follow it.
	if chmod {
		if err := unix.Fchmodat(parent, base, uint32(hdr.Mode&0o7777), 0); err != nil {
			return fmt.Errorf("failed to chmod: %w", err)
		}
	}
	if err := setXattrs(parent, base, hdr); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeDir {
		return nil
	}
	return setTimes(parent, base, hdr.AccessTime, hdr.ModTime)
}

// setXattrs applies the entry's PAX xattrs.
func setXattrs(parent int, base string, hdr *tar.Header) error {
	for key, value := range hdr.PAXRecords {
		attr, ok := strings.CutPrefix(key, paxXattrPrefix)
		if !ok {
			continue
		}
		// overlayfs trusts trusted.overlay.* on its layers (opaque, redirect,
		// metacopy): only the whiteout conversion above may set them.
		if strings.HasPrefix(attr, "trusted.overlay.") {
			continue
		}
		if err := unix.Lsetxattr(procPath(parent, base), attr, []byte(value), 0); err != nil {
			return fmt.Errorf("failed to set xattr %q: %w", attr, err)
		}
	}
	return nil
}

// setTimes sets atime and mtime without following a symlink.
func setTimes(parent int, base string, atime, mtime time.Time) error {
	if atime.IsZero() {
		atime = mtime
	}
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(parent, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("failed to set times on %q: %w", base, err)
	}
	return nil
}

// applyDirTimes sets directory times last, since creating children changed them.
func (u *unpacker) applyDirTimes() error {
	for i := len(u.dirs) - 1; i >= 0; i-- {
		d := u.dirs[i]
		parent, err := u.openBeneath(path.Dir(d.rel))
		if err != nil {
			continue // replaced by a later entry
		}
		base := path.Base(d.rel)
		if d.rel == "." {
			base = "."
		}
		err = setTimes(parent, base, d.atime, d.mtime)
		unix.Close(parent)
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	return nil
}
