package namespaces

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// OpenContainerPty allocates a pty from the devpts instance of the
// container that process target belongs to, as runc does for a terminal
// exec: the process in the container gets a /dev/pts/N of its own and never
// an fd of the caller's terminal (with one, TIOCSTI could push keystrokes
// into the caller's shell). The caller keeps master and copies bytes
// between it and its own terminal; slave becomes the process's stdio and,
// through Process.Terminal, its controlling terminal.
func OpenContainerPty(target int) (master, slave *os.File, err error) {
	if target <= 0 {
		return nil, nil, fmt.Errorf("invalid pty target pid %d", target)
	}
	root, err := unix.Open("/proc/"+strconv.Itoa(target)+"/root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to open the root of pid %d: %w", target, err)
	}
	defer unix.Close(root)
	// RESOLVE_IN_ROOT: /dev/ptmx is the container's to change; a symlink
	// there (the usual one is pts/ptmx) must resolve inside its root, never
	// through ".." out of it onto the host. O_NONBLOCK keeps a FIFO planted
	// at that path from blocking us; the fstat below refuses anything but a
	// pty multiplexer. The master stays non-blocking: os.File then polls
	// it, so a Close interrupts a pending Read.
	fd, err := unix.Openat2(root, "dev/ptmx", &unix.OpenHow{
		Flags:   unix.O_RDWR | unix.O_NOCTTY | unix.O_CLOEXEC | unix.O_NONBLOCK,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("failed to open /dev/ptmx of pid %d: %w", target, err)
	}
	m := os.NewFile(uintptr(fd), "/dev/ptmx")
	fail := func(e error) (*os.File, *os.File, error) {
		m.Close()
		return nil, nil, e
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fail(fmt.Errorf("failed to stat /dev/ptmx of pid %d: %w", target, err))
	}
	// Both /dev/ptmx and each devpts instance's ptmx are char 5:2.
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 5 || unix.Minor(st.Rdev) != 2 {
		return fail(fmt.Errorf("/dev/ptmx of pid %d is not a pty multiplexer", target))
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		return fail(fmt.Errorf("failed to unlock the pty of pid %d: %w", target, err))
	}
	// TIOCGPTPEER opens the slave from the master without resolving any
	// path, so it is the peer of this master in this devpts instance.
	// The argument is the slave's open flags.
	sfd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno != 0 {
		return fail(fmt.Errorf("failed to open the pty slave of pid %d: %w", target, errno))
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		unix.Close(int(sfd))
		return fail(fmt.Errorf("failed to read the pty number: %w", err))
	}
	return m, os.NewFile(sfd, "/dev/pts/"+strconv.Itoa(n)), nil
}
