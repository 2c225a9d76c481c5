package namespaces

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// sealedCopy returns a sealed, in-memory copy of the helper binary at path,
// to be executed instead of the file itself.
//
// Why (CVE-2019-5736): every helper process runs inside a container's
// namespaces for a moment, and a hostile container can reach its
// /proc/<pid>/exe — directly, or by making its own entrypoint a script
// whose interpreter is /proc/self/exe, which re-executes the helper inside
// the container. Once the helper has exited, opening that link for writing
// succeeds and overwrites the host's binary. A memfd sealed against writes,
// growth and shrinking gives the container nothing to write to: the link
// then names the memfd, not the host file. Non-dumpable helpers alone do
// not close the script path above.
//
// The copy costs about 1 ms per start for peapod-init (a few MB, from the
// page cache) and its pages are freed as soon as the workload's execve
// replaces the helper image.
func sealedCopy(path string) (*os.File, error) {
	src, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("failed to open helper %q: %w", path, err)
	}
	defer src.Close()
	fd, err := unix.MemfdCreate(filepath.Base(path), unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("failed to create memfd for helper %q: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), "memfd:"+filepath.Base(path))
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return nil, fmt.Errorf("failed to copy helper %q: %w", path, err)
	}
	const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("failed to seal copy of helper %q: %w", path, err)
	}
	return f, nil
}

// procSelfFd names fd in the calling (or, after fork, the child) process; exec
// of such a path runs the file the fd refers to.
func procSelfFd(fd int) string { return fmt.Sprintf("/proc/self/fd/%d", fd) }

// ReleaseFiles closes the parent's copies of cmd's extra files (the sealed
// helper of an ExecCommand) once cmd has started, or when it will not be.
// The child keeps its own.
func ReleaseFiles(cmd *exec.Cmd) {
	for _, f := range cmd.ExtraFiles {
		if f != nil {
			f.Close()
		}
	}
}
