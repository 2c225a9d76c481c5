package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"golang.org/x/sys/unix"
)

// injectSource is a static helper that pushes "touch /tmp/PWNED\n" into the
// input queue of the terminal on its stdin (or the file named by its
// argument: /dev/tty is the controlling terminal) with TIOCSTI, byte by byte:
// the container escape of a terminal handed to a container process.
const injectSource = `package main

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

func main() {
	fd := uintptr(0)
	if len(os.Args) > 1 {
		f, err := os.OpenFile(os.Args[1], os.O_RDWR, 0)
		if err != nil {
			fmt.Println(err)
			os.Exit(3)
		}
		fd = f.Fd()
	}
	for _, b := range []byte("touch /tmp/PWNED\n") {
		c := b
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCSTI, uintptr(unsafe.Pointer(&c))); e != 0 {
			fmt.Println("TIOCSTI:", e)
			os.Exit(3)
		}
	}
	fmt.Println("injected")
}
`

// buildInject builds injectSource into a fresh directory and returns it.
func buildInject(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(injectSource), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module inject\n\ngo 1.21\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := shortTempDir(t)
	cmd := exec.Command("go", "build", "-buildvcs=false", "-o", filepath.Join(bin, "inject"), ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("failed to build the TIOCSTI helper: %v\n%s", err, out)
	}
	return bin
}

// testPty is a terminal the test owns: peapod runs with the slave as its
// controlling terminal and stdio, as in a user's shell.
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
	p.resize(t, rows, cols)
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

func (p *testPty) resize(t *testing.T, rows, cols uint16) {
	t.Helper()
	if err := unix.IoctlSetWinsize(int(p.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
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
	deadline := time.After(cliTimeout)
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

// queued is how many bytes wait in the slave's input queue: what a shell
// reading this terminal would run next.
func (p *testPty) queued(t *testing.T) int {
	t.Helper()
	n, err := unix.IoctlGetInt(int(p.slave.Fd()), unix.TIOCINQ)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// startOnPty runs peapod with the pty as controlling terminal and stdio.
func (e *env) startOnPty(t *testing.T, p *testPty, args ...string) (wait func() int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	cmd := exec.CommandContext(ctx, e.bin, e.args(args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = p.slave, p.slave, p.slave
	cmd.Env = append(os.Environ(), "TERM=xterm-test")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	return func() int {
		defer cancel()
		err := cmd.Wait()
		var ee *exec.ExitError
		if ctx.Err() != nil {
			t.Fatalf("peapod %v timed out; terminal: %q", args, p.output())
		}
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode()
	}
}

// legacyTIOCSTI makes sure TIOCSTI is enabled, as on the machine of the
// report, so the injection test tries the real escape.
func legacyTIOCSTI(t *testing.T) {
	const knob = "/proc/sys/dev/tty/legacy_tiocsti"
	b, err := os.ReadFile(knob)
	if errors.Is(err, os.ErrNotExist) {
		return // before 6.2: always enabled
	}
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(b)) == "1" {
		return
	}
	if err := os.WriteFile(knob, []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.WriteFile(knob, b, 0o644) })
}

// TestExecTerminalInjection_12 is the regression test of the TIOCSTI
// container escape: whatever a process in the container pushes into its
// terminal's input queue must never reach the terminal peapod exec was
// typed in.
func TestExecTerminalInjection_12(t *testing.T) {
	legacyTIOCSTI(t)
	bin := buildInject(t)
	e := newEnv(t)
	c := ctr("app", "sleep", "1000")
	c.VolumeMounts = []corev1.VolumeMount{{Name: "bin", MountPath: "/inject", ReadOnly: true}}
	p := newPod("inj", c)
	p.Spec.Volumes = []corev1.Volume{{Name: "bin", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: bin}}}}
	e.runPod(podJSON(p))
	for _, tt := range []struct {
		flags  []string
		target string
	}{
		{flags: []string{"-it"}}, {flags: []string{"-t"}}, {flags: []string{"-i"}}, {},
		{flags: []string{"-it"}, target: "/dev/tty"}, {target: "/dev/tty"},
	} {
		name := strings.Join(append(append([]string{"exec"}, tt.flags...), tt.target), " ")
		t.Run(strings.TrimSpace(name), func(t *testing.T) {
			e := e.on(t)
			tp := newTestPty(t, 24, 80)
			args := append(append([]string{"exec"}, tt.flags...), "inj", "--", "/inject/inject")
			if tt.target != "" {
				args = append(args, tt.target)
			}
			code := e.startOnPty(t, tp, args...)()
			if n := tp.queued(t); n != 0 {
				b := make([]byte, n)
				tp.slave.Read(b)
				t.Fatalf("%d bytes %q reached the caller's terminal input from inside the container (exit %d, terminal %q)", n, b, code, tp.output())
			}
			if strings.Contains(strings.Join(tt.flags, ""), "t") {
				// Inside its own pty the helper may inject: into itself.
				tp.await(t, regexp.MustCompile("injected"))
				if code != 0 {
					t.Errorf("helper in its own pty: exit %d, terminal %q; want it to inject into the container's pty", code, tp.output())
				}
			}
		})
	}
}

// TestExecTerminal_12 drives `peapod exec -it` as a user at a terminal does.
func TestExecTerminal_12(t *testing.T) {
	e := newEnv(t)
	e.runPod(podJSON(newPod("term", ctr("app", "sleep", "1000"))))

	t.Run("tty and size", func(t *testing.T) {
		e := e.on(t)
		tp := newTestPty(t, 33, 101)
		wait := e.startOnPty(t, tp, "exec", "-it", "term", "--", "sh", "-c",
			`tty; test -c "$(tty)" && echo exists; echo "TERM=$TERM"; while read x; do echo "size $(stty size)"; done`)
		tp.await(t, regexp.MustCompile(`(?m)^/dev/pts/\d+\r?\nexists`))
		tp.await(t, regexp.MustCompile(`TERM=xterm-test`))
		tp.master.Write([]byte("a\r"))
		tp.await(t, regexp.MustCompile(`size 33 101`))
		// The kernel sends SIGWINCH to peapod; the line typed after it may
		// overtake the resize, so type until it shows.
		tp.resize(t, 40, 120)
		re := regexp.MustCompile(`size 40 120`)
		for re.FindString(tp.output()) == "" {
			tp.master.Write([]byte("a\r"))
			select {
			case <-tp.changed:
			case <-time.After(cliTimeout):
				t.Fatalf("resize never reached the container pty: %q", tp.output())
			}
		}
		tp.master.Write([]byte{4}) // ^D: EOF ends the loop
		if code := wait(); code != 0 {
			t.Errorf("exit code %d, want 0; terminal %q", code, tp.output())
		}
	})
	t.Run("exit code", func(t *testing.T) {
		e := e.on(t)
		tp := newTestPty(t, 24, 80)
		if code := e.startOnPty(t, tp, "exec", "-it", "term", "--", "sh", "-c", "exit 42")(); code != 42 {
			t.Errorf("exit code %d, want 42; terminal %q", code, tp.output())
		}
	})
	t.Run("ctrl-c", func(t *testing.T) {
		e := e.on(t)
		tp := newTestPty(t, 24, 80)
		wait := e.startOnPty(t, tp, "exec", "-it", "term", "--", "sh", "-c", "echo ready; sleep 100")
		tp.await(t, regexp.MustCompile(`ready`))
		tp.master.Write([]byte{3})
		if code := wait(); code != 130 {
			t.Errorf("exit code %d after ^C, want 130 (SIGINT inside); terminal %q", code, tp.output())
		}
	})
	t.Run("terminal restored on SIGTERM", func(t *testing.T) {
		e := e.on(t)
		tp := newTestPty(t, 24, 80)
		before, err := unix.IoctlGetTermios(int(tp.slave.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, e.bin, e.args("exec", "-it", "term", "--", "sh", "-c", "echo ready; sleep 100")...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = tp.slave, tp.slave, tp.slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		tp.await(t, regexp.MustCompile("ready"))
		raw, err := unix.IoctlGetTermios(int(tp.slave.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		if raw.Lflag&(unix.ECHO|unix.ICANON) != 0 {
			t.Errorf("terminal not in raw mode during exec -it: lflag %#x", raw.Lflag)
		}
		cmd.Process.Signal(unix.SIGTERM)
		cmd.Wait()
		if ctx.Err() != nil {
			t.Fatalf("peapod did not end on SIGTERM; terminal %q", tp.output())
		}
		after, err := unix.IoctlGetTermios(int(tp.slave.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		if after.Lflag != before.Lflag || after.Iflag != before.Iflag || after.Oflag != before.Oflag {
			t.Errorf("terminal after SIGTERM: lflag %#x iflag %#x oflag %#x, want restored %#x %#x %#x",
				after.Lflag, after.Iflag, after.Oflag, before.Lflag, before.Iflag, before.Oflag)
		}
	})
	t.Run("stdin pipe", func(t *testing.T) {
		e := e.on(t)
		data := make([]byte, 1<<20)
		rand.Read(data)
		out, stderr, code := e.run(string(data), "exec", "-i", "term", "--", "cat")
		if code != 0 || out != string(data) {
			t.Errorf("exec -i cat: exit %d, %d bytes back of %d (equal: %v); stderr %s", code, len(out), len(data), out == string(data), stderr)
		}
		if out, _, _ := e.run("x", "exec", "term", "--", "cat"); out != "" {
			t.Errorf("exec without -i read %q from stdin, want /dev/null", out)
		}
	})
	t.Run("-t without terminal", func(t *testing.T) {
		e := e.on(t)
		_, stderr, code := e.run("", "exec", "-t", "term", "--", "true")
		if code != 1 || !strings.Contains(stderr, "Unable to use a TTY - input is not a terminal") {
			t.Errorf("exec -t with a pipe on stdin: exit %d, stderr %q; want 1 and kubectl's message", code, stderr)
		}
	})
}

// TestExecTerminalTamperedPtmx_12: /dev/ptmx is the container's to change.
// A symlink climbing out of its root must not reach the host's /dev (the
// pty would come from the host's devpts instance), and a FIFO or another
// device there must be refused, not opened or waited on.
func TestExecTerminalTamperedPtmx_12(t *testing.T) {
	e := newEnv(t)
	e.runPod(podJSON(newPod("tamper", ctr("app", "sleep", "1000"))))
	for _, tt := range []struct{ name, script, want string }{
		// Resolved against our root, /dev/ptmx would be the host's.
		{"absolute symlink", "ln -s /dev/ptmx /dev/ptmx", "too many levels of symbolic links"},
		{"fifo", "mkfifo /dev/ptmx", "not a pty multiplexer"},
		{"other device", "mknod /dev/ptmx c 1 3", "not a pty multiplexer"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := e.on(t)
			e.mustExec("tamper", "app", "sh", "-c", "rm -f /dev/ptmx && "+tt.script)
			tp := newTestPty(t, 24, 80)
			code := e.startOnPty(t, tp, "exec", "-it", "tamper", "--", "true")()
			// peapod's message reaches the test pty asynchronously.
			tp.await(t, regexp.MustCompile(regexp.QuoteMeta(tt.want)))
			if code != 1 {
				t.Errorf("exec -it with a tampered /dev/ptmx: exit %d, want 1; terminal %q", code, tp.output())
			}
		})
	}
	t.Run("absolute symlink resolved in the root", func(t *testing.T) {
		e := e.on(t)
		e.mustExec("tamper", "app", "sh", "-c", "rm -f /dev/ptmx && ln -s /dev/pts/ptmx /dev/ptmx")
		tp := newTestPty(t, 24, 80)
		code := e.startOnPty(t, tp, "exec", "-it", "tamper", "--", "sh", "-c", `tty; test -c "$(tty)" && echo exists`)()
		tp.await(t, regexp.MustCompile(`(?m)^/dev/pts/\d+\r?\nexists`))
		if code != 0 {
			t.Errorf("exit %d, want 0; terminal %q", code, tp.output())
		}
	})
}
