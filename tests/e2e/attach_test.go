package e2e

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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

// ttyShell is a busybox shell on a pty with a stdin to attach to.
func ttyShell(name string) corev1.Container {
	c := ctr(name, "sh")
	c.Stdin, c.TTY = true, true
	return c
}

// typeLine types a command line at the terminal (Enter is CR in raw mode).
func (p *testPty) typeLine(t *testing.T, line string) {
	t.Helper()
	if _, err := p.master.Write([]byte(line + "\r")); err != nil {
		t.Fatal(err)
	}
}

// termios is the terminal's mode, to check it was restored.
func (p *testPty) termios(t *testing.T) *unix.Termios {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(p.slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio
}

func sameMode(a, b *unix.Termios) bool {
	return a.Lflag == b.Lflag && a.Iflag == b.Iflag && a.Oflag == b.Oflag
}

// detach types Ctrl-P Ctrl-Q and waits for peapod to end with 0 and the
// terminal restored to before.
func (p *testPty) detach(t *testing.T, wait func() int, before *unix.Termios) {
	t.Helper()
	p.master.Write([]byte{0x10, 0x11})
	if code := wait(); code != 0 {
		t.Fatalf("attach after Ctrl-P Ctrl-Q: exit %d, want 0; terminal %q", code, p.output())
	}
	p.await(t, regexp.MustCompile(`detached from pod`))
	if after := p.termios(t); !sameMode(before, after) {
		t.Errorf("terminal after detach: lflag %#x iflag %#x oflag %#x, want restored %#x %#x %#x",
			after.Lflag, after.Iflag, after.Oflag, before.Lflag, before.Iflag, before.Oflag)
	}
}

// TestAttachTerminal_12: attach -it to a tty container as a user does:
// type, see the output, detach with Ctrl-P Ctrl-Q, reattach to the same
// process (a shell variable survives), window size at attach and on a
// resize; two attaches at once both see the output; the output is logged
// as the stdout stream.
func TestAttachTerminal_12(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	p := newPod("shell", ttyShell("sh"))
	p.Spec.TerminationGracePeriodSeconds = ptr(int64(1))
	e.runPod(podJSON(p))
	pid := e.inspect("shell").container(t, "sh").PID

	tp := newTestPty(t, 24, 80)
	mode := tp.termios(t)
	wait := e.startOnPty(t, tp, "attach", "-it", "shell")
	tp.await(t, regexp.MustCompile(`If you don't see a command prompt`))
	tp.typeLine(t, `X=kept-$((3*3)); echo "hello-$((6*7))"; tty; echo "TERM=$TERM"; stty size`)
	tp.await(t, regexp.MustCompile(`hello-42`))
	tp.await(t, regexp.MustCompile(`/dev/pts/\d+`))
	tp.await(t, regexp.MustCompile(`TERM=xterm`))
	tp.await(t, regexp.MustCompile(`24 80`))
	tp.detach(t, wait, mode)

	if got := e.inspect("shell").container(t, "sh").PID; got != pid {
		t.Fatalf("after detach the container's process is %d, want %d still running", got, pid)
	}
	t.Run("reattach", func(t *testing.T) {
		e := e.on(t)
		tp := newTestPty(t, 33, 101)
		mode := tp.termios(t)
		wait := e.startOnPty(t, tp, "attach", "-it", "shell")
		tp.await(t, regexp.MustCompile(`If you don't see a command prompt`))
		tp.typeLine(t, `echo "again $X"; stty size`)
		tp.await(t, regexp.MustCompile(`again kept-9`))
		tp.await(t, regexp.MustCompile(`33 101`))
		tp.resize(t, 40, 120)
		re := regexp.MustCompile(`(?m)^40 120`)
		for re.FindString(tp.output()) == "" {
			// The resize travels as a frame after SIGWINCH; the line
			// typed meanwhile may overtake it.
			tp.typeLine(t, "stty size")
			select {
			case <-tp.changed:
			case <-time.After(cliTimeout):
				t.Fatalf("resize never reached the container's pty: %q", tp.output())
			}
		}
		tp.detach(t, wait, mode)
	})
	t.Run("two at once", func(t *testing.T) {
		e := e.on(t)
		a, b := newTestPty(t, 24, 80), newTestPty(t, 24, 80)
		modeA := a.termios(t)
		waitA := e.startOnPty(t, a, "attach", "-it", "shell")
		waitB := e.startOnPty(t, b, "attach", "-it", "shell")
		a.await(t, regexp.MustCompile(`If you don't see a command prompt`))
		b.await(t, regexp.MustCompile(`If you don't see a command prompt`))
		a.typeLine(t, `echo "from-a $((2*3))"`)
		a.await(t, regexp.MustCompile(`from-a 6`))
		b.await(t, regexp.MustCompile(`from-a 6`))
		b.typeLine(t, `echo "from-b $((2*4))"`)
		a.await(t, regexp.MustCompile(`from-b 8`))
		b.await(t, regexp.MustCompile(`from-b 8`))
		a.detach(t, waitA, modeA)
		// The other attach is unaffected by the first one's detach.
		b.typeLine(t, `echo "still-b $((3*4))"`)
		b.await(t, regexp.MustCompile(`still-b 12`))
		b.master.Write([]byte{0x10, 0x11})
		if code := waitB(); code != 0 {
			t.Errorf("second attach: exit %d", code)
		}
	})
	t.Run("terminal restored on SIGTERM", func(t *testing.T) {
		e := e.on(t)
		tp := newTestPty(t, 24, 80)
		mode := tp.termios(t)
		ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, e.bin, e.args("attach", "-it", "shell")...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = tp.slave, tp.slave, tp.slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		tp.await(t, regexp.MustCompile(`If you don't see a command prompt`))
		if raw := tp.termios(t); raw.Lflag&(unix.ECHO|unix.ICANON) != 0 {
			t.Errorf("terminal not raw while attached: lflag %#x", raw.Lflag)
		}
		cmd.Process.Signal(unix.SIGTERM)
		cmd.Wait()
		if code := cmd.ProcessState.ExitCode(); ctx.Err() != nil || code != 143 {
			t.Fatalf("attach on SIGTERM: exit %d (timed out: %v)", code, ctx.Err() != nil)
		}
		if after := tp.termios(t); !sameMode(mode, after) {
			t.Errorf("terminal after SIGTERM: lflag %#x, want restored %#x", after.Lflag, mode.Lflag)
		}
	})
	t.Run("logged as stdout", func(t *testing.T) {
		e := e.on(t)
		if out := e.mustRun("logs", "shell"); !strings.Contains(out, "hello-42") {
			t.Errorf("logs do not show the terminal's output:\n%s", out)
		}
		logPath := e.inspect("shell").container(t, "sh").LogPath
		b, err := os.ReadFile(logPath)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if f := strings.SplitN(l, " ", 3); len(f) < 2 || f[1] != "stdout" {
				t.Errorf("log line %q: want the stdout stream only, as the CRI logs a tty", l)
			}
		}
	})
	t.Run("-t without a terminal", func(t *testing.T) {
		e := e.on(t)
		_, stderr, code := e.run("", "attach", "-t", "shell")
		if code != 1 || !strings.Contains(stderr, "Unable to use a TTY - input is not a terminal") {
			t.Errorf("attach -t with a pipe: exit %d, stderr %q", code, stderr)
		}
	})
	if got := e.inspect("shell").container(t, "sh").PID; got != pid {
		t.Errorf("the container's process changed from %d to %d", pid, got)
	}
	e.mustRun("rm", "-f", "shell")
	e.assertNoLeak(before)
}

// TestAttachTerminalInjection_12: what a process pushes into its terminal
// with TIOCSTI lands in the container's own pty, never in the terminal
// attach was typed in.
func TestAttachTerminalInjection_12(t *testing.T) {
	legacyTIOCSTI(t)
	bin := buildInject(t)
	e := newEnv(t)
	c := ttyShell("sh")
	c.VolumeMounts = []corev1.VolumeMount{{Name: "bin", MountPath: "/inject", ReadOnly: true}}
	p := newPod("inj", c)
	p.Spec.Volumes = []corev1.Volume{{Name: "bin", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: bin}}}}
	e.runPod(podJSON(p))
	for _, target := range []string{"", "/dev/tty"} {
		t.Run("inject "+target, func(t *testing.T) {
			e := e.on(t)
			tp := newTestPty(t, 24, 80)
			mode := tp.termios(t)
			wait := e.startOnPty(t, tp, "attach", "-it", "inj")
			tp.await(t, regexp.MustCompile(`If you don't see a command prompt`))
			tp.typeLine(t, "rm -f /tmp/PWNED; /inject/inject "+target)
			tp.await(t, regexp.MustCompile(`(?m)^injected`))
			// The injected line is the shell's next input, read from the
			// container's pty before this one.
			tp.typeLine(t, "test -e /tmp/PWNED && echo landed-$((40+2))")
			tp.await(t, regexp.MustCompile(`landed-42`))
			tp.detach(t, wait, mode)
			if n := tp.queued(t); n != 0 {
				b := make([]byte, n)
				tp.slave.Read(b)
				t.Fatalf("%d bytes %q reached the attaching terminal's input from inside the container", n, b)
			}
		})
	}
}

// attachProc is `peapod attach` without a terminal, its output collected.
type attachProc struct {
	cmd     *exec.Cmd
	mu      sync.Mutex
	out     bytes.Buffer
	errOut  bytes.Buffer
	changed chan struct{}
	done    chan struct{}
}

type lockedWriter struct {
	p *attachProc
	b *bytes.Buffer
}

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	w.b.Write(b)
	w.p.mu.Unlock()
	select {
	case w.p.changed <- struct{}{}:
	default:
	}
	return len(b), nil
}

// startAttach runs peapod with stdin and args.
func (e *env) startAttach(t *testing.T, stdin io.Reader, args ...string) *attachProc {
	t.Helper()
	p := &attachProc{changed: make(chan struct{}, 1), done: make(chan struct{})}
	p.cmd = exec.Command(e.bin, e.args(args...)...)
	p.cmd.Stdin = stdin
	p.cmd.Stdout, p.cmd.Stderr = lockedWriter{p, &p.out}, lockedWriter{p, &p.errOut}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done })
	return p
}

func (p *attachProc) stdout() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// await waits until stdout contains s.
func (p *attachProc) await(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(cliTimeout)
	for !strings.Contains(p.stdout(), s) {
		select {
		case <-p.changed:
		case <-p.done:
			if !strings.Contains(p.stdout(), s) {
				p.mu.Lock()
				defer p.mu.Unlock()
				t.Fatalf("attach ended without %q: stdout %q stderr %q", s, p.out.String(), p.errOut.String())
			}
		case <-deadline:
			t.Fatalf("attach never printed %q: %q", s, p.stdout())
		}
	}
}

// interrupt sends Ctrl-C's SIGINT and returns the exit code.
func (p *attachProc) interrupt(t *testing.T) int {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(cliTimeout):
		t.Fatal("attach did not end on SIGINT")
	}
	return p.cmd.ProcessState.ExitCode()
}

// TestAttachStdin_12: attach -i to containers with stdin and no tty:
// piping 1 MiB in byte for byte; stdinOnce closing the stdin when the
// first attach ends (and refusing a second); a plain stdin staying open
// across attaches; the errors of attaching what cannot be.
func TestAttachStdin_12(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	sum := shell("sum", `md5sum; echo "sum-done"`)
	sum.Stdin, sum.StdinOnce = true, true
	once := shell("once", `while read l; do echo "got $l"; done; echo "stdin-closed"; exec sleep 1000`)
	once.Stdin, once.StdinOnce = true, true
	keep := shell("keep", `while read l; do echo "got $l"; done; echo "eof"; exec sleep 1000`)
	keep.Stdin = true
	plain := ctr("plain", "sleep", "1000")
	p := newPod("stdin", sum, once, keep, plain)
	p.Spec.RestartPolicy = corev1.RestartPolicyNever
	p.Spec.TerminationGracePeriodSeconds = ptr(int64(1))
	e.runPod(podJSON(p))

	t.Run("1 MiB through stdinOnce", func(t *testing.T) {
		e := e.on(t)
		data := make([]byte, 1<<20)
		rand.Read(data)
		h := md5.Sum(data)
		// md5sum reads to EOF, which comes only when stdinOnce closes the
		// stdin after our input ended; then the process exits, and so
		// does the attach.
		out, stderr, code := e.run(string(data), "attach", "-i", "stdin", "-c", "sum")
		if code != 0 || !strings.Contains(out, hex.EncodeToString(h[:])) || !strings.Contains(out, "sum-done") {
			t.Errorf("attach -i: exit %d, stdout %q (want md5 %x), stderr %q", code, out, h, stderr)
		}
	})
	t.Run("stdinOnce", func(t *testing.T) {
		e := e.on(t)
		// An *os.File: exec.Cmd's Wait would wait for its copier of any
		// other reader, and this input stays open past the attach.
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		defer w.Close()
		a := e.startAttach(t, r, "attach", "-i", "stdin", "-c", "once")
		w.Write([]byte("one\n"))
		a.await(t, "got one")
		w.Write([]byte("two\n"))
		a.await(t, "got two")
		// Ending the attach (without closing our input) closes the stdin.
		a.interrupt(t)
		w.Close()
		e.awaitLog("stdin", "once", "stdin-closed")
		_, stderr, code := e.run("late\n", "attach", "-i", "stdin", "-c", "once")
		if code != 1 || !strings.Contains(stderr, `the stdin of container "once" is closed: stdinOnce closed it when the first attach ended`) {
			t.Errorf("second attach -i to a stdinOnce container: exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("stdin stays open without stdinOnce", func(t *testing.T) {
		e := e.on(t)
		a := e.startAttach(t, strings.NewReader("first\n"), "attach", "-i", "stdin", "-c", "keep")
		a.await(t, "got first")
		a.interrupt(t)
		b := e.startAttach(t, strings.NewReader("second\n"), "attach", "-i", "stdin", "-c", "keep")
		b.await(t, "got second")
		b.interrupt(t)
		if strings.Contains(b.stdout(), "eof") {
			t.Errorf("the stdin of a container without stdinOnce closed: %q", b.stdout())
		}
	})
	t.Run("errors", func(t *testing.T) {
		e := e.on(t)
		for _, tt := range []struct {
			args []string
			want string
		}{
			{[]string{"attach", "-i", "stdin", "-c", "plain"}, `container "plain" was not started with stdin: true, so it has no stdin to attach to`},
			{[]string{"attach", "stdin", "-c", "nope"}, `container "nope" not found`},
			{[]string{"attach", "nopod"}, `not found`},
			{[]string{"attach", "-i", "stdin", "-c", "sum"}, `container "sum" is not running`},
		} {
			_, stderr, code := e.run("x\n", tt.args...)
			if code != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("%v: exit %d, stderr %q; want 1 and %q", tt.args, code, stderr, tt.want)
			}
		}
		// -t on a container without a tty: kubectl's warning, then the
		// attach goes on without one.
		tp := newTestPty(t, 24, 80)
		wait := e.startOnPty(t, tp, "attach", "-it", "stdin", "-c", "keep")
		tp.await(t, regexp.MustCompile(`Unable to use a TTY - container keep did not allocate one`))
		tp.master.Write([]byte("via-tty\n"))
		tp.await(t, regexp.MustCompile(`got via-tty`))
		tp.master.Write([]byte{3}) // not raw: ^C interrupts peapod, not the container
		if code := wait(); code != 130 {
			t.Errorf("attach -it to a non-tty container after ^C: exit %d, want 130", code)
		}
	})
	e.mustRun("rm", "-f", "stdin")
	e.assertNoLeak(before)
}

// TestAttachTerminalStdinOnce_12: a tty container with stdinOnce hangs up
// when the first attach ends (as containerd closes the console): its shell
// reads EOF and exits, and a restart brings a fresh terminal to attach to.
func TestAttachTerminalStdinOnce_12(t *testing.T) {
	e := newEnv(t)
	c := ttyShell("sh")
	c.StdinOnce = true
	e.runPod(podJSON(newPod("once", c)))
	tp := newTestPty(t, 24, 80)
	mode := tp.termios(t)
	wait := e.startOnPty(t, tp, "attach", "-it", "once")
	tp.await(t, regexp.MustCompile(`If you don't see a command prompt`))
	tp.typeLine(t, `echo "first-$((1+1))"`)
	tp.await(t, regexp.MustCompile(`first-2`))
	tp.detach(t, wait, mode)
	e.waitPod("once", waitTimeout, func(p *corev1.Pod) (bool, string) {
		cs := containerStatus(t, p, "sh")
		return cs.RestartCount >= 1 && cs.State.Running != nil, fmt.Sprintf("%+v", cs)
	})
	tp2 := newTestPty(t, 24, 80)
	mode = tp2.termios(t)
	wait = e.startOnPty(t, tp2, "attach", "-it", "once")
	tp2.await(t, regexp.MustCompile(`If you don't see a command prompt`))
	tp2.typeLine(t, `echo "second-$((2+1))"`)
	tp2.await(t, regexp.MustCompile(`second-3`))
	tp2.detach(t, wait, mode)
}

// TestAttachAfterSupervisorLoss_12: the pty master lives in the supervisor
// only, so losing the supervisor hangs the terminal up (documented): a
// shell reads EOF and exits, and its restart (after ContainerStatusUnknown)
// brings a new terminal that attach reaches; a process that survives the
// hang-up is adopted with a TerminalLost event, and attach says why it
// cannot reach it.
func TestAttachAfterSupervisorLoss_12(t *testing.T) {
	e := newEnv(t)
	// sleep is its PID namespace's init: the hang-up's SIGHUP does not
	// kill it, and it never reads its terminal.
	deaf := ctr("deaf", "sleep", "1000")
	deaf.Stdin, deaf.TTY = true, true
	e.runPod(podJSON(newPod("lost", ttyShell("sh"), deaf)))
	v := e.inspect("lost")
	deafPID := v.container(t, "deaf").PID
	killSupervisor(t, v.SupervisorPID)
	e.waitEvents("lost", "TerminalLost")
	e.waitPod("lost", waitTimeout, func(p *corev1.Pod) (bool, string) {
		cs := containerStatus(t, p, "sh")
		return cs.RestartCount >= 1 && cs.State.Running != nil, fmt.Sprintf("%+v", cs)
	})
	tp := newTestPty(t, 24, 80)
	mode := tp.termios(t)
	wait := e.startOnPty(t, tp, "attach", "-it", "lost", "-c", "sh")
	tp.await(t, regexp.MustCompile(`If you don't see a command prompt`))
	tp.typeLine(t, `echo "back-$((4+4))"`)
	tp.await(t, regexp.MustCompile(`back-8`))
	tp.detach(t, wait, mode)

	if got := e.inspect("lost").container(t, "deaf").PID; got != deafPID {
		t.Fatalf("deaf container's process %d, want %d adopted", got, deafPID)
	}
	_, stderr, code := e.run("", "attach", "lost", "-c", "deaf")
	if code != 1 || !strings.Contains(stderr, `container "deaf" cannot be attached: its terminal was hung up when its supervisor was lost`) {
		t.Errorf("attach to an adopted tty container: exit %d, stderr %q", code, stderr)
	}
}

// TestRunAttached_12: `run -it` runs the pod in the foreground attached to
// its tty container; the shell's exit ends it with the shell's exit code
// and removes the pod, as `docker run -it --rm`.
func TestRunAttached_12(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	p := newPod("fgtty", ttyShell("sh"))
	p.Spec.RestartPolicy = corev1.RestartPolicyNever
	p.Spec.TerminationGracePeriodSeconds = ptr(int64(1))
	file := filepath.Join(t.TempDir(), "pod.json")
	if err := os.WriteFile(file, []byte(podJSON(p)), 0o644); err != nil {
		t.Fatal(err)
	}
	tp := newTestPty(t, 24, 80)
	mode := tp.termios(t)
	wait := e.startOnPty(t, tp, "run", "-it", "-f", file)
	tp.await(t, regexp.MustCompile(`If you don't see a command prompt`))
	tp.typeLine(t, `echo "in-run-$((5*5))"; exit 3`)
	tp.await(t, regexp.MustCompile(`in-run-25`))
	if code := wait(); code != 3 {
		t.Errorf("run -it: exit %d, want the shell's 3; terminal %q", code, tp.output())
	}
	if after := tp.termios(t); !sameMode(mode, after) {
		t.Errorf("terminal not restored after run -it")
	}
	if ps := e.mustRun("ps"); strings.Contains(ps, "fgtty") {
		t.Errorf("pod still listed after run -it ended:\n%s", ps)
	}
	e.assertNoLeak(before)

	t.Run("flag errors", func(t *testing.T) {
		e := e.on(t)
		for _, tt := range []struct {
			args []string
			want string
		}{
			{[]string{"run", "-t", "-f", file}, "-i/--stdin is required for containers with -t/--tty=true"},
			{[]string{"run", "-it", "-d", "-f", file}, "-d cannot be combined with -i or -t"},
			{[]string{"run", "-it", "-f", file}, "Unable to use a TTY - input is not a terminal"},
			{[]string{"run", "-i", "-f", "-"}, "-f - cannot be combined with -i"},
		} {
			_, stderr, code := e.run("", tt.args...)
			if code != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("%v: exit %d, stderr %q; want 1 and %q", tt.args, code, stderr, tt.want)
			}
		}
		plain := newPod("plain", ctr("c", "sleep", "1"))
		_, stderr, code := e.run(podJSON(plain), "run", "-i", "-f", writeTemp(t, podJSON(plain)))
		if code != 1 || !strings.Contains(stderr, "run -i: no container of the manifest has stdin: true") {
			t.Errorf("run -i without a stdin container: exit %d, stderr %q", code, stderr)
		}
		if ps := e.mustRun("ps"); strings.Contains(ps, "plain") {
			t.Errorf("a refused run -i created its pod:\n%s", ps)
		}
	})
}

func writeTemp(t *testing.T, s string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "pod.json")
	if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestDefaultContainer_12: without -c, exec, attach and logs take the
// annotation's container, else the first, and say so as kubectl does.
func TestDefaultContainer_12(t *testing.T) {
	e := newEnv(t)
	two := func(name string) *corev1.Pod {
		a, b := shell("a", `echo "$WHO"; exec sleep 1000`), shell("b", `echo "$WHO"; exec sleep 1000`)
		a.Env = []corev1.EnvVar{{Name: "WHO", Value: "i-am-a"}}
		b.Env = []corev1.EnvVar{{Name: "WHO", Value: "i-am-b"}}
		return newPod(name, a, b)
	}
	e.runPod(podJSON(two("first")))
	annotated := two("annotated")
	annotated.Annotations = map[string]string{"kubectl.kubernetes.io/default-container": "b"}
	e.runPod(podJSON(annotated))
	for _, tt := range []struct {
		pod, want, note string
	}{
		{"first", "i-am-a", `Defaulted container "a" out of: a, b`},
		{"annotated", "i-am-b", ""},
	} {
		for _, args := range [][]string{{"logs", tt.pod}, {"exec", tt.pod, "--", "sh", "-c", "echo $WHO"}} {
			var out, stderr string
			deadline := time.Now().Add(waitTimeout)
			for {
				var code int
				out, stderr, code = e.run("", args...)
				if code != 0 {
					t.Fatalf("%v: exit %d: %s", args, code, stderr)
				}
				if strings.Contains(out, tt.want) || time.Now().After(deadline) {
					break
				}
				time.Sleep(pollInterval) // logs: the echo may not be written yet
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("%v printed %q, want the output of the container with %q", args, out, tt.want)
			}
			if tt.note != "" && strings.TrimSpace(stderr) != tt.note || tt.note == "" && stderr != "" {
				t.Errorf("%v: stderr %q, want %q", args, stderr, tt.note)
			}
		}
	}
	// attach picks the same container: output only, interrupted.
	a := e.startAttach(t, nil, "attach", "first")
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	for !strings.Contains(a.errOutput(), `Defaulted container "a" out of: a, b`) && ctx.Err() == nil {
		select {
		case <-a.changed:
		case <-ctx.Done():
		}
	}
	if !strings.Contains(a.errOutput(), `Defaulted container "a" out of: a, b`) {
		t.Errorf("attach without -c: stderr %q", a.errOutput())
	}
	if code := a.interrupt(t); code != 130 {
		t.Errorf("attach interrupted: exit %d, want 130", code)
	}
	if err := ctx.Err(); errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("timed out")
	}
}

func (p *attachProc) errOutput() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.errOut.String()
}

// awaitLog waits until the container's log shows s.
func (e *env) awaitLog(pod, container, s string) {
	e.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		out := e.mustRun("logs", pod, "-c", container)
		if strings.Contains(out, s) {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("log of %s/%s never showed %q:\n%s", pod, container, s, out)
		}
		time.Sleep(pollInterval) // the CLI has no event for a log line
	}
}
