package supervisor

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/spec"
)

// attachFixture is a supervisor serving its socket, with one running
// container whose hub the test drives: what the container would read from
// its stdin comes out of stdin.
type attachFixture struct {
	s     *Supervisor
	dir   string
	hub   *attachHub
	stdin *os.File
}

func newAttachFixture(t *testing.T, c spec.Container) *attachFixture {
	t.Helper()
	dir, err := os.MkdirTemp("", "att")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := spec.Pod{Version: spec.Version, UID: "u1", Name: "p", Namespace: "ns", RunDir: dir,
		RestartPolicy: spec.RestartAlways, Containers: []spec.Container{c, {Name: "plain", ID: "plain"}}}
	b, err := json.Marshal(&p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(layout.Run(dir).Spec(), b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := New(dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := s.listen()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	f := &attachFixture{s: s, dir: dir, hub: newAttachHub(s.apps[0].spec)}
	if c.Stdin {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close(); w.Close() })
		f.hub.setStdin(w, false)
		f.stdin = r
	}
	s.apps[0].hub, s.apps[0].proc.PID = f.hub, 1
	s.apps[1].hub, s.apps[1].proc.PID = newAttachHub(s.apps[1].spec), 1
	return f
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	ch  chan struct{}
	buf bytes.Buffer
	mu  chan struct{}
}

func newSyncBuffer() *syncBuffer {
	b := &syncBuffer{ch: make(chan struct{}, 1), mu: make(chan struct{}, 1)}
	return b
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu <- struct{}{}
	b.buf.Write(p)
	<-b.mu
	select {
	case b.ch <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.String()
}

// await waits until the buffer holds s.
func (b *syncBuffer) await(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !strings.Contains(b.String(), s) {
		select {
		case <-b.ch:
		case <-deadline:
			t.Fatalf("never got %q; have %q", s, b.String())
		}
	}
}

// attachAsync attaches in the background; the returned channel gets
// Attach's result once ready was called.
func (f *attachFixture) attachAsync(t *testing.T, container string, streams AttachStreams) <-chan error {
	t.Helper()
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Attach(f.dir, container, streams, func(AttachInfo) { close(ready) })
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("attach to %q failed: %v", container, err)
	case <-time.After(10 * time.Second):
		t.Fatal("attach never became ready")
	}
	return done
}

// TestAttachHub: both attaches see the output and may type; stdinOnce
// closes the stdin (EOF for the container) when the first stdin attach
// ends, and refuses the next; the end of the instance ends every attach.
func TestAttachHub(t *testing.T) {
	f := newAttachFixture(t, spec.Container{Name: "c", ID: "c", Stdin: true, StdinOnce: true})
	out1, out2 := newSyncBuffer(), newSyncBuffer()
	in1r, in1w := io.Pipe()
	done1 := f.attachAsync(t, "c", AttachStreams{Stdin: in1r, Stdout: out1, Stderr: out1})
	done2 := f.attachAsync(t, "c", AttachStreams{Stdout: out2, Stderr: out2})

	f.hub.output(frameStdout).Write([]byte("hello "))
	f.hub.output(frameStderr).Write([]byte("world"))
	out1.await(t, "hello world")
	out2.await(t, "hello world")

	in1w.Write([]byte("typed"))
	got := make([]byte, 5)
	if _, err := io.ReadFull(f.stdin, got); err != nil || string(got) != "typed" {
		t.Fatalf("container read %q, %v; want the typed input", got, err)
	}
	// EOF of the first attach's input: stdinOnce closes the container's stdin.
	in1w.Close()
	if n, err := f.stdin.Read(got); n != 0 || err != io.EOF {
		t.Fatalf("container read %d bytes, %v after the first attach's EOF; want EOF", n, err)
	}
	err := Attach(f.dir, "c", AttachStreams{Stdin: strings.NewReader("late"), Stdout: io.Discard}, nil)
	if err == nil || !strings.Contains(err.Error(), "stdinOnce closed it") {
		t.Errorf("second stdin attach: %v, want refused for stdinOnce", err)
	}
	f.hub.end()
	for i, done := range []<-chan error{done1, done2} {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("attach %d at the instance's end: %v, want nil", i+1, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("attach %d did not end with the instance", i+1)
		}
	}
	if err := Attach(f.dir, "c", AttachStreams{Stdout: io.Discard}, nil); err == nil || !strings.Contains(err.Error(), `container "c" is not running`) {
		t.Errorf("attach after the end: %v", err)
	}
}

// TestAttachRefused: what cannot be attached says why, naming the container.
func TestAttachRefused(t *testing.T) {
	f := newAttachFixture(t, spec.Container{Name: "c", ID: "c", Stdin: true})
	for _, tt := range []struct {
		container string
		stdin     bool
		want      string
	}{
		{"plain", true, `container "plain" was not started with stdin: true, so it has no stdin to attach to`},
		{"nope", false, `container "nope" not found`},
		{"", false, `attach needs a container name`},
	} {
		var in io.Reader
		if tt.stdin {
			in = strings.NewReader("x")
		}
		err := Attach(f.dir, tt.container, AttachStreams{Stdin: in, Stdout: io.Discard}, nil)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("attach %q (stdin %v): %v, want %q", tt.container, tt.stdin, err, tt.want)
		}
	}
	// A tty without stdin: true takes no input, as with the kubelet.
	tty := newAttachHub(&spec.Container{Name: "t", OCI: specs.Spec{Process: &specs.Process{Terminal: true}}})
	if _, err := tty.join(true, nil); err == nil || !strings.Contains(err.Error(), "was not started with stdin: true") {
		t.Errorf("stdin attach to a tty without stdin: %v", err)
	}
	f.hub.loseStdin("its supervisor was lost")
	err := Attach(f.dir, "c", AttachStreams{Stdin: strings.NewReader("x"), Stdout: io.Discard}, nil)
	if err == nil || !strings.Contains(err.Error(), "its supervisor was lost") {
		t.Errorf("stdin attach after adoption: %v", err)
	}
}

// TestAttachDetach: a detaching caller returns ErrDetached; without
// stdinOnce the stdin stays open for the next attach.
func TestAttachDetach(t *testing.T) {
	f := newAttachFixture(t, spec.Container{Name: "c", ID: "c", Stdin: true})
	r := io.MultiReader(strings.NewReader("abc"), errReader{ErrDetached})
	if err := Attach(f.dir, "c", AttachStreams{Stdin: r, Stdout: io.Discard}, nil); !errors.Is(err, ErrDetached) {
		t.Fatalf("attach with a detaching stdin: %v", err)
	}
	// What was typed before the detach keys still arrives.
	got := make([]byte, 3)
	if _, err := io.ReadFull(f.stdin, got); err != nil || string(got) != "abc" {
		t.Fatalf("container read %q, %v; want the detached attach's input", got, err)
	}
	done := f.attachAsync(t, "c", AttachStreams{Stdin: strings.NewReader("def"), Stdout: io.Discard})
	if _, err := io.ReadFull(f.stdin, got); err != nil || string(got) != "def" {
		t.Fatalf("container read %q, %v; want the next attach's input", got, err)
	}
	f.hub.end()
	<-done
}

// TestAttachDone: closing Done (the CRI server's client went away)
// detaches an attach that has no input to end it: Attach returns
// ErrDetached, the supervisor drops the client, and a stdinOnce stdin
// stays open (the client never used it).
func TestAttachDone(t *testing.T) {
	f := newAttachFixture(t, spec.Container{Name: "c", ID: "c", Stdin: true, StdinOnce: true})
	out := newSyncBuffer()
	gone := make(chan struct{})
	done := f.attachAsync(t, "c", AttachStreams{Stdout: out, Done: gone})
	f.hub.output(frameStdout).Write([]byte("before"))
	out.await(t, "before")
	close(gone)
	select {
	case err := <-done:
		if !errors.Is(err, ErrDetached) {
			t.Fatalf("attach after Done closed: %v, want ErrDetached", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("attach did not end when Done closed")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.hub.mu.Lock()
		n := len(f.hub.clients)
		f.hub.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hub still has %d clients after the attach detached", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	in := f.attachAsync(t, "c", AttachStreams{Stdin: strings.NewReader("still"), Stdout: io.Discard})
	got := make([]byte, 5)
	if _, err := io.ReadFull(f.stdin, got); err != nil || string(got) != "still" {
		t.Fatalf("container read %q, %v; want the input of an attach after the detached one", got, err)
	}
	f.hub.end()
	<-in
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// TestAttachSlowClient: a client that does not read is dropped with a
// message, never slowing the output for the log.
func TestAttachSlowClient(t *testing.T) {
	h := newAttachHub(&spec.Container{Name: "c"})
	c, err := h.join(false, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		for i := 0; i <= attachBacklog; i++ {
			h.broadcast(frameStdout, []byte("x"))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("broadcast blocked on a client that does not read")
	}
	n := 0
	for range c.out {
		n++
	}
	if n != attachBacklog || !strings.Contains(c.endMsg, "did not read the output fast enough") {
		t.Errorf("slow client: %d frames queued, end %q", n, c.endMsg)
	}
}

// TestAttachFrames: frames round-trip; an oversized or truncated frame is
// an error, never a huge allocation or a hang.
func TestAttachFrames(t *testing.T) {
	var b bytes.Buffer
	writeFrame(&b, frameStdin, []byte("data"))
	writeFrame(&b, frameResize, encodeWinsize(Winsize{Rows: 24, Cols: 80}))
	kind, p, err := readFrame(&b, nil)
	if err != nil || kind != frameStdin || string(p) != "data" {
		t.Fatalf("frame %q %q %v", kind, p, err)
	}
	kind, p, err = readFrame(&b, nil)
	ws, werr := decodeWinsize(p)
	if err != nil || kind != frameResize || werr != nil || ws != (Winsize{24, 80}) {
		t.Fatalf("resize frame %q %v %v %v", kind, ws, err, werr)
	}
	if err := writeFrame(io.Discard, frameStdin, make([]byte, maxFrame+1)); !errors.Is(err, errFrameTooLong) {
		t.Errorf("writing an oversized frame: %v", err)
	}
	if _, _, err := readFrame(bytes.NewReader([]byte{frameStdin, 0xff, 0xff, 0xff, 0xff}), nil); !errors.Is(err, errFrameTooLong) {
		t.Errorf("reading a 4 GiB frame header: %v", err)
	}
	if _, _, err := readFrame(bytes.NewReader([]byte{frameStdin, 0, 0, 0, 9, 'a'}), nil); err == nil {
		t.Error("a truncated frame read without error")
	}
	if _, err := decodeWinsize([]byte{1, 2, 3}); err == nil {
		t.Error("a 3-byte resize decoded")
	}
}
