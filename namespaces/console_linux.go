package namespaces

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/runtime/spec"
)

// StartTerminalContainer is StartContainer for a container whose
// Process.Terminal is set: its init stage allocates a pty from the
// container's own devpts instance (after pivot_root, so /dev/pts/ptmx is
// the container's), makes the slave its stdin, stdout, stderr and
// controlling terminal, and sends the master back on a socket, as runc
// does with its console socket. The caller owns master and copies through
// it; nothing of the caller's terminal ever reaches the container.
func StartTerminalContainer(helper string, p *spec.Pod, c *spec.Container, beforeRun func(pid int) error) (pid int, master *os.File, err error) {
	return StartTerminalContainerIn(helper, p, c, nil, beforeRun)
}

// StartTerminalContainerIn is StartTerminalContainer with the child born in
// cgroupDir when it is not nil (see StartContainerIn).
func StartTerminalContainerIn(helper string, p *spec.Pod, c *spec.Container, cgroupDir *os.File, beforeRun func(pid int) error) (pid int, master *os.File, err error) {
	if c.OCI.Process == nil || !c.OCI.Process.Terminal {
		return 0, nil, fmt.Errorf("failed to start container %q: it has no terminal", c.Name)
	}
	ours, theirs, err := consolePair()
	if err != nil {
		return 0, nil, fmt.Errorf("failed to start container %q: %w", c.Name, err)
	}
	defer ours.Close()
	pid, err = startInit(helper, p, c, [3]*os.File{}, theirs, cgroupDir, beforeRun)
	theirs.Close()
	if err != nil {
		return 0, nil, err
	}
	master, err = RecvConsole(ours)
	if err != nil {
		killAndReap(pid)
		return 0, nil, fmt.Errorf("failed to start container %q: %w", c.Name, err)
	}
	return pid, master, nil
}

// consolePair is the socket pair the master travels over.
func consolePair() (ours, theirs *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to create the console socket: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "console"), os.NewFile(uintptr(fds[1]), "console-init"), nil
}

// errNoConsole: the init stage exec'd without sending a pty master (a
// peapod-init older than the caller, which ignores Terminal).
var errNoConsole = errors.New("the init stage sent no pty master (is peapod-init older than peapod-supervisor?)")

// RecvConsole takes the pty master the init stage sent on sock. It is
// called once the init stage has exec'd, so the master is already queued:
// it never waits. The master comes back non-blocking, so an os.File polls
// it and a Close interrupts a pending Read.
func RecvConsole(sock *os.File) (*os.File, error) {
	buf := make([]byte, 16)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
	if errors.Is(err, unix.EAGAIN) {
		return nil, errNoConsole
	}
	if err != nil {
		return nil, fmt.Errorf("failed to receive the pty master: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, fmt.Errorf("failed to parse the pty master message: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		f, err := unix.ParseUnixRights(&m)
		if err == nil {
			fds = append(fds, f...)
		}
	}
	if len(fds) != 1 || string(buf[:n]) != consoleTag {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("the init stage sent %d descriptors with %q, want one pty master", len(fds), buf[:n])
	}
	if err := checkPtyMaster(fds[0]); err != nil {
		unix.Close(fds[0])
		return nil, err
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return nil, fmt.Errorf("failed to make the pty master non-blocking: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "ptmx"), nil
}

// consoleTag is the payload that goes with the master.
const consoleTag = "ptmx"

// SendConsole sends master on the init stage's console socket.
func SendConsole(sock int, master int) error {
	if err := unix.Sendmsg(sock, []byte(consoleTag), unix.UnixRights(master), nil, 0); err != nil {
		return fmt.Errorf("failed to send the pty master: %w", err)
	}
	return nil
}

// checkPtyMaster refuses anything but a pty master: the descriptor came
// from a process that was about to become the container.
func checkPtyMaster(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("failed to stat the pty master: %w", err)
	}
	// A devpts instance's ptmx is char 5:2; TIOCGPTN answers on masters only.
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 5 || unix.Minor(st.Rdev) != 2 {
		return errors.New("the init stage sent a descriptor that is not a pty master")
	}
	if _, err := unix.IoctlGetInt(fd, unix.TIOCGPTN); err != nil {
		return fmt.Errorf("the init stage sent a descriptor that is not a pty master: %w", err)
	}
	return nil
}
