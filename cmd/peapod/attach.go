package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/peapod/peapod/runtime/pod"
	"github.com/peapod/peapod/runtime/supervisor"
)

func newAttachCommand(g *globals) *cobra.Command {
	var container string
	var stdin, tty bool
	cmd := &cobra.Command{
		Use:   "attach POD [-c CONTAINER] [-i] [-t]",
		Short: "Attach to the running main process of a container",
		Long: "Shows the output of the container's main process and, with -i, sends it your input (the container\n" +
			"must have stdin: true). With -it on a container with tty: true your terminal is in raw mode and\n" +
			"Ctrl-P Ctrl-Q detaches, leaving the process running. The pod's supervisor holds the container's\n" +
			"pty or stdin pipe; with stdinOnce: true the stdin closes when the first attach that used it ends.\n" +
			"Several attaches at once all see the output and all may type.",
		Example: "  sudo peapod attach -it shell\n  echo hello | sudo peapod attach -i web -c reader",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := g.manager()
			if err != nil {
				return err
			}
			_, err = attachTerminal(m, g.namespace, args[0], container, stdin, tty, nil)
			return err
		},
	}
	cmd.Flags().StringVarP(&container, "container", "c", "", "container name (default: the pod's default container)")
	cmd.Flags().BoolVarP(&stdin, "stdin", "i", false, "pass stdin to the container")
	cmd.Flags().BoolVarP(&tty, "tty", "t", false, "stdin is a terminal (raw mode, window size, Ctrl-P Ctrl-Q detaches)")
	return cmd
}

// attachTerminal attaches our stdio to the container's main process; it
// returns whether the user detached. The terminal is raw only while
// attached with -it to a tty container, and restored on every way out
// (return, signal, panic). A SIGTERM, SIGHUP or (without a raw terminal)
// SIGINT ends peapod with 128+N after onSignal, if set, ran.
func attachTerminal(m *pod.Manager, ns, name, container string, stdin, tty bool, onSignal func()) (detached bool, err error) {
	in := int(os.Stdin.Fd())
	if tty && !term.IsTerminal(in) {
		return false, errNotATerminal
	}
	sigs := make(chan os.Signal, 4)
	// Before raw mode: a SIGTERM in between must not leave the terminal raw.
	signal.Notify(sigs, unix.SIGWINCH, unix.SIGTERM, unix.SIGHUP, unix.SIGINT)
	defer signal.Stop(sigs)

	var mu sync.Mutex
	var saved *term.State
	restore := func() {
		mu.Lock()
		defer mu.Unlock()
		if saved != nil {
			term.Restore(in, saved)
			saved = nil
		}
	}
	defer restore()
	defer func() {
		if r := recover(); r != nil {
			restore()
			panic(r)
		}
	}()

	o := pod.AttachOptions{Container: container, Streams: supervisor.AttachStreams{Stdout: os.Stdout, Stderr: os.Stderr}}
	var stdinR io.Reader
	if stdin {
		stdinR = os.Stdin
		if tty {
			stdinR = pod.DetachReader(os.Stdin, pod.DefaultDetachKeys)
		}
		o.Streams.Stdin = stdinR
	}
	resize := make(chan supervisor.Winsize, 1)
	raw := false
	o.Ready = func(container string, info supervisor.AttachInfo) {
		if tty && !info.TTY {
			// kubectl's words; the attach goes on without a terminal.
			fmt.Fprintf(os.Stderr, "error: Unable to use a TTY - container %s did not allocate one\n", container)
		}
		if !tty || !info.TTY || !stdin {
			return
		}
		sendSize(in, resize)
		mu.Lock()
		defer mu.Unlock()
		st, err := term.MakeRaw(in)
		if err == nil {
			saved, raw = st, true
		}
		// kubectl's hint, once raw (so the line needs its own CR): an
		// idle shell has printed its prompt before we came.
		fmt.Fprint(os.Stderr, "If you don't see a command prompt, try pressing enter.\r\n")
	}
	// Read by the attach once Ready returned (which queued the first size).
	if tty && stdin {
		o.Streams.Resize = resize
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case s := <-sigs:
				if s == unix.SIGWINCH {
					sendSize(in, resize)
					continue
				}
				// Ctrl-C without a raw terminal, kill, hang-up: leave the
				// process running and give the user their terminal back.
				restore()
				if onSignal != nil {
					onSignal()
				}
				os.Exit(128 + int(s.(unix.Signal)))
			case <-done:
				return
			}
		}
	}()
	err = m.Attach(ns, name, o)
	restore()
	if raw {
		fmt.Fprint(os.Stdout, "\r\n")
	}
	if errors.Is(err, supervisor.ErrDetached) {
		fmt.Fprintf(os.Stderr, "detached from pod %s/%s; its container keeps running (peapod attach to return)\n", ns, name)
		return true, nil
	}
	return false, err
}

// sendSize queues our terminal's size, replacing a size not sent yet.
func sendSize(in int, resize chan supervisor.Winsize) {
	ws, err := unix.IoctlGetWinsize(in, unix.TIOCGWINSZ)
	if err != nil {
		return
	}
	select {
	case <-resize:
	default:
	}
	resize <- supervisor.Winsize{Rows: ws.Row, Cols: ws.Col}
}
