package containerinit

import (
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/namespaces"
)

// setupConsole gives a terminal container its pty, as runc's setupConsole:
// after pivot_root, so /dev/pts/ptmx is the container's own devpts
// instance (a pty of the host's instance would show the host's ptys'
// numbering and lives outside the container). The master goes to the
// supervisor on InitConsoleFd; the slave becomes stdin, stdout, stderr
// and, since forkInNamespaces made us a session leader, the controlling
// terminal. A container without a terminal keeps the stdio it was given.
func setupConsole(proc *specs.Process) error {
	if !proc.Terminal {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(namespaces.InitConsoleFd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return errors.New("the container has a terminal but no console socket was passed")
	}
	master, err := unix.Open("/dev/pts/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("failed to open /dev/pts/ptmx: %w", err)
	}
	defer unix.Close(master)
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("failed to unlock the pty: %w", err)
	}
	// TIOCGPTPEER: the slave of this very master, no path resolved.
	sfd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(master), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno != 0 {
		return fmt.Errorf("failed to open the pty slave: %w", errno)
	}
	slave := int(sfd)
	defer unix.Close(slave)
	// The workload may run as another user: the terminal is its own, as
	// a login's is.
	if err := unix.Fchown(slave, int(proc.User.UID), int(proc.User.GID)); err != nil {
		return fmt.Errorf("failed to chown the pty slave: %w", err)
	}
	if err := namespaces.SendConsole(namespaces.InitConsoleFd, master); err != nil {
		return err
	}
	unix.Close(namespaces.InitConsoleFd)
	for fd := 0; fd < 3; fd++ {
		if err := unix.Dup3(slave, fd, 0); err != nil {
			return fmt.Errorf("failed to put the pty slave on fd %d: %w", fd, err)
		}
	}
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("failed to make the pty the controlling terminal: %w", err)
	}
	return nil
}
