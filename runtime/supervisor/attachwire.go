package supervisor

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/peapod/peapod/runtime/layout"
)

// OpAttach connects the caller to a running container's main process: its
// output (and, with Request.Stdin, its stdin) travel as frames on the same
// connection once the JSON response said yes. It was added within v1: a
// supervisor that predates it answers `unknown op "attach"`, which Attach
// turns into a clear error.
const OpAttach = "attach"

// Frame kinds after an attach response. A frame is one kind byte, a
// big-endian uint32 length and that many bytes (at most maxFrame).
const (
	// frameStdin (client → supervisor) is input for the container.
	frameStdin = 'i'
	// frameStdinEOF (client → supervisor): the client's input ended. With
	// stdinOnce the container's stdin closes; otherwise it stays open for
	// the next attach, as with docker attach.
	frameStdinEOF = 'c'
	// frameResize (client → supervisor): rows and columns, two uint16.
	frameResize = 'r'
	// frameStdout and frameStderr (supervisor → client) are output; a tty
	// container has stdout only.
	frameStdout = 'o'
	frameStderr = 'e'
	// frameEnd (supervisor → client) ends the attach; its payload says why
	// when it is not the instance's exit.
	frameEnd = 'x'
)

// maxFrame bounds a frame's payload; a longer one is a protocol error.
const maxFrame = 64 << 10

// ErrDetached is returned by Attach when the caller detached (its stdin
// gave ErrDetached): the process keeps running.
var ErrDetached = errors.New("detached")

// errFrameTooLong marks a frame whose length exceeds maxFrame.
var errFrameTooLong = errors.New("attach frame too long")

// writeFrame writes one frame.
func writeFrame(w io.Writer, kind byte, p []byte) error {
	if len(p) > maxFrame {
		return errFrameTooLong
	}
	b := make([]byte, 5+len(p))
	b[0] = kind
	binary.BigEndian.PutUint32(b[1:5], uint32(len(p)))
	copy(b[5:], p)
	_, err := w.Write(b)
	return err
}

// readFrame reads one frame; its payload is valid until the next call.
func readFrame(r io.Reader, buf []byte) (byte, []byte, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("%w: %d bytes", errFrameTooLong, n)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, fmt.Errorf("truncated attach frame: %w", err)
	}
	return h[0], buf, nil
}

// Winsize is a terminal's size.
type Winsize struct {
	Rows, Cols uint16
}

// encodeWinsize and decodeWinsize are a resize frame's payload.
func encodeWinsize(ws Winsize) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint16(b, ws.Rows)
	binary.BigEndian.PutUint16(b[2:], ws.Cols)
	return b
}

func decodeWinsize(p []byte) (Winsize, error) {
	if len(p) != 4 {
		return Winsize{}, fmt.Errorf("resize frame of %d bytes, want 4", len(p))
	}
	return Winsize{Rows: binary.BigEndian.Uint16(p), Cols: binary.BigEndian.Uint16(p[2:])}, nil
}

// AttachStreams are the caller's ends of an attach.
type AttachStreams struct {
	// Stdin, when not nil, is copied to the container's stdin (the
	// container must have stdin: true). Its io.EOF ends the input; its
	// ErrDetached (see DetachReader) detaches.
	Stdin io.Reader
	// Stdout and Stderr receive the output (a tty container has stdout only).
	Stdout, Stderr io.Writer
	// Resize, when not nil, carries the caller's terminal size: the first
	// value at once, then each change.
	Resize <-chan Winsize
	// Done, when not nil, detaches once closed (the caller's client went
	// away: Attach returns ErrDetached and the process runs on).
	Done <-chan struct{}
}

// AttachInfo is what the supervisor said about the container attached to.
type AttachInfo struct {
	// TTY is set when the container runs on a pty.
	TTY bool `json:"tty,omitempty"`
}

// Attach connects streams to the running main process of container in
// the pod whose run dir is runDir, and returns when the process's output
// ends (it exited: nil), the caller detached (ErrDetached) or the
// connection failed. ready, when not nil, is called once the supervisor
// accepted the attach, before any output is copied.
func Attach(runDir, container string, streams AttachStreams, ready func(AttachInfo)) error {
	path := layout.Run(runDir).Socket()
	conn, err := net.Dial("unix", path)
	if err != nil {
		return fmt.Errorf("failed to reach supervisor at %q: %w: %w", path, ErrNoSupervisor, err)
	}
	defer conn.Close()
	req := Request{Version: ProtocolVersion, Op: OpAttach, Container: container, Stdin: streams.Stdin != nil}
	if err := json.NewEncoder(conn).Encode(&req); err != nil {
		return fmt.Errorf("failed to send attach to supervisor at %q: %w", path, err)
	}
	// One reader for the response line and the frames after it: a JSON
	// decoder would read ahead into the first frames.
	br := bufio.NewReader(conn)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("failed to read supervisor's answer to attach at %q: %w", path, err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return fmt.Errorf("failed to decode supervisor's answer to attach at %q: %w", path, err)
	}
	switch {
	case resp.Version == ProtocolVersion && resp.Error == fmt.Sprintf("unknown op %q", OpAttach):
		return fmt.Errorf("the supervisor of this pod predates attach (it answers %q): run the pod again with this peapod", resp.Error)
	case resp.Version == ProtocolVersion && resp.Error != "":
		// The supervisor's refusal names the container and says why.
		return errors.New(resp.Error)
	}
	if err := checkResponse(path, &resp); err != nil {
		return err
	}
	info := AttachInfo{}
	if resp.Attach != nil {
		info = *resp.Attach
	}
	if ready != nil {
		ready(info)
	}
	return pumpAttach(conn, br, streams)
}

// pumpAttach copies frames both ways until the output ends or the caller
// detaches.
func pumpAttach(conn net.Conn, br *bufio.Reader, streams AttachStreams) error {
	var wmu sync.Mutex
	send := func(kind byte, p []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		return writeFrame(conn, kind, p)
	}
	detached := make(chan struct{})
	done := make(chan struct{})
	defer close(done)
	if streams.Resize != nil {
		// The size known now goes before any input, so the first line
		// typed already runs at the caller's size.
		select {
		case ws := <-streams.Resize:
			if err := send(frameResize, encodeWinsize(ws)); err != nil {
				return fmt.Errorf("attach stream broken: %w", err)
			}
		default:
		}
	}
	if streams.Stdin != nil {
		// Never joined: a read of a terminal cannot be interrupted; the
		// goroutine ends at its next read or with the process.
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := streams.Stdin.Read(buf)
				if n > 0 && send(frameStdin, buf[:n]) != nil {
					return
				}
				if errors.Is(err, ErrDetached) {
					close(detached)
					return
				}
				if err != nil {
					send(frameStdinEOF, nil)
					return
				}
			}
		}()
	}
	if streams.Resize != nil {
		go func() {
			for {
				select {
				case ws, ok := <-streams.Resize:
					if !ok || send(frameResize, encodeWinsize(ws)) != nil {
						return
					}
				case <-done:
					return
				}
			}
		}()
	}
	out := make(chan error, 1)
	go func() { out <- copyOutput(br, streams) }()
	select {
	case err := <-out:
		return err
	case <-detached:
		return ErrDetached
	case <-streams.Done:
		return ErrDetached
	}
}

// copyOutput writes output frames to the caller's streams until the end
// frame.
func copyOutput(r io.Reader, streams AttachStreams) error {
	buf := make([]byte, maxFrame)
	for {
		kind, p, err := readFrame(r, buf)
		if err != nil {
			return fmt.Errorf("attach stream broken: %w", err)
		}
		switch kind {
		case frameStdout:
			if streams.Stdout != nil {
				streams.Stdout.Write(p)
			}
		case frameStderr:
			if streams.Stderr != nil {
				streams.Stderr.Write(p)
			}
		case frameEnd:
			if len(p) > 0 {
				return errors.New(string(p))
			}
			return nil
		default:
			return fmt.Errorf("attach stream broken: unknown frame kind %q", kind)
		}
	}
}
