package seccomp

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	moby "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// maxProfileSize bounds a Localhost profile file (Docker's default is
// about 20 KiB).
const maxProfileSize = 1 << 20

// ErrProfile marks a Localhost profile that cannot be read or compiled.
var ErrProfile = errors.New("cannot load seccomp profile")

// RuntimeDefault is the default profile of Docker and containerd for a
// process: its conditional rules resolved for proc's bounding
// capabilities, this machine's architecture and kernel.
func RuntimeDefault(proc *specs.Process) (*specs.LinuxSeccomp, error) {
	p, err := moby.GetDefaultProfile(&specs.Spec{Process: withCaps(proc)})
	if err != nil {
		return nil, fmt.Errorf("failed to generate the default seccomp profile: %w", err)
	}
	return p, nil
}

// Localhost reads the Docker-format JSON profile rel under dir (the
// kubelet's localhostProfile, relative to <root>/seccomp: layout.Root.SeccompDir) and resolves it
// for proc as containerd does. rel is opened beneath dir: neither "..", an
// absolute path nor a symlink can lead out of it. A profile with no
// default action and no rules means no filter: nil, nil.
func Localhost(dir, rel string, proc *specs.Process) (*specs.LinuxSeccomp, error) {
	body, err := readBeneath(dir, rel)
	return load(filepath.Join(dir, rel), body, err, proc)
}

// LocalhostFile is Localhost for a profile named by an absolute host path,
// as the CRI's localhost_ref (the kubelet joins its own seccomp directory
// and the pod's localhostProfile; containerd reads that path as it is).
// Only a clean absolute path is taken: a relative one would depend on the
// daemon's working directory, and one with ".." or "//" is no path the
// kubelet makes. Symlinks are followed, as containerd does (the caller is
// the node's kubelet, root on this host); /proc magic links are not, and
// the file must be a regular one (a FIFO or a device would block or never
// end).
func LocalhostFile(path string, proc *specs.Process) (*specs.LinuxSeccomp, error) {
	if !filepath.IsAbs(path) || filepath.Clean(path) != path {
		return nil, fmt.Errorf("%w %q: not a clean absolute path", ErrProfile, path)
	}
	body, err := readFile(unix.AT_FDCWD, path, path, unix.RESOLVE_NO_MAGICLINKS)
	return load(path, body, err, proc)
}

// load parses body, read from path (or the error reading it), for proc.
func load(path string, body []byte, readErr error, proc *specs.Process) (*specs.LinuxSeccomp, error) {
	if readErr != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrProfile, path, readErr)
	}
	p, err := moby.LoadProfile(string(body), &specs.Spec{Process: withCaps(proc)})
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrProfile, path, err)
	}
	return p, nil
}

// readBeneath reads rel inside dir with openat2(RESOLVE_BENEATH), which
// refuses absolute paths, ".." above dir and symlinks leading out of it,
// and RESOLVE_NO_MAGICLINKS (no /proc/self/fd tricks).
func readBeneath(dir, rel string) ([]byte, error) {
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(dfd)
	b, err := readFile(dfd, rel, filepath.Join(dir, rel), unix.RESOLVE_BENEATH|unix.RESOLVE_NO_MAGICLINKS)
	if errors.Is(err, unix.EXDEV) {
		return nil, errors.New("path leads outside the seccomp directory")
	}
	return b, err
}

// readFile reads a regular file of at most maxProfileSize bytes at path
// relative to dfd with openat2's resolve flags; name is the path errors
// show.
func readFile(dfd int, path, name string, resolve uint64) ([]byte, error) {
	fd, err := unix.Openat2(dfd, path, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK,
		Resolve: resolve,
	})
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	b, err := io.ReadAll(io.LimitReader(f, maxProfileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxProfileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxProfileSize)
	}
	return b, nil
}

// withCaps returns proc with a capabilities section, which moby's profile
// code reads without a nil check.
func withCaps(proc *specs.Process) *specs.Process {
	if proc != nil && proc.Capabilities != nil {
		return proc
	}
	p := specs.Process{Capabilities: &specs.LinuxCapabilities{}}
	if proc != nil {
		p = *proc
		p.Capabilities = &specs.LinuxCapabilities{}
	}
	return &p
}
