package supervisor

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/runtime/spec"
)

// TerminalRuntime starts containers that run on a pty (spec TTY); the
// namespaces-backed runtime implements it. A Runtime without it refuses
// tty containers.
type TerminalRuntime interface {
	// StartTerminalContainer is StartContainer for a tty container: the
	// init stage allocates the pty from the container's own devpts and
	// hands back its master, which the caller then owns.
	StartTerminalContainer(p *spec.Pod, c *spec.Container, beforeRun func(pid int) error) (int, *os.File, error)
}

// attachBacklog is how many output frames may wait for one attached
// client; a client that falls further behind is dropped rather than let
// slow the container or the log (which reads the same stream).
const attachBacklog = 256

// attachHub is one container instance's attach point: it fans the output
// out to every attached client and holds the container's stdin (a pipe's
// write end, or the pty master) for the instance's life.
//
// Concurrent attaches all see the output and all may write input, which
// reaches the container in the order the supervisor reads it, chunk by
// chunk (as with docker and kubectl attach). With stdinOnce, the stdin
// closes when the first attach that used it ends (kubelet semantics), for
// every client; later attaches with stdin are refused.
type attachHub struct {
	// container names the container in errors.
	container string
	// mu guards everything below but wmu's writes.
	mu sync.Mutex
	// clients are the attached clients.
	clients map[*attachClient]struct{}
	// ended is set once the output ended: no client may join.
	ended bool
	// stdin is the container's input: the pty master for a tty, a pipe's
	// write end for stdin: true, nil for neither or once closed.
	stdin *os.File
	// master is the pty master (resizes go there), nil without a tty.
	master *os.File
	// hasStdin reports whether the container was started with stdin:
	// true (a tty without it takes no input, as with the kubelet).
	hasStdin bool
	// stdinOnce closes stdin when the first stdin attach ends.
	stdinOnce bool
	// stdinGone says why stdin is gone ("" while it is there).
	stdinGone string
	// gone says why nothing can be attached ("" while the streams are
	// there): an adopted tty instance's terminal died with the lost
	// supervisor.
	gone string
	// wmu serialises writes to stdin, so each chunk lands whole.
	wmu sync.Mutex
}

// attachClient is one attached connection.
type attachClient struct {
	// out carries output frames to the client's writer; closed at the end.
	out chan outFrame
	// stdin marks a client that attached with stdin.
	stdin bool
	// endMsg is the end frame's payload (set before out is closed).
	endMsg string
	// conn is closed when the client is dropped, so a blocked write ends.
	conn net.Conn
}

// outFrame is one output chunk.
type outFrame struct {
	kind byte
	data []byte
}

// newAttachHub makes the hub of an instance of c.
func newAttachHub(c *spec.Container) *attachHub {
	return &attachHub{container: c.Name, clients: map[*attachClient]struct{}{},
		hasStdin: c.Stdin, stdinOnce: c.StdinOnce}
}

// setStdin hands the hub the container's input end (and, for a tty, the
// master, which is both).
func (h *attachHub) setStdin(f *os.File, master bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stdin = f
	if master {
		h.master = f
	}
}

// loseStdin records that the stdin cannot be had (an adopted instance:
// its pipe or pty went with the lost supervisor).
func (h *attachHub) loseStdin(why string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stdinGone = why
}

// output returns the writer that fans stream kind (frameStdout or
// frameStderr) out to the clients; the log copier tees into it.
func (h *attachHub) output(kind byte) io.Writer {
	return hubWriter{h: h, kind: kind}
}

type hubWriter struct {
	h    *attachHub
	kind byte
}

func (w hubWriter) Write(p []byte) (int, error) {
	w.h.broadcast(w.kind, p)
	return len(p), nil
}

// broadcast queues p for every client; it never blocks.
func (h *attachHub) broadcast(kind byte, p []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.clients) == 0 {
		return
	}
	data := append([]byte(nil), p...)
	for c := range h.clients {
		select {
		case c.out <- outFrame{kind: kind, data: data}:
		default:
			h.dropLocked(c, "attach dropped: the client did not read the output fast enough")
		}
	}
}

// dropLocked ends one client with msg.
func (h *attachHub) dropLocked(c *attachClient, msg string) {
	delete(h.clients, c)
	c.endMsg = msg
	close(c.out)
	if c.conn != nil {
		c.conn.Close()
	}
	h.leftLocked(c)
}

// join adds a client; stdin asks for the container's stdin.
func (h *attachHub) join(stdin bool, conn net.Conn) (*attachClient, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.ended:
		return nil, fmt.Errorf("container %q is not running", h.container)
	case h.gone != "":
		return nil, fmt.Errorf("container %q cannot be attached: %s", h.container, h.gone)
	case stdin && !h.hasStdin:
		return nil, fmt.Errorf("container %q was not started with stdin: true, so it has no stdin to attach to (attach without -i shows its output)", h.container)
	case stdin && h.stdinGone != "":
		return nil, fmt.Errorf("the stdin of container %q is closed: %s", h.container, h.stdinGone)
	}
	c := &attachClient{out: make(chan outFrame, attachBacklog), stdin: stdin, conn: conn}
	h.clients[c] = struct{}{}
	return c, nil
}

// leave removes a client whose connection ended (detach, disconnect).
func (h *attachHub) leave(c *attachClient) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; !ok {
		return
	}
	delete(h.clients, c)
	close(c.out)
	h.leftLocked(c)
}

// leftLocked applies stdinOnce to a client that is gone.
func (h *attachHub) leftLocked(c *attachClient) {
	if c.stdin && h.stdinOnce {
		h.closeStdinLocked("stdinOnce closed it when the first attach ended")
	}
}

// stdinEOF is a client's end of input: with stdinOnce the container's
// stdin closes (EOF for a pipe); otherwise it stays for the next attach.
func (h *attachHub) stdinEOF(c *attachClient) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.stdin && h.stdinOnce {
		h.closeStdinLocked("stdinOnce closed it when the first attach ended")
	}
}

// closeStdinLocked closes the container's stdin. For a tty that is the
// master, as containerd's shim closes the console when stdinOnce input
// ends: the terminal hangs up (SIGHUP to its session) and its remaining
// output is not read.
func (h *attachHub) closeStdinLocked(why string) {
	if h.stdinGone == "" {
		h.stdinGone = why
	}
	if h.stdin != nil {
		h.stdin.Close()
		h.stdin = nil
	}
}

// write copies a client's input to the container's stdin.
func (h *attachHub) write(p []byte) error {
	h.mu.Lock()
	f := h.stdin
	h.mu.Unlock()
	if f == nil {
		return nil
	}
	h.wmu.Lock()
	defer h.wmu.Unlock()
	_, err := f.Write(p)
	return err
}

// resize sets the pty's window size; the kernel sends SIGWINCH to the
// terminal's foreground process group.
func (h *attachHub) resize(ws Winsize) {
	h.mu.Lock()
	m := h.master
	h.mu.Unlock()
	if m == nil {
		return
	}
	if rc, err := m.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: ws.Rows, Col: ws.Cols})
		})
	}
}

// end is called once the instance's output ended: every client gets the
// end frame after its queued output, and stdin is closed.
func (h *attachHub) end() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ended = true
	for c := range h.clients {
		delete(h.clients, c)
		close(c.out)
	}
	h.closeStdinLocked("the container exited")
}

// serveAttach answers an OpAttach request on conn (in is what follows the
// request line) and then pumps frames until the instance's output ends or
// the client goes.
func (s *Supervisor) serveAttach(conn net.Conn, in io.Reader, req *Request) {
	h, tty, err := s.attachPoint(req.Container)
	var c *attachClient
	if err == nil {
		c, err = h.join(req.Stdin, conn)
	}
	resp := Response{Version: ProtocolVersion}
	if err != nil {
		resp.Error = err.Error()
		writeResponse(conn, &resp)
		return
	}
	resp.Attach = &AttachInfo{TTY: tty}
	if writeResponse(conn, &resp) != nil {
		h.leave(c)
		return
	}
	written := make(chan struct{})
	go func() {
		defer close(written)
		for f := range c.out {
			if writeFrame(conn, f.kind, f.data) != nil {
				// Keep draining so broadcast never sees a full queue of
				// a client that is going anyway.
				conn.Close()
			}
		}
		writeFrame(conn, frameEnd, []byte(c.endMsg))
		conn.Close()
	}()
	// The request line's newline comes first (the JSON decoder stops
	// before it); waited for only now that the response is out.
	rd := bufio.NewReader(in)
	if b, err := rd.Peek(1); err == nil && b[0] == '\n' {
		rd.Discard(1)
	}
	buf := make([]byte, maxFrame)
	for {
		kind, p, err := readFrame(rd, buf)
		if err != nil {
			break
		}
		switch kind {
		case frameStdin:
			if c.stdin {
				h.write(p)
			}
		case frameStdinEOF:
			h.stdinEOF(c)
		case frameResize:
			if ws, err := decodeWinsize(p); err == nil {
				h.resize(ws)
			}
		}
	}
	h.leave(c)
	<-written
}

// attachPoint finds the running instance of the named container.
func (s *Supervisor) attachPoint(name string) (*attachHub, bool, error) {
	if name == "" {
		return nil, false, fmt.Errorf("attach needs a container name")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range append(append([]*container{}, s.apps...), s.inits...) {
		if c.spec.Name != name {
			continue
		}
		if c.hub == nil || c.proc.PID == 0 {
			return nil, false, fmt.Errorf("container %q is not running", name)
		}
		return c.hub, c.spec.TTY(), nil
	}
	return nil, false, fmt.Errorf("container %q not found", name)
}
