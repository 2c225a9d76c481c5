package containerinit

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/namespaces"
)

// ExecMain is `peapod-init exec` after the constructor of namespaces/nsenter
// joined the target container (see namespaces.ExecCommand): it applies the
// process spec and execve's it. It never returns; on failure it prints the
// error and exits 126 (or 127 when the executable is missing).
func ExecMain() {
	// Credentials, capabilities and no_new_privs are per thread: set them
	// and execve on this one.
	runtime.LockOSThread()
	err := runExec()
	fmt.Fprintf(os.Stderr, "peapod exec: %v\n", err)
	if errors.Is(err, namespaces.ErrExecNotFound) {
		os.Exit(namespaces.ExitNotFound)
	}
	os.Exit(namespaces.ExitCannotExec)
}

// runExec sets up and execs the process; it returns only on failure.
func runExec() error {
	proc, filter, err := namespaces.ExecProcessFromEnv()
	if err != nil {
		return err
	}
	if err := detachTerminal(proc.Terminal); err != nil {
		return err
	}
	identity, err := namespaces.ExecIdentityFromEnv()
	if err != nil {
		return err
	}
	caps, err := loadOwnCaps()
	if err != nil {
		return err
	}
	return becomeProcess(caps, proc, identity, filter)
}

// detachTerminal starts a session of our own, so the process has no
// controlling terminal of the caller's: without it, opening /dev/tty inside
// the container would reach the terminal `peapod exec` was typed in, and
// TIOCSTI on it would type into the caller's shell. With a terminal, the pty
// slave on stdin (see namespaces.OpenContainerPty) becomes the session's
// controlling terminal, so job control and ^C work inside.
func detachTerminal(terminal bool) error {
	// The nsenter constructor forked us, so we are no group leader and
	// setsid cannot fail with EPERM.
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("failed to start a session: %w", err)
	}
	if !terminal {
		return nil
	}
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("failed to make stdin the controlling terminal: %w", err)
	}
	return nil
}
