package cri

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/peapod/peapod/runtime/pod"
	"github.com/peapod/peapod/runtime/state"
	"github.com/peapod/peapod/runtime/supervisor"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// The streaming calls (Exec, Attach, PortForward) answer with the URL of
// a request on the streaming server of k8s.io/cri-streaming, which crictl
// or the kubelet then opens (SPDY or websocket) for the streams. The
// server's token (single use, a minute to live) is its only check, so it
// listens on loopback only.

// DefaultStreamingAddress is where the streaming server listens by default:
// loopback, a port the kernel picks.
const DefaultStreamingAddress = "127.0.0.1:0"

// execTerm is the TERM of an exec with a tty: the CRI does not pass the
// client's, and containerd and CRI-O set xterm too.
const execTerm = "xterm"

// StartStreaming serves the streaming server on addr (host:port, a
// loopback host) and returns its address and a function closing it.
func (s *Server) StartStreaming(addr string) (string, func() error, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", nil, fmt.Errorf("streaming address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		// Anyone who reaches the port with a token gets a shell.
		return "", nil, fmt.Errorf("streaming address %q: the host must be a loopback address (the streaming server has no authentication)", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("failed to listen for streaming on %q: %w", addr, err)
	}
	cfg := streaming.DefaultConfig
	cfg.Addr = ln.Addr().String()
	cfg.BaseURL = &url.URL{Scheme: "http", Host: cfg.Addr}
	srv, err := streaming.NewServer(cfg, streamRuntime{s})
	if err != nil {
		ln.Close()
		return "", nil, fmt.Errorf("failed to create the streaming server: %w", err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 30 * time.Second}
	go hs.Serve(ln)
	s.stream = srv
	return cfg.Addr, hs.Close, nil
}

// errNoStreamingServer answers a streaming call of a server started
// without StartStreaming.
var errNoStreamingServer = status.Error(codes.Unavailable, "peapod-cri runs no streaming server")

// runningContainer resolves a container id that must name a running
// container: NotFound, or FailedPrecondition with containerd's words
// ("is in CONTAINER_EXITED state"), before a URL is handed out for it.
func (s *Server) runningContainer(id string) (*ctr, error) {
	c, err := s.findContainer(id)
	if err != nil {
		return nil, err
	}
	if c.st == nil || c.st.State != state.StateRunning || !c.st.Proc.Alive() {
		st, _, _, _ := c.criState()
		if st == runtimeapi.ContainerState_CONTAINER_RUNNING {
			st = runtimeapi.ContainerState_CONTAINER_UNKNOWN // its process is gone
		}
		return nil, status.Errorf(codes.FailedPrecondition, "container %s is not running: it is in %s state", c.id(), st)
	}
	return c, nil
}

// Exec checks the container runs and returns the URL of the exec.
func (s *Server) Exec(_ context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	if len(req.Cmd) == 0 {
		return nil, invalid("cmd", "missing")
	}
	if _, err := s.runningContainer(req.ContainerId); err != nil {
		return nil, err
	}
	if s.stream == nil {
		return nil, errNoStreamingServer
	}
	return s.stream.GetExec(req)
}

// Attach checks the container runs and returns the URL of the attach.
func (s *Server) Attach(_ context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	if _, err := s.runningContainer(req.ContainerId); err != nil {
		return nil, err
	}
	if s.stream == nil {
		return nil, errNoStreamingServer
	}
	return s.stream.GetAttach(req)
}

// PortForward checks the sandbox has its network and returns the URL of
// the port forward.
func (s *Server) PortForward(_ context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	for _, p := range req.Port {
		if p <= 0 || p > 65535 {
			return nil, invalid("port", "%d is not a TCP port", p)
		}
	}
	sb, err := s.find(req.PodSandboxId)
	if err != nil {
		return nil, err
	}
	if _, err := s.m.PortDialerOf(sb.view); err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "pod sandbox %s: %v", sb.id(), err)
	}
	if s.stream == nil {
		return nil, errNoStreamingServer
	}
	return s.stream.GetPortForward(req)
}

// streamRuntime is the streaming server's Runtime: peapod's exec and port
// dialer (runtime/pod), the same as `peapod exec` and `peapod
// port-forward`.
type streamRuntime struct{ s *Server }

// Exec runs cmd in the container with the client's streams until it
// exits; a non-zero exit is returned as a utilexec.ExitError, which the
// server reports to the client as the exit code.
func (r streamRuntime) Exec(ctx context.Context, id string, argv []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	c, err := r.s.findContainer(id)
	if err != nil {
		return err
	}
	uid := c.sb.id()
	var cmd *exec.Cmd
	// copied is closed once the command's output reached the client.
	copied := make(chan struct{})
	if tty {
		var master, slave *os.File
		cmd, master, slave, err = r.s.m.CRIExecTerminal(uid, c.id(), argv, execTerm)
		if err != nil {
			return execError(c, err)
		}
		defer master.Close()
		err = cmd.Start()
		// Our copy of the slave would keep master from reporting EIO
		// once the command exits.
		slave.Close()
		if err != nil {
			return fmt.Errorf("failed to exec %q in container %s: %w", argv, c.id(), err)
		}
		go func() {
			for size := range resize {
				setWinsize(master, size)
			}
		}()
		if in != nil {
			// The client's stdin of a tty ends only when the client goes
			// away (its ^D travels as a byte): hang the terminal up, as
			// closing a terminal window does, so the shell gets SIGHUP
			// rather than running on with nobody at the other end. (The
			// request's context is not cancelled once the connection
			// was hijacked for the streams.)
			go func() {
				io.Copy(master, in)
				master.Close()
			}()
		}
		go func() {
			defer close(copied)
			if out != nil {
				io.Copy(out, master) // ends with EIO once the slave is closed
			} else {
				io.Copy(io.Discard, master)
			}
		}()
	} else {
		cmd, err = r.s.m.CRIExecCommand(uid, c.id(), argv)
		if err != nil {
			return execError(c, err)
		}
		if out != nil {
			cmd.Stdout = out
		}
		if errw != nil {
			cmd.Stderr = errw
		}
		var pr, pw *os.File
		if in != nil {
			// A pipe of our own rather than cmd.Stdin = in: Wait would
			// wait for a copy from a client that may never close.
			if pr, pw, err = os.Pipe(); err != nil {
				return err
			}
			cmd.Stdin = pr
		}
		err = cmd.Start()
		if pr != nil {
			pr.Close()
			if err == nil {
				go func() { io.Copy(pw, in); pw.Close() }()
			} else {
				pw.Close()
			}
		}
		if err != nil {
			return fmt.Errorf("failed to exec %q in container %s: %w", argv, c.id(), err)
		}
		close(copied) // Wait copies stdout and stderr
	}
	done := make(chan unix.WaitStatus, 1)
	go func() {
		cmd.Wait()
		var ws unix.WaitStatus
		if st, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
			ws = unix.WaitStatus(st)
		}
		done <- ws
	}()
	select {
	case <-done:
	case <-ctx.Done():
		// The client went away: the command's tree dies, leaves first.
		supervisor.KillTree(cmd.Process, done)
		return ctx.Err()
	}
	select {
	case <-copied:
	case <-ctx.Done():
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command %q in container %s exited with %d", argv, c.id(), code), Code: code}
	}
	return nil
}

// execError maps an error of looking up the container to exec in.
func execError(c *ctr, err error) error {
	switch {
	case errors.Is(err, pod.ErrContainerNotFound):
		return status.Errorf(codes.NotFound, "%v", err)
	case strings.Contains(err.Error(), "is not running"):
		return status.Errorf(codes.FailedPrecondition, "%v", err)
	}
	return grpcError(err, "failed to exec in container %s", c.id())
}

// setWinsize gives the pty the client's window size.
func setWinsize(master *os.File, size remotecommand.TerminalSize) {
	ws := &unix.Winsize{Row: size.Height, Col: size.Width}
	// Not master.Fd(): that would switch it to blocking mode.
	if rc, err := master.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, ws) })
	}
}

// Attach connects the client's streams to the running main process of
// the container through its supervisor (pod.Manager.CRIAttach, the same
// operation as `peapod attach`), and returns when the process's output
// ends (it exited) or the client goes. As containerd's:
//   - the client's input reaches the container only if it was created
//     with stdin (otherwise it is read and dropped);
//   - without stdin_once, the end of the client's input ends the attach
//     and the container keeps its stdin open for the next one; with
//     stdin_once it closes the container's stdin (EOF on a pipe, hang-up
//     on a terminal) and the output flows on until the process exits;
//   - a tty container's one stream goes to stdout; resizes reach its pty.
//
// A client is taken to be gone when the request's context ends, its
// input or resize stream ends or a write to it fails (the connection was
// hijacked for the streams: the context alone is no sure sign): the
// attach ends, the supervisor drops its end, the container runs on.
func (r streamRuntime) Attach(ctx context.Context, id string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	c, err := r.s.findContainer(id)
	if err != nil {
		return err
	}
	ended := make(chan struct{})
	defer close(ended)
	gone := make(chan struct{})
	var goneOnce sync.Once
	leave := func() { goneOnce.Do(func() { close(gone) }) }
	go func() {
		select {
		case <-ctx.Done():
			leave()
		case <-ended:
		}
	}()
	streams := supervisor.AttachStreams{Done: gone}
	if out != nil {
		streams.Stdout = clientWriter{out, leave}
	}
	if errw != nil {
		streams.Stderr = clientWriter{errw, leave}
	}
	if in != nil {
		if c.spec.Stdin {
			streams.Stdin = &clientInput{r: in, once: c.spec.StdinOnce, leave: leave}
		} else {
			go func() {
				io.Copy(io.Discard, in)
				leave()
			}()
		}
	}
	if resize != nil {
		ws := make(chan supervisor.Winsize, 1)
		streams.Resize = ws
		// A client with a terminal sends its size as the streams open:
		// taken before the attach starts, it goes to the supervisor ahead
		// of any input, so the first line typed already runs at that
		// size. A client that sends none costs this bounded wait only.
		if tty {
			select {
			case size, ok := <-resize:
				if ok {
					ws <- supervisor.Winsize{Rows: size.Height, Cols: size.Width}
				}
			case <-time.After(firstSizeWait):
			}
		}
		go func() {
			// The resize stream ends with the client's connection.
			defer leave()
			for size := range resize {
				select {
				case ws <- supervisor.Winsize{Rows: size.Height, Cols: size.Width}:
				case <-ended:
					return
				}
			}
		}()
	}
	err = r.s.m.CRIAttach(c.sb.id(), c.id(), streams)
	switch {
	case err == nil, errors.Is(err, supervisor.ErrDetached):
		return nil
	case errors.Is(err, pod.ErrContainerNotFound):
		return status.Errorf(codes.NotFound, "%v", err)
	case strings.Contains(err.Error(), "is not running"), errors.Is(err, supervisor.ErrNoSupervisor):
		return status.Errorf(codes.FailedPrecondition, "container %s is not running: %v", c.id(), err)
	}
	return fmt.Errorf("failed to attach to container %s: %w", c.id(), err)
}

// firstSizeWait bounds the wait for an attach client's terminal size.
const firstSizeWait = 200 * time.Millisecond

// clientWriter is an output stream of an attach client: a failed write
// means the client is gone.
type clientWriter struct {
	w     io.Writer
	leave func()
}

func (w clientWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if err != nil {
		w.leave()
	}
	return n, err
}

// clientInput is an attach client's input. Its end ends the attach,
// unless the container has stdin_once: then it is the container's EOF
// (the supervisor closes its stdin) and the output flows on.
type clientInput struct {
	r     io.Reader
	once  bool
	leave func()
}

func (c *clientInput) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && !c.once {
		c.leave()
		return n, supervisor.ErrDetached
	}
	return n, err
}

// PortForward copies stream to and from port on the sandbox's loopback,
// dialled inside its network namespace.
func (r streamRuntime) PortForward(ctx context.Context, sandboxID string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	sb, err := r.s.find(sandboxID)
	if err != nil {
		return err
	}
	d, err := r.s.m.PortDialerOf(sb.view)
	if err != nil {
		return status.Errorf(codes.FailedPrecondition, "pod sandbox %s: %v", sb.id(), err)
	}
	return d.Forward(ctx, int(port), stream)
}
