package cri_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/peapod/peapod/internal/testutil"
	"golang.org/x/sys/unix"
)

// streamTimeout bounds each crictl call of the streaming tests.
const streamTimeout = 60 * time.Second

// crictlCmd is a crictl command on the daemon's socket.
func (d *daemon) crictlCmd(ctx context.Context, args ...string) *exec.Cmd {
	ep := "unix://" + d.sock
	return exec.CommandContext(ctx, d.crictl, append([]string{"--runtime-endpoint", ep, "--image-endpoint", ep, "--timeout", "60s"}, args...)...)
}

// TestCrictlStreaming drives the streaming server through crictl: exec -i
// with a piped payload (checksummed inside), exit codes, exec -it on a
// real pty (its size and TERM, input typed, exit code), port-forward to
// busybox httpd with parallel connections, and the errors of an unknown
// or stopped container and an unknown sandbox; leaving nothing.
func TestCrictlStreaming(t *testing.T) {
	d := startDaemon(t)
	d.run("peapod", "image", "import", busyboxTar, "--name", "busybox:latest")
	dir, logDir := t.TempDir(), t.TempDir()
	sb := writeJSON(t, dir, "sandbox.json", fmt.Sprintf(`{
  "metadata": {"name": "stream", "namespace": "default", "attempt": 0, "uid": "uid-stream"},
  "log_directory": %q, "linux": {}}`, logDir))
	web := writeJSON(t, dir, "web.json", `{
  "metadata": {"name": "web"}, "image": {"image": "busybox:latest"},
  "command": ["sh", "-c", "mkdir -p /tmp/www && echo served-by-httpd > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"],
  "log_path": "web.log", "linux": {}}`)
	short := writeJSON(t, dir, "short.json", `{
  "metadata": {"name": "short"}, "image": {"image": "busybox:latest"},
  "command": ["true"], "log_path": "short.log", "linux": {}}`)

	// Warm-up: the bridge and the network's state outlive pods.
	warm := strings.TrimSpace(d.run("crictl", "runp", sb))
	d.run("crictl", "rmp", "-f", warm)
	before := testutil.TakeSnapshot(t, d.roots())

	pod := strings.TrimSpace(d.run("crictl", "runp", sb))
	id := strings.TrimSpace(d.run("crictl", "create", pod, web, sb))
	d.run("crictl", "start", id)
	ctx, cancel := context.WithTimeout(context.Background(), 5*streamTimeout)
	defer cancel()

	t.Run("exec -i", func(t *testing.T) {
		payload := make([]byte, 1<<20)
		if _, err := rand.Read(payload); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(payload)
		cmd := d.crictlCmd(ctx, "exec", "-i", id, "sha256sum")
		cmd.Stdin = bytes.NewReader(payload)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("crictl exec -i sha256sum: %v", err)
		}
		if want := hex.EncodeToString(sum[:]); !strings.HasPrefix(strings.TrimSpace(string(out)), want) {
			t.Errorf("sha256sum of 1 MiB through exec -i = %q, want %s", out, want)
		}
		// stdout and stderr stay apart.
		cmd = d.crictlCmd(ctx, "exec", id, "sh", "-c", "echo to-out; echo to-err >&2")
		var so, se bytes.Buffer
		cmd.Stdout, cmd.Stderr = &so, &se
		if err := cmd.Run(); err != nil || strings.TrimSpace(so.String()) != "to-out" || !strings.Contains(se.String(), "to-err") {
			t.Errorf("exec with both streams: %v, stdout %q, stderr %q", err, so.String(), se.String())
		}
	})

	// crictl exits 1 for any failure; the exit code the streaming
	// protocol carried is in its message.
	t.Run("exit codes", func(t *testing.T) {
		for _, c := range []struct {
			argv []string
			code int
		}{{[]string{"true"}, 0}, {[]string{"sh", "-c", "exit 7"}, 7}, {[]string{"sh", "-c", "exit 42"}, 42}, {[]string{"/no/such/binary"}, 127}, {[]string{"sh", "-c", "kill -9 $$"}, 137}} {
			out, err := d.try(append([]string{"exec", id}, c.argv...)...)
			if c.code == 0 {
				if err != nil {
					t.Errorf("crictl exec %q: %v\n%s", c.argv, err, out)
				}
				continue
			}
			if want := fmt.Sprintf("command terminated with exit code %d", c.code); err == nil || !strings.Contains(out, want) {
				t.Errorf("crictl exec %q: %v\n%s, want %q", c.argv, err, out, want)
			}
		}
	})

	t.Run("exec -it", func(t *testing.T) {
		p := newTestPty(t, 33, 101)
		cmd := d.crictlCmd(ctx, "exec", "-it", id, "sh")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = p.slave, p.slave, p.slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p.write(t, "stty size; echo term=$TERM; tty; exit 5\r")
		p.await(t, regexp.MustCompile(`33 101`))
		p.await(t, regexp.MustCompile(`term=xterm`))
		p.await(t, regexp.MustCompile(`/dev/pts/\d+`))
		err := cmd.Wait()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		if got := cmd.ProcessState.ExitCode(); got == 0 {
			t.Errorf("crictl exec -it of exit 5 exited with 0; terminal: %q", p.output())
		}
		// (crictl's last words may still be in the pty's buffer.)
		p.await(t, regexp.MustCompile(`command terminated with exit code 5`))
	})

	// A client that goes away hangs the terminal up: nothing it ran is
	// left in the container.
	t.Run("exec -it hangup", func(t *testing.T) {
		p := newTestPty(t, 24, 80)
		cmd := d.crictlCmd(ctx, "exec", "-it", id, "sh", "-c", "echo sleeping; exec sleep 1234")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = p.slave, p.slave, p.slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p.await(t, regexp.MustCompile(`sleeping`))
		if out := d.run("crictl", "exec", id, "ps"); !strings.Contains(out, "sleep 1234") {
			t.Fatalf("ps in the container does not show the exec's sleep:\n%s", out)
		}
		// By its pid: the crictl this test started.
		cmd.Process.Kill()
		cmd.Wait()
		deadline := time.Now().Add(10 * time.Second)
		for {
			out := d.run("crictl", "exec", id, "ps")
			if !strings.Contains(out, "sleep 1234") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("10 s after its client was killed, the exec still runs:\n%s", out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("port-forward", func(t *testing.T) {
		cmd := d.crictlCmd(ctx, "port-forward", pod, ":8080")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			// By its pid: the crictl this test started.
			cmd.Process.Kill()
			cmd.Wait()
		}()
		re := regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> 8080`)
		sc := bufio.NewScanner(stdout)
		var port string
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				port = m[1]
				break
			}
		}
		if port == "" {
			t.Fatalf("crictl port-forward never said where it forwards from")
		}
		go io.Copy(io.Discard, stdout)
		// httpd may not listen yet when the container just started:
		// the first request is retried until it answers.
		url := "http://127.0.0.1:" + port + "/index.html"
		get := func() (string, error) {
			c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			resp, err := c.Get(url)
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			return string(b), err
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			body, err := get()
			if err == nil && body == "served-by-httpd\n" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s through port-forward: %q, %v", url, body, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body, err := get()
				if err == nil && body != "served-by-httpd\n" {
					err = fmt.Errorf("body %q", body)
				}
				if err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("parallel GET through port-forward: %v", err)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		stopped := strings.TrimSpace(d.run("crictl", "create", pod, short, sb))
		d.run("crictl", "start", stopped)
		deadline := time.Now().Add(20 * time.Second)
		for d.inspect(stopped).Status.State != "CONTAINER_EXITED" {
			if time.Now().After(deadline) {
				t.Fatalf("container %s never exited", stopped)
			}
			time.Sleep(50 * time.Millisecond)
		}
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"exec", "0123456789abcdef", "true"}, "NotFound"},
			{[]string{"exec", "-i", "0123456789abcdef", "true"}, "NotFound"},
			{[]string{"exec", stopped, "true"}, "FailedPrecondition"},
			{[]string{"exec", "-it", stopped, "true"}, "FailedPrecondition"},
			{[]string{"port-forward", "0123456789abcdef", "8080"}, "NotFound"},
			{[]string{"port-forward", pod, "0:70000"}, ""},
			{[]string{"attach", stopped}, "FailedPrecondition"},
		} {
			out, err := d.try(c.args...)
			if err == nil || !strings.Contains(out, c.want) {
				t.Errorf("crictl %v: %v\n%s, want a failure with %q", c.args, err, out, c.want)
			}
		}
		d.run("crictl", "rm", stopped)
	})

	// The daemon still serves after all of the above.
	if out := d.run("crictl", "exec", id, "echo", "still"); strings.TrimSpace(out) != "still" {
		t.Errorf("exec after the others = %q", out)
	}
	d.run("crictl", "stopp", pod)
	if out, err := d.try("port-forward", pod, "8080"); err == nil || !strings.Contains(out, "FailedPrecondition") {
		t.Errorf("port-forward to a stopped sandbox: %v\n%s, want FailedPrecondition", err, out)
	}
	d.run("crictl", "rmp", "-f", pod)
	testutil.AssertNoLeak(t, before, d.roots())
}

// testPty is a terminal the test owns (as tests/e2e's): crictl runs with
// the slave as its controlling terminal and stdio.
type testPty struct {
	master, slave *os.File
	mu            sync.Mutex
	out           bytes.Buffer
	changed       chan struct{}
}

func newTestPty(t *testing.T, rows, cols uint16) *testPty {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	sfd, _, errno := unix.Syscall(unix.SYS_IOCTL, m.Fd(), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno != 0 {
		t.Fatalf("TIOCGPTPEER: %v", errno)
	}
	p := &testPty{master: m, slave: os.NewFile(sfd, "test pty slave"), changed: make(chan struct{}, 1)}
	if err := unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		b := make([]byte, 4096)
		for {
			n, err := m.Read(b)
			p.mu.Lock()
			p.out.Write(b[:n])
			p.mu.Unlock()
			select {
			case p.changed <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		p.slave.Close()
		<-done // EIO once the last slave holder is gone
		m.Close()
	})
	return p
}

func (p *testPty) write(t *testing.T, s string) {
	t.Helper()
	if _, err := p.master.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

func (p *testPty) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// await waits until the output matches re.
func (p *testPty) await(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.After(streamTimeout)
	for {
		if m := re.FindString(p.output()); m != "" {
			return m
		}
		select {
		case <-p.changed:
		case <-deadline:
			t.Fatalf("terminal never showed %v; it shows %q", re, p.output())
		}
	}
}
