package cri_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/peapod/peapod/internal/testutil"
	"golang.org/x/sys/unix"
)

// supervisorPID is the pid of the supervisor of sandbox id, from
// `crictl inspectp`'s verbose info.
func (d *daemon) supervisorPID(id string) int {
	d.t.Helper()
	var out struct {
		Info struct {
			SupervisorPID int `json:"supervisorPid"`
		} `json:"info"`
	}
	raw := d.run("crictl", "inspectp", "-o", "json", id)
	if err := json.Unmarshal([]byte(raw), &out); err != nil || out.Info.SupervisorPID <= 0 {
		d.t.Fatalf("crictl inspectp %s shows no supervisor pid (%v):\n%s", id, err, raw)
	}
	return out.Info.SupervisorPID
}

// awaitContainerState waits until crictl inspect shows container id in state.
func (d *daemon) awaitContainerState(id, state string) {
	d.t.Helper()
	deadline := time.Now().Add(streamTimeout)
	for {
		got := d.inspect(id).Status.State
		if got == state {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("container %s is %s, never %s", id, got, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCrictlAttach drives `crictl attach` against `peapod cri`: -it on a
// real pty to a tty container (its size, a resize, input), a crictl
// killed mid-attach (the container runs on, neither the supervisor nor
// the daemon holds a descriptor of it), -i with piped input, a
// stdin_once container ended by its input's end, and the errors of what
// cannot be attached to; leaving nothing.
func TestCrictlAttach(t *testing.T) {
	d := startDaemon(t)
	d.run("peapod", "image", "import", busyboxTar, "--name", "busybox:latest")
	dir, logDir := t.TempDir(), t.TempDir()
	sb := writeJSON(t, dir, "sandbox.json", fmt.Sprintf(`{
  "metadata": {"name": "attach", "namespace": "default", "attempt": 0, "uid": "uid-attach"},
  "log_directory": %q, "linux": {}}`, logDir))
	tty := writeJSON(t, dir, "tty.json", `{
  "metadata": {"name": "tty"}, "image": {"image": "busybox:latest"},
  "command": ["sh"], "tty": true, "stdin": true, "log_path": "tty.log", "linux": {}}`)
	echo := writeJSON(t, dir, "echo.json", `{
  "metadata": {"name": "echo"}, "image": {"image": "busybox:latest"},
  "command": ["sh", "-c", "while read line; do echo out:$line; done"], "stdin": true, "log_path": "echo.log", "linux": {}}`)
	once := writeJSON(t, dir, "once.json", `{
  "metadata": {"name": "once"}, "image": {"image": "busybox:latest"},
  "command": ["sh", "-c", "cat; echo after-eof"], "stdin": true, "stdin_once": true, "log_path": "once.log", "linux": {}}`)

	warm := strings.TrimSpace(d.run("crictl", "runp", sb))
	d.run("crictl", "rmp", "-f", warm)
	before := testutil.TakeSnapshot(t, d.roots())

	pod := strings.TrimSpace(d.run("crictl", "runp", sb))
	// A failed step must not leave the sandbox running (the flow's own
	// rmp comes last; removing what is gone succeeds).
	t.Cleanup(func() { d.try("rmp", "-f", pod) })
	sup := d.supervisorPID(pod)
	start := func(cfg string) string {
		id := strings.TrimSpace(d.run("crictl", "create", pod, cfg, sb))
		d.run("crictl", "start", id)
		d.awaitContainerState(id, "CONTAINER_RUNNING")
		return id
	}
	ttyID, echoID := start(tty), start(echo)
	fds, daemonFDs := fdCount(t, sup), fdCount(t, d.cmd.Process.Pid)
	ctx, cancel := context.WithTimeout(context.Background(), 5*streamTimeout)
	defer cancel()

	t.Run("attach -it", func(t *testing.T) {
		p := newTestPty(t, 33, 101)
		cmd := d.crictlCmd(ctx, "attach", "-it", ttyID)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = p.slave, p.slave, p.slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p.write(t, "stty size; echo term=$TERM; tty\r")
		p.await(t, regexp.MustCompile(`33 101`))
		p.await(t, regexp.MustCompile(`term=xterm`))
		p.await(t, regexp.MustCompile(`/dev/pts/\d+`))
		// The user's window grows: crictl gets SIGWINCH and sends the size.
		if err := unix.IoctlSetWinsize(int(p.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 50, Col: 132}); err != nil {
			t.Fatal(err)
		}
		p.write(t, `while [ "$(stty size)" != "50 132" ]; do sleep 0.05; done; echo resized-$((6*7))`+"\r")
		p.await(t, regexp.MustCompile(`resized-42`))
		if n := fdCount(t, sup); n <= fds {
			t.Errorf("the supervisor has %d descriptors with crictl attached, %d before", n, fds)
		}
		// crictl dies without a word (by its pid: the one this test started).
		cmd.Process.Kill()
		cmd.Wait()
		deadline := time.Now().Add(streamTimeout)
		for fdCount(t, sup) > fds {
			if time.Now().After(deadline) {
				t.Fatalf("the supervisor has %d descriptors after crictl was killed, %d before", fdCount(t, sup), fds)
			}
			time.Sleep(20 * time.Millisecond)
		}
		// The daemon let go of the client's connection and the attach.
		for fdCount(t, d.cmd.Process.Pid) > daemonFDs {
			if time.Now().After(deadline) {
				t.Fatalf("peapod cri has %d descriptors after crictl was killed, %d before", fdCount(t, d.cmd.Process.Pid), daemonFDs)
			}
			time.Sleep(20 * time.Millisecond)
		}
		d.awaitContainerState(ttyID, "CONTAINER_RUNNING")
		if out := d.run("crictl", "exec", ttyID, "ps"); !regexp.MustCompile(`(?m)^\s*1 .* sh$`).MatchString(out) {
			t.Errorf("the tty container's shell is gone after its client was killed:\n%s", out)
		}
	})

	// (crictl's websocket transport speaks v5.channel.k8s.io, which the
	// streaming server of k8s.io/cri-streaming, containerd's too, does not.)
	t.Run("attach -i", func(t *testing.T) {
		cmd := d.crictlCmd(ctx, "attach", "-i", echoID)
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(out)
		for _, line := range []string{"one", "two"} {
			fmt.Fprintln(in, line)
			got, err := br.ReadString('\n')
			if err != nil || got != "out:"+line+"\n" {
				t.Fatalf("crictl attach -i answered %q to %q: %v\n%s", got, line, err, errb.String())
			}
		}
		// The input's end ends the attach: the container keeps its stdin.
		in.Close()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("crictl attach -i: %v\n%s", err, errb.String())
		}
		d.awaitContainerState(echoID, "CONTAINER_RUNNING")
		if out := d.run("crictl", "exec", echoID, "sh", "-c", "ls -l /proc/1/fd/0"); !strings.Contains(out, "pipe:") {
			t.Errorf("the echo container's stdin is not a pipe after the attach: %s", out)
		}
	})

	t.Run("stdin_once", func(t *testing.T) {
		id := start(once)
		cmd := d.crictlCmd(ctx, "attach", "-i", id)
		cmd.Stdin = strings.NewReader("line-1\nline-2\n")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("crictl attach -i: %v", err)
		}
		if string(out) != "line-1\nline-2\nafter-eof\n" {
			t.Errorf("crictl attach -i to a stdin_once container printed %q", out)
		}
		d.awaitContainerState(id, "CONTAINER_EXITED")
		if out, err := d.try("attach", id); err == nil || !strings.Contains(out, "FailedPrecondition") || !strings.Contains(out, "CONTAINER_EXITED") {
			t.Errorf("crictl attach to an exited container: %v\n%s, want FailedPrecondition naming CONTAINER_EXITED", err, out)
		}
		d.run("crictl", "rm", id)
		if out, err := d.try("attach", id); err == nil || !strings.Contains(out, "NotFound") {
			t.Errorf("crictl attach to a removed container: %v\n%s, want NotFound", err, out)
		}
	})

	if out, err := d.try("attach", "0123456789abcdef"); err == nil || !strings.Contains(out, "NotFound") {
		t.Errorf("crictl attach to an unknown id: %v\n%s, want NotFound", err, out)
	}
	d.run("crictl", "stopp", pod)
	if out, err := d.try("attach", echoID); err == nil || !strings.Contains(out, "FailedPrecondition") {
		t.Errorf("crictl attach to a container of a stopped sandbox: %v\n%s, want FailedPrecondition", err, out)
	}
	d.run("crictl", "rmp", "-f", pod)
	testutil.AssertNoLeak(t, before, d.roots())
}
