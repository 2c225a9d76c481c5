package pod

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/peapod/peapod/runtime/state"
	"golang.org/x/sys/unix"
)

// Copying files in and out of a running container (`peapod cp`), as a tar
// stream between a packer and an unpacker that both run in this process.
//
// kubectl cp runs tar inside the container, so the container writes the
// stream and a hostile one named entries "../x" or planted a symlink and
// then a file "link/x" (CVE-2018-1002100, CVE-2019-1002101,
// CVE-2019-11246). Here the container never writes the stream: peapod
// reads the container's files itself, through the root of a process of the
// container (/proc/PID/root, which shows that process's mount namespace, so
// volumes are seen as the container sees them), resolving every path with
// openat2(RESOLVE_IN_ROOT): a symlink the container planted resolves inside
// its root, never out onto the host. Below the named path, the walk opens
// one component at a time with O_NOFOLLOW and stores symlinks as symlinks.
// The unpacker still trusts no stream: entries that climb out are refused,
// every directory is reached with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS from
// the destination (never through a symlink, whether it was already there
// or the stream just made it), files are unlinked and created O_EXCL, never
// opened through an existing name.

// ErrUnsafeCopy is returned for a tar entry that would be written outside
// the destination or through a symlink.
var ErrUnsafeCopy = errors.New("unsafe path")

// resolveInRoot resolves a path the container chose inside its root.
const resolveInRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// resolveNoLinks keeps an unpacker's lookups beneath its destination and
// refuses every symlink on the way.
const resolveNoLinks = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// CopyOptions tune packing and unpacking.
type CopyOptions struct {
	// Warn receives a line per entry skipped (sockets, devices, FIFOs,
	// hard links, /proc and /sys); nil discards them.
	Warn io.Writer
	// Chown applies the entries' uid and gid (only root can).
	Chown bool
	// StripSetID drops setuid and setgid bits from files unpacked: what
	// comes out of a container must not become a setuid binary on the host.
	StripSetID bool
}

func (o CopyOptions) warnf(format string, args ...any) {
	if o.Warn != nil {
		fmt.Fprintf(o.Warn, "warning: "+format+"\n", args...)
	}
}

// ContainerFS is a running container's root filesystem, open for cp.
type ContainerFS struct {
	// root is an O_PATH handle on /proc/PID/root of the container's process.
	root *os.File
	// desc names the container in errors: container "app" of pod default/web.
	desc string
	// cwd is the container's working directory, which relative paths start from.
	cwd string
}

// OpenContainerFS opens the root filesystem of a running container of pod
// ns/name; container "" is the pod's default container (DefaultContainer),
// and note is then the line to tell the user, as kubectl does.
func (m *Manager) OpenContainerFS(ns, name, container string) (cfs *ContainerFS, note string, err error) {
	v, err := m.Get(ns, name)
	if err != nil {
		return nil, "", err
	}
	if container == "" {
		if container, note, err = v.DefaultContainer(); err != nil {
			return nil, "", err
		}
	}
	p, err := m.execProfile(ns, name, container)
	if err != nil {
		return nil, "", err
	}
	f, err := OpenProcRoot(p.Target)
	if err != nil {
		return nil, "", fmt.Errorf("container %q of pod %s/%s: %w", container, ns, name, err)
	}
	cwd := p.Cwd()
	if cwd == "" {
		cwd = "/"
	}
	return &ContainerFS{root: f, desc: fmt.Sprintf("container %q of pod %s/%s", container, ns, name), cwd: cwd}, note, nil
}

// OpenProcRoot opens the root directory of process pid as an O_PATH handle
// and checks that pid was not reused by another process meanwhile.
func OpenProcRoot(pid int) (*os.File, error) {
	before, err := state.StartTime(pid)
	if err != nil {
		return nil, err
	}
	p := "/proc/" + strconv.Itoa(pid) + "/root"
	fd, err := unix.Open(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("failed to open %s: %w", p, err)
	}
	f := os.NewFile(uintptr(fd), p)
	// The fd keeps naming the root it was opened on; only a pid reused
	// between the lookup and the open could have given another process's.
	if after, err := state.StartTime(pid); err != nil || after != before {
		f.Close()
		return nil, fmt.Errorf("process %d exited while its root was opened", pid)
	}
	return f, nil
}

// Abs is p made absolute from the container's working directory, cleaned.
func (c *ContainerFS) Abs(p string) string {
	if !path.IsAbs(p) {
		p = path.Join(c.cwd, p)
	}
	return path.Clean(p)
}

// Close releases the container's root.
func (c *ContainerFS) Close() error { return c.root.Close() }

// Stat returns what p names in the container (a symlink followed, inside
// the root), or an error wrapping fs.ErrNotExist that names p and the container.
func (c *ContainerFS) Stat(p string) (fs.FileMode, error) {
	f, err := c.open(p)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, fmt.Errorf("failed to stat %q in %s: %w", p, c.desc, err)
	}
	return modeOf(&st), nil
}

// open resolves p inside the container's root as an O_PATH handle.
func (c *ContainerFS) open(p string) (*os.File, error) {
	fd, err := unix.Openat2(int(c.root.Fd()), p, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: resolveInRoot,
	})
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil, fmt.Errorf("%q: no such file or directory in %s: %w", p, c.desc, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to open %q in %s: %w", p, c.desc, err)
	}
	return os.NewFile(uintptr(fd), p), nil
}

// Pack writes src (resolved in the container's root) to w as a tar stream
// whose entries are named name and name/...; name "" leaves out the entry
// of src itself and names its children relative to it.
func (c *ContainerFS) Pack(w io.Writer, src, name string, o CopyOptions) error {
	f, err := c.open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pack(w, f, name, o); err != nil {
		return fmt.Errorf("failed to copy %q from %s: %w", src, c.desc, err)
	}
	return nil
}

// Unpack unpacks the tar stream r into the directory dir of the container,
// which must exist (dir resolved inside the root).
func (c *ContainerFS) Unpack(r io.Reader, dir string, o CopyOptions) error {
	f, err := c.open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	d, err := unix.Openat(int(f.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOTDIR) {
		return fmt.Errorf("%q is not a directory in %s", dir, c.desc)
	}
	if err != nil {
		return fmt.Errorf("failed to open directory %q in %s: %w", dir, c.desc, err)
	}
	defer unix.Close(d)
	if err := unpack(r, d, o); err != nil {
		return fmt.Errorf("failed to copy into %q of %s: %w", dir, c.desc, err)
	}
	return nil
}

// PackHost is Pack for a path of the host (the user's own: it is resolved
// as usual, symlinks and all; below it the walk stores symlinks as links).
func PackHost(w io.Writer, src, name string, o CopyOptions) error {
	fd, err := unix.Open(src, unix.O_PATH|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return fmt.Errorf("%q: no such file or directory: %w", src, fs.ErrNotExist)
	}
	if err != nil {
		return fmt.Errorf("failed to open %q: %w", src, err)
	}
	f := os.NewFile(uintptr(fd), src)
	defer f.Close()
	if err := pack(w, f, name, o); err != nil {
		return fmt.Errorf("failed to copy %q: %w", src, err)
	}
	return nil
}

// UnpackHost unpacks the tar stream r into the host directory dir (the
// user's: resolved as usual), never writing outside it or through a symlink.
func UnpackHost(r io.Reader, dir string, o CopyOptions) error {
	d, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("failed to open directory %q: %w", dir, err)
	}
	defer unix.Close(d)
	if err := unpack(r, d, o); err != nil {
		return fmt.Errorf("failed to copy into %q: %w", dir, err)
	}
	return nil
}

// modeOf is the fs.FileMode of a stat.
func modeOf(st *unix.Stat_t) fs.FileMode {
	m := fs.FileMode(st.Mode & 0o777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		m |= fs.ModeDir
	case unix.S_IFLNK:
		m |= fs.ModeSymlink
	case unix.S_IFIFO:
		m |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		m |= fs.ModeSocket
	case unix.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		m |= fs.ModeDevice
	}
	if st.Mode&unix.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if st.Mode&unix.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if st.Mode&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// --- packing ---

// packer writes a tree to a tar stream.
type packer struct {
	tw *tar.Writer
	o  CopyOptions
}

// pack writes the file or tree top (an O_PATH handle) as name.
func pack(w io.Writer, top *os.File, name string, o CopyOptions) error {
	p := &packer{tw: tar.NewWriter(w), o: o}
	var st unix.Stat_t
	if err := unix.Fstat(int(top.Fd()), &st); err != nil {
		return err
	}
	var err error
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		var d int
		d, err = unix.Openat(int(top.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		err = p.dir(d, name, top.Name(), &st, name == "")
	case unix.S_IFREG:
		var f *os.File
		// Through /proc/self/fd: the handle, never the path again.
		f, err = pathrs.Reopen(top, unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK)
		if err != nil {
			return err
		}
		if name == "" {
			name = path.Base(top.Name())
		}
		err = p.file(f, name, &st)
	default:
		return fmt.Errorf("%s, not a regular file or directory", modeOf(&st).Type())
	}
	if err != nil {
		return err
	}
	return p.tw.Close()
}

// header is the tar header of a file of st.
func header(name string, st *unix.Stat_t) *tar.Header {
	return &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Unix()),
		Format:  tar.FormatPAX,
	}
}

// join names a child of dir in the stream.
func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// dir writes directory d (closed on return) and, depth first, its entries;
// name is its name in the stream, src its path where it is read (for warnings).
func (p *packer) dir(d int, name, src string, st *unix.Stat_t, skipSelf bool) error {
	f := os.NewFile(uintptr(d), name)
	defer f.Close()
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(d, &sfs); err == nil && (sfs.Type == unix.PROC_SUPER_MAGIC || sfs.Type == unix.SYSFS_MAGIC) {
		// A kernel view, not files: reading it would never end well.
		p.o.warnf("skipping %q: a %s mount", src, map[bool]string{true: "proc", false: "sysfs"}[sfs.Type == unix.PROC_SUPER_MAGIC])
		return nil
	}
	if !skipSelf {
		h := header(name+"/", st)
		h.Typeflag = tar.TypeDir
		if err := p.tw.WriteHeader(h); err != nil {
			return err
		}
	}
	names, err := f.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("failed to list %q: %w", name, err)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := p.entry(d, n, join(name, n), path.Join(src, n)); err != nil {
			return err
		}
	}
	return nil
}

// entry writes the child base of directory d, never following a symlink.
func (p *packer) entry(d int, base, name, src string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(d, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil // removed meanwhile
		}
		return fmt.Errorf("failed to stat %q: %w", name, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		c, err := unix.Openat(d, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("failed to open directory %q: %w", name, err)
		}
		return p.dir(c, name, src, &st, false)
	case unix.S_IFREG:
		// O_NONBLOCK: a FIFO swapped in after the stat must not block the
		// open; file() checks the fd is the regular file that was stat'ed.
		fd, err := unix.Openat(d, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("failed to open %q: %w", name, err)
		}
		return p.file(os.NewFile(uintptr(fd), name), name, &st)
	case unix.S_IFLNK:
		target, err := readlinkat(d, base)
		if err != nil {
			return fmt.Errorf("failed to read symlink %q: %w", name, err)
		}
		h := header(name, &st)
		h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, target, 0o777
		return p.tw.WriteHeader(h)
	default:
		p.o.warnf("skipping %q: a %s", src, kindName(modeOf(&st)))
		return nil
	}
}

// kindName names a file type in a warning.
func kindName(m fs.FileMode) string {
	switch {
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	}
	return "special file"
}

// file writes the regular file f (closed on return).
func (p *packer) file(f *os.File, name string, want *unix.Stat_t) error {
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("failed to stat %q: %w", name, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Ino != want.Ino || st.Dev != want.Dev {
		return fmt.Errorf("%q changed while it was copied", name)
	}
	h := header(name, &st)
	h.Typeflag, h.Size = tar.TypeReg, st.Size
	if err := p.tw.WriteHeader(h); err != nil {
		return err
	}
	// A file that shrank meanwhile fails here (the header promised Size).
	if _, err := io.CopyN(p.tw, f, st.Size); err != nil {
		return fmt.Errorf("failed to read %q: %w", name, err)
	}
	return nil
}

// readlinkat reads the symlink base in d.
func readlinkat(d int, base string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(d, base, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// --- unpacking ---

// unpacker writes a tar stream beneath one directory.
type unpacker struct {
	root int // the destination directory
	o    CopyOptions
	dirs []dirTime
}

// dirTime is a directory's mtime, set once its entries are written.
type dirTime struct {
	rel   string
	mtime time.Time
}

// unpack writes the tar stream r beneath directory root.
func unpack(r io.Reader, root int, o CopyOptions) error {
	u := &unpacker{root: root, o: o}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("failed to read tar stream: %w", err)
		}
		if err := u.entry(tr, hdr); err != nil {
			return fmt.Errorf("%q: %w", hdr.Name, err)
		}
	}
	for i := len(u.dirs) - 1; i >= 0; i-- {
		d := u.dirs[i]
		parent, err := u.openDir(path.Dir(d.rel), false)
		if err != nil {
			continue // replaced by a later entry
		}
		setMtime(parent, path.Base(d.rel), d.mtime)
		unix.Close(parent)
	}
	return nil
}

// cleanEntry turns an entry name into a path relative to the destination,
// refusing one that is absolute or climbs out.
func cleanEntry(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("absolute name: %w", ErrUnsafeCopy)
	}
	rel := path.Clean(name)
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("name leaves the destination: %w", ErrUnsafeCopy)
	}
	return rel, nil
}

// entry applies one tar entry.
func (u *unpacker) entry(tr *tar.Reader, hdr *tar.Header) error {
	rel, err := cleanEntry(hdr.Name)
	if err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir, tar.TypeReg, tar.TypeSymlink:
	case tar.TypeXGlobalHeader:
		return nil
	default:
		// Hard links, devices, FIFOs: never made by our packer, and a device
		// node out of a container is a way into the host's disks.
		u.o.warnf("skipping %q: tar entry type %q is not copied", hdr.Name, hdr.Typeflag)
		return nil
	}
	if rel == "." {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("the destination itself can only be a directory: %w", ErrUnsafeCopy)
		}
		u.dirs = append(u.dirs, dirTime{rel: ".", mtime: hdr.ModTime})
		return u.attrs(u.root, hdr)
	}
	parent, err := u.openDir(path.Dir(rel), true)
	if err != nil {
		return err
	}
	defer unix.Close(parent)
	base := path.Base(rel)
	switch hdr.Typeflag {
	case tar.TypeDir:
		return u.dir(parent, rel, base, hdr)
	case tar.TypeReg:
		return u.file(parent, base, tr, hdr)
	default:
		if err := removeNonDir(parent, base); err != nil {
			return err
		}
		if err := unix.Symlinkat(hdr.Linkname, parent, base); err != nil {
			return fmt.Errorf("failed to create symlink: %w", err)
		}
		if u.o.Chown {
			if err := unix.Fchownat(parent, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return fmt.Errorf("failed to chown symlink: %w", err)
			}
		}
		setMtime(parent, base, hdr.ModTime)
		return nil
	}
}

// openDir opens directory rel beneath the destination without following
// any symlink, creating missing components (mode 0755) when create.
func (u *unpacker) openDir(rel string, create bool) (int, error) {
	fd, err := unix.Openat2(u.root, rel, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: resolveNoLinks,
	})
	switch {
	case err == nil:
		return fd, nil
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV):
		return -1, fmt.Errorf("directory %q is reached through a symlink: %w", rel, ErrUnsafeCopy)
	case errors.Is(err, unix.ENOENT) && create:
		return u.mkdirWalk(rel)
	default:
		return -1, fmt.Errorf("failed to open directory %q: %w", rel, err)
	}
}

// mkdirWalk creates rel one component at a time, never following a symlink.
func (u *unpacker) mkdirWalk(rel string) (int, error) {
	fd, err := unix.Openat(u.root, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	for _, c := range strings.Split(rel, "/") {
		if err := unix.Mkdirat(fd, c, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			unix.Close(fd)
			return -1, fmt.Errorf("failed to create directory %q: %w", rel, err)
		}
		next, err := unix.Openat(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return -1, fmt.Errorf("directory %q is reached through a symlink or a file: %w", rel, ErrUnsafeCopy)
		}
		if err != nil {
			return -1, fmt.Errorf("failed to open directory %q: %w", rel, err)
		}
		fd = next
	}
	return fd, nil
}

// removeNonDir clears base in parent for a new file or symlink; a
// directory there is an error, as with tar.
func removeNonDir(parent int, base string) error {
	var st unix.Stat_t
	err := unix.Fstatat(parent, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to stat existing %q: %w", base, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return fmt.Errorf("cannot overwrite directory %q with a non-directory", base)
	}
	// Unlinked, never opened: an existing name may be a symlink or a hard
	// link to a file elsewhere, which must not be written through.
	if err := unix.Unlinkat(parent, base, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("failed to replace %q: %w", base, err)
	}
	return nil
}

// dir creates (or keeps) a directory and applies its attributes.
func (u *unpacker) dir(parent int, rel, base string, hdr *tar.Header) error {
	if err := unix.Mkdirat(parent, base, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("failed to create directory: %w", err)
	}
	fd, err := unix.Openat(parent, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		return fmt.Errorf("cannot overwrite non-directory %q with a directory", base)
	}
	if err != nil {
		return fmt.Errorf("failed to open directory: %w", err)
	}
	defer unix.Close(fd)
	u.dirs = append(u.dirs, dirTime{rel: rel, mtime: hdr.ModTime})
	return u.attrs(fd, hdr)
}

// file writes a regular file's content.
func (u *unpacker) file(parent int, base string, tr *tar.Reader, hdr *tar.Header) error {
	if err := removeNonDir(parent, base); err != nil {
		return err
	}
	fd, err := unix.Openat(parent, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("failed to create file: %w", err)
	}
	f := os.NewFile(uintptr(fd), base)
	defer f.Close()
	if _, err := io.Copy(f, tr); err != nil {
		return fmt.Errorf("failed to write file: %w", err)
	}
	if err := u.attrs(fd, hdr); err != nil {
		return err
	}
	mt := unix.NsecToTimespec(hdr.ModTime.UnixNano())
	if err := unix.UtimesNanoAt(parent, base, []unix.Timespec{mt, mt}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("failed to set times: %w", err)
	}
	return f.Close()
}

// attrs applies owner and mode to the open file or directory fd. chown
// comes first: it clears setuid and setgid bits.
func (u *unpacker) attrs(fd int, hdr *tar.Header) error {
	if u.o.Chown {
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("failed to chown: %w", err)
		}
	}
	mode := uint32(hdr.Mode & 0o7777)
	if u.o.StripSetID && hdr.Typeflag != tar.TypeDir {
		mode &^= unix.S_ISUID | unix.S_ISGID
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return fmt.Errorf("failed to chmod: %w", err)
	}
	return nil
}

// setMtime sets a name's mtime (and atime) without following a symlink;
// best effort: a time is not worth failing a copy for.
func setMtime(parent int, base string, mtime time.Time) {
	mt := unix.NsecToTimespec(mtime.UnixNano())
	unix.UtimesNanoAt(parent, base, []unix.Timespec{mt, mt}, unix.AT_SYMLINK_NOFOLLOW)
}
