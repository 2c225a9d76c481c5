package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// errNotATerminal is kubectl's wording for -t without a terminal on stdin,
// capital letter included: users and scripts know that line.
//
//lint:ignore ST1005 kubectl's exact message
var errNotATerminal = errors.New("Unable to use a TTY - input is not a terminal or the right kind of file")

// ioGrace bounds the wait for the command's stdio once it exited: a daemon
// it left behind may hold the pipes open forever.
const ioGrace = 500 * time.Millisecond

func newExecCommand(g *globals) *cobra.Command {
	var container string
	var stdin, tty bool
	cmd := &cobra.Command{
		Use:   "exec [-it] POD [-c CONTAINER] -- COMMAND [ARG...]",
		Short: "Run a command inside every namespace and the cgroup of a running container",
		Long: "The command joins the container's mount, PID, network, UTS, IPC and cgroup namespaces and its cgroup,\n" +
			"with the container's env, working directory, user, capabilities and no_new_privs. peapod exits with\n" +
			"the command's exit code. With -t the command gets a pty of the container's own (/dev/pts/N inside)\n" +
			"and peapod copies bytes between it and your terminal, in raw mode; the command never gets a\n" +
			"descriptor of your terminal.",
		Example: "  sudo peapod exec web -c app -- cat /etc/hostname\n  sudo peapod exec -it web -c sidecar -- sh",
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 {
				return fmt.Errorf("usage: peapod exec POD [-c CONTAINER] -- COMMAND [ARG...]")
			}
			code, err := executeExec(g, args[0], container, args[1:], stdin, tty)
			if err != nil {
				return err
			}
			os.Exit(code)
			return nil
		},
	}
	cmd.Flags().StringVarP(&container, "container", "c", "", "container name (default: the pod's default container)")
	cmd.Flags().BoolVarP(&stdin, "stdin", "i", false, "pass stdin to the command (otherwise it reads /dev/null)")
	cmd.Flags().BoolVarP(&tty, "tty", "t", false, "give the command a terminal (stdin must be one)")
	return cmd
}

// executeExec runs argv in the container and returns its exit code. The
// command's stdio are pipes or a pty of the container's, never peapod's own
// descriptors: a terminal fd inside the container is a way out of it.
func executeExec(g *globals, name, container string, argv []string, stdin, tty bool) (int, error) {
	if tty && !term.IsTerminal(int(os.Stdin.Fd())) {
		return 0, errNotATerminal
	}
	m, err := g.manager()
	if err != nil {
		return 0, err
	}
	if tty {
		c, master, slave, err := m.ExecTerminal(g.namespace, name, container, argv, os.Getenv("TERM"))
		if err != nil {
			return 0, err
		}
		return runTerminal(c, master, slave, stdin)
	}
	c, err := m.ExecCommand(g.namespace, name, container, argv)
	if err != nil {
		return 0, err
	}
	var stdinR *os.File
	if stdin {
		// Our own pipe, not exec.Cmd's: its Wait joins the copier, which a
		// read of a terminal that nobody types into blocks forever.
		r, w, err := os.Pipe()
		if err != nil {
			return 0, fmt.Errorf("failed to create stdin pipe: %w", err)
		}
		go func() {
			io.Copy(w, os.Stdin)
			w.Close() // EOF on our stdin closes the command's
		}()
		c.Stdin, stdinR = r, r
	}
	// Wrapping hides the *os.File, so exec.Cmd makes pipes and copies.
	c.Stdout = struct{ io.Writer }{os.Stdout}
	c.Stderr = struct{ io.Writer }{os.Stderr}
	c.WaitDelay = ioGrace
	return runForwarding(c, stdinR)
}

// runForwarding starts c and forwards the signals a user sends peapod (^C
// from the terminal, kill) to the helper, which passes them to the command.
// stdin, when not nil, is the command's end of its stdin pipe, closed once
// the command has its copy.
func runForwarding(c *exec.Cmd, stdin *os.File) (int, error) {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT)
	defer signal.Stop(sigs)
	err := c.Start()
	if stdin != nil {
		stdin.Close()
	}
	if err != nil {
		return 0, fmt.Errorf("failed to start exec helper: %w", err)
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case s := <-sigs:
				c.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	return waitCode(c)
}

// waitCode waits for c and returns its exit code (128+N when killed by N).
func waitCode(c *exec.Cmd) (int, error) {
	err := c.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) && !errors.Is(err, exec.ErrWaitDelay) {
		return 0, fmt.Errorf("exec helper: %w", err)
	}
	ws, ok := c.ProcessState.Sys().(syscall.WaitStatus)
	if ok && ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return c.ProcessState.ExitCode(), nil
}

// runTerminal starts c on the pty slave and copies between master and our
// terminal, which is in raw mode meanwhile, so ^C, ^Z and ^\ travel as bytes
// and the pty's line discipline inside turns them into signals there.
func runTerminal(c *exec.Cmd, master, slave *os.File, stdin bool) (code int, err error) {
	defer master.Close()
	in := int(os.Stdin.Fd())
	sigs := make(chan os.Signal, 4)
	// Notify before raw mode: a SIGTERM in between must not kill us with
	// the terminal left raw.
	signal.Notify(sigs, unix.SIGWINCH, unix.SIGTERM, unix.SIGHUP, unix.SIGINT, unix.SIGQUIT)
	defer signal.Stop(sigs)
	resize(in, master)
	err = c.Start()
	slave.Close()
	if err != nil {
		return 0, fmt.Errorf("failed to start exec helper: %w", err)
	}
	state, err := term.MakeRaw(in)
	if err != nil {
		c.Process.Kill()
		c.Wait()
		return 0, fmt.Errorf("failed to put the terminal in raw mode: %w", err)
	}
	var once sync.Once
	restore := func() { once.Do(func() { term.Restore(in, state) }) }
	defer restore()
	defer func() {
		if r := recover(); r != nil {
			restore()
			panic(r)
		}
	}()

	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case s := <-sigs:
				switch s {
				case unix.SIGWINCH:
					resize(in, master)
				case unix.SIGTERM, unix.SIGHUP:
					// We are going away: give the user their terminal back
					// and hang up the pty, as closing a terminal would.
					restore()
					c.Process.Signal(unix.SIGHUP)
					master.Close()
				}
			case <-done:
				return
			}
		}
	}()
	if stdin {
		// Never joined: a read of our stdin cannot be interrupted, and the
		// process exits right after the command does.
		go io.Copy(master, os.Stdin)
	}
	// Ends with EIO once the last holder of the slave closed it.
	io.Copy(os.Stdout, master)
	return waitCode(c)
}

// resize copies our terminal's window size to the pty.
func resize(in int, master *os.File) {
	ws, err := unix.IoctlGetWinsize(in, unix.TIOCGWINSZ)
	if err != nil {
		return
	}
	// Not master.Fd(): that would switch it to blocking mode.
	if rc, err := master.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, ws) })
	}
}
