package containerinit

import (
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/testutil"
	"github.com/peapod/peapod/namespaces"
)

// TestTerminalContainer: a terminal container's stdio is one pty of its
// own devpts instance (the first pty of a fresh instance is 0), its
// controlling terminal, owned by the workload's user; the master comes
// back to the caller, and input typed there reaches the process.
func TestTerminalContainer(t *testing.T) {
	testutil.RequireRoot(t)
	c := newTestContainer(t, makeBusyboxLower(t, t.TempDir()), "sh", "-c",
		`read line; echo "got $line"; tty; test -t 0 && test -t 1 && test -t 2 && echo all-tty; stat -c "owner %u" "$(tty)"; readlink /proc/self/fd/2`)
	c.OCI.Process.Terminal = true
	c.OCI.Process.User.UID, c.OCI.Process.User.GID = 65534, 65534
	pid, master, err := namespaces.StartTerminalContainer(testHelper(t), testPod, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	sc := &startedContainer{pid: pid}
	t.Cleanup(func() { sc.kill(); sc.wait() })
	if _, err := master.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(20*time.Second, func() { master.Close() })
	defer timer.Stop()
	// EIO once the container's last slave descriptor closed.
	out, _ := io.ReadAll(master)
	if ws := sc.wait(); ws.ExitStatus() != 0 {
		t.Fatalf("exit %v; output %q", ws, out)
	}
	for _, want := range []string{"got hello", "/dev/pts/0\r\nall-tty", "owner 65534", "/dev/pts/0\r\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("terminal output %q lacks %q", out, want)
		}
	}
}

// TestTerminalWithoutConsoleSocket: a spec asking for a terminal started
// without a console socket fails to start, naming why, and never runs its
// process on the caller's descriptors.
func TestTerminalWithoutConsoleSocket(t *testing.T) {
	testutil.RequireRoot(t)
	c := newTestContainer(t, makeBusyboxLower(t, t.TempDir()), "true")
	c.OCI.Process.Terminal = true
	_, err := startTestContainer(t, c)
	if err == nil || !strings.Contains(err.Error(), "has a terminal but no console socket was passed") {
		t.Fatalf("start with a terminal and no console socket: %v", err)
	}
}

// TestRecvConsoleRefuses: what arrives on the console socket must be one
// pty master; nothing at all (an init stage that ignores Terminal), a
// pipe, or two descriptors are refused and closed.
func TestRecvConsoleRefuses(t *testing.T) {
	pair := func() (*os.File, int) {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fds[1]) })
		f := os.NewFile(uintptr(fds[0]), "console")
		t.Cleanup(func() { f.Close() })
		return f, fds[1]
	}
	ours, _ := pair()
	if _, err := namespaces.RecvConsole(ours); err == nil || !strings.Contains(err.Error(), "sent no pty master") {
		t.Errorf("nothing sent: %v", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	ours, theirs := pair()
	if err := namespaces.SendConsole(theirs, int(r.Fd())); err != nil {
		t.Fatal(err)
	}
	if _, err := namespaces.RecvConsole(ours); err == nil || !strings.Contains(err.Error(), "not a pty master") {
		t.Errorf("a pipe sent: %v", err)
	}
	ours, theirs = pair()
	if err := unix.Sendmsg(theirs, []byte("ptmx"), unix.UnixRights(int(r.Fd()), int(w.Fd())), nil, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := namespaces.RecvConsole(ours); err == nil || !strings.Contains(err.Error(), "sent 2 descriptors") {
		t.Errorf("two descriptors sent: %v", err)
	}
	// The host's /dev/null is a character device but not 5:2.
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	ours, theirs = pair()
	if err := namespaces.SendConsole(theirs, int(null.Fd())); err != nil {
		t.Fatal(err)
	}
	if _, err := namespaces.RecvConsole(ours); err == nil || !strings.Contains(err.Error(), "not a pty master") {
		t.Errorf("/dev/null sent: %v", err)
	}
}
