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
	path := filepath.Join(dir, rel)
	body, err := readBeneath(dir, rel)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrProfile, path, err)
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
	fd, err := unix.Openat2(dfd, rel, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		if errors.Is(err, unix.EXDEV) {
			return nil, errors.New("path leads outside the seccomp directory")
		}
		return nil, &os.PathError{Op: "open", Path: filepath.Join(dir, rel), Err: err}
	}
	f := os.NewFile(uintptr(fd), filepath.Join(dir, rel))
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
