package probes

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/runtime/spec"
)

// fullListener returns a loopback address whose accept queue is full, so a
// further connect hangs until it times out.
func fullListener(t *testing.T) string {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	// Backlog 0 queues one connection; nobody accepts, so the next SYN is dropped.
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
	for i := 0; i < 2; i++ {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	return addr
}

func TestChecklist_21(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if out, msg, err := NewTCPHandler("", port, time.Second).Probe(context.Background(), "127.0.0.1"); out != OutcomeSuccess || msg != "" || err != nil {
		t.Fatalf("open port via pod IP: %v %q %v", out, msg, err)
	}
	// host overrides the pod IP (the pod IP here is TEST-NET, never dialled).
	if out, _, _ := NewTCPHandler("127.0.0.1", port, time.Second).Probe(context.Background(), "192.0.2.1"); out != OutcomeSuccess {
		t.Fatalf("host override: %v", out)
	}
	ln.Close()
	out, msg, err := NewTCPHandler("", port, time.Second).Probe(context.Background(), "127.0.0.1")
	if want := fmt.Sprintf("dial tcp 127.0.0.1:%d: connect: connection refused", port); out != OutcomeFailure || msg != want || err != nil {
		t.Fatalf("closed port: %v %q %v, want %q", out, msg, err, want)
	}
	addr := fullListener(t)
	_, p, _ := net.SplitHostPort(addr)
	pn, _ := strconv.Atoi(p)
	start := time.Now()
	out, msg, err = NewTCPHandler("", pn, 300*time.Millisecond).Probe(context.Background(), "127.0.0.1")
	if out != OutcomeFailure || !strings.Contains(msg, "i/o timeout") || err != nil || time.Since(start) > 2*time.Second {
		t.Fatalf("full backlog: %v %q %v after %v", out, msg, err, time.Since(start))
	}
}

func TestProbeDialerSetsLinger(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := NewProbeDialer(time.Second).Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, _ := c.(*net.TCPConn).SyscallConn()
	var l *unix.Linger
	raw.Control(func(fd uintptr) { l, err = unix.GetsockoptLinger(int(fd), unix.SOL_SOCKET, unix.SO_LINGER) })
	if err != nil || l.Onoff != 1 || l.Linger != 1 {
		t.Fatalf("SO_LINGER = %+v, %v; want on, 1s", l, err)
	}
}

func TestChecklist_22(t *testing.T) {
	var gotArgv []string
	fake := func(out string, code int) Runner {
		return func(_ context.Context, argv []string, _ time.Duration) ([]byte, int, error) {
			gotArgv = argv
			return []byte(out), code, nil
		}
	}
	if out, _, err := NewExecHandler([]string{"cat", "/tmp/healthy"}, time.Second, fake("", 0)).Probe(context.Background(), ""); out != OutcomeSuccess || err != nil {
		t.Fatalf("exit 0: %v %v", out, err)
	}
	out, msg, err := NewExecHandler([]string{"cat", "/tmp/healthy"}, time.Second, fake("cat: /tmp/healthy: No such file or directory\n", 1)).Probe(context.Background(), "")
	if out != OutcomeFailure || msg != "cat: /tmp/healthy: No such file or directory\n" || err != nil {
		t.Fatalf("exit 1: %v %q %v", out, msg, err)
	}
	_, msg, _ = NewExecHandler([]string{"x"}, time.Second, fake(strings.Repeat("y", 20<<10), 1)).Probe(context.Background(), "")
	if len(msg) != 10<<10 {
		t.Fatalf("output of %d bytes, want capped at 10 KiB", len(msg))
	}
	if _, _, err := NewExecHandler([]string{"x"}, time.Second, func(context.Context, []string, time.Duration) ([]byte, int, error) {
		return nil, 0, io.ErrClosedPipe
	}).Probe(context.Background(), ""); err == nil {
		t.Fatal("a broken runner must be a probe error")
	}
	// No shell, and $(VAR) from the env only.
	c := &spec.Container{Name: "c"}
	c.OCI.Process = &specs.Process{Env: []string{"FILE=/tmp/healthy", "EMPTY="}}
	p := &spec.Probe{Exec: []string{"sh", "-c", "cat $(FILE) $(MISSING) $$(FILE) $HOME $(EMPTY)|x"}, TimeoutSeconds: 1}
	d := handlerDeps{pod: testPod(), execRunner: func(*spec.Container) Runner { return fake("", 0) }}
	d.newHandler(p, c).Probe(context.Background(), "")
	want := []string{"sh", "-c", "cat /tmp/healthy $(MISSING) $(FILE) $HOME |x"}
	if fmt.Sprint(gotArgv) != fmt.Sprint(want) {
		t.Fatalf("argv %q, want %q", gotArgv, want)
	}
}
