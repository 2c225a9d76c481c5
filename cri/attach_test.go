package cri_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peapod/peapod/internal/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// attachTimeout bounds each attach of these tests.
const attachTimeout = time.Minute

// streamBuffer is an output stream the test reads while it is written.
type streamBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newStreamBuffer() *streamBuffer { return &streamBuffer{changed: make(chan struct{}, 1)} }

func (s *streamBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Write(p)
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (s *streamBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// await waits until the output matches re.
func (s *streamBuffer) await(t *testing.T, what string, re *regexp.Regexp) {
	t.Helper()
	deadline := time.After(attachTimeout)
	for !re.MatchString(s.String()) {
		select {
		case <-s.changed:
		case <-deadline:
			t.Fatalf("%s never showed %v; it shows %q", what, re, s.String())
		}
	}
}

// sizeQueue is a client's terminal: each size sent is a resize.
type sizeQueue chan remotecommand.TerminalSize

func (q sizeQueue) Next() *remotecommand.TerminalSize {
	s, ok := <-q
	if !ok {
		return nil
	}
	return &s
}

// attachment is one client attached through the streaming server with
// client-go's SPDY executor, as the kubelet's and crictl's clients are.
type attachment struct {
	stdin          *io.PipeWriter
	stdout, stderr *streamBuffer
	sizes          sizeQueue
	cancel         context.CancelFunc
	done           chan error
}

// attach asks for the URL of an attach to container id and opens it;
// stdin and tty as the request says.
func (e *env) attach(t *testing.T, id string, stdin, tty bool) *attachment {
	t.Helper()
	resp, err := e.rt.Attach(e.ctx(), &runtimeapi.AttachRequest{ContainerId: id, Stdin: stdin, Stdout: true, Stderr: !tty, Tty: tty})
	if err != nil {
		t.Fatalf("Attach %s: %v", id, err)
	}
	u, err := url.Parse(resp.Url)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := remotecommand.NewSPDYExecutor(&restclient.Config{}, "POST", u)
	if err != nil {
		t.Fatal(err)
	}
	a := &attachment{stdout: newStreamBuffer(), stderr: newStreamBuffer(), done: make(chan error, 1)}
	opts := remotecommand.StreamOptions{Stdout: a.stdout, Tty: tty}
	if !tty {
		opts.Stderr = a.stderr
	}
	if stdin {
		var r *io.PipeReader
		r, a.stdin = io.Pipe()
		opts.Stdin = r
	}
	if tty {
		a.sizes = make(sizeQueue, 4)
		opts.TerminalSizeQueue = a.sizes
	}
	ctx, cancel := context.WithTimeout(context.Background(), attachTimeout)
	a.cancel = cancel
	t.Cleanup(cancel)
	go func() { a.done <- ex.StreamWithContext(ctx, opts) }()
	return a
}

// write sends s as the client's input.
func (a *attachment) write(t *testing.T, s string) {
	t.Helper()
	if _, err := a.stdin.Write([]byte(s)); err != nil {
		t.Fatalf("failed to write %q to the attach: %v", s, err)
	}
}

// wait waits for the attach to end and returns its error.
func (a *attachment) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-a.done:
		return err
	case <-time.After(attachTimeout):
		t.Fatalf("the attach did not end; stdout %q", a.stdout.String())
		return nil
	}
}

// startContainer creates and starts a container and waits until it runs.
func (e *env) startContainer(sb string, cfg *runtimeapi.ContainerConfig, sbCfg *runtimeapi.PodSandboxConfig) string {
	e.t.Helper()
	id := e.create(sb, cfg, sbCfg)
	if _, err := e.rt.StartContainer(e.ctx(), &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		e.t.Fatalf("StartContainer %s: %v", cfg.Metadata.Name, err)
	}
	return id
}

// awaitState waits until container id is in state want.
func (e *env) awaitState(id string, want runtimeapi.ContainerState) *runtimeapi.ContainerStatus {
	e.t.Helper()
	deadline := time.Now().Add(attachTimeout)
	for {
		st := e.containerStatus(id)
		if st.State == want {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("container %s is %s, never %s", id, st.State, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fdCount counts the open descriptors of pid.
func fdCount(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestAttach drives CRI containers with stdin, stdin_once and a tty
// through Attach and the streaming server with client-go's remotecommand
// (the kubelet's client): input echoed back on stdout and stderr, the
// container's stdin kept open across attaches, stdin_once closing it
// when the first attach ends, a tty with its size and a resize, the tty's
// log in the CRI format; concurrent attaches, clients that vanish (the
// container runs on and the supervisor keeps no descriptor of theirs),
// and the errors of what cannot be attached to; leaving nothing.
func TestAttach(t *testing.T) {
	e := newStreamingEnv(t)
	e.importBusybox()
	before := e.snapshot()
	logDir := t.TempDir()
	sbCfg := config("attach", 0)
	sbCfg.LogDirectory = logDir
	sb := e.run(sbCfg)
	supervisorPID := e.status(sb).SupervisorPID

	echoCfg := ctrConfig("echo", 0)
	echoCfg.Command = []string{"sh", "-c", `while read line; do echo "out:$line"; echo "err:$line" >&2; done; echo stdin-ended`}
	echoCfg.Stdin = true
	echoCfg.LogPath = "echo.log"
	echo := e.startContainer(sb, echoCfg, sbCfg)
	e.awaitState(echo, runtimeapi.ContainerState_CONTAINER_RUNNING)
	// fds is the supervisor's own descriptors: the lowest count seen
	// while no client is attached. A count can only be too high (the
	// supervisor may hold a passing descriptor of its own at any moment:
	// the end of the start request, a status write, a /proc read), never
	// too low, so each flush lowers it to what it sees.
	fds := fdCount(t, supervisorPID)
	// flush makes the echo container write, which shows the supervisor
	// the clients without input that are gone (as containerd, it learns
	// of them when a write to them fails), and waits until it holds no
	// more descriptors than before any attach.
	flush := func(t *testing.T) {
		t.Helper()
		c := e.attach(t, echo, true, false)
		c.write(t, "flush\n")
		c.stdout.await(t, "stdout of the flush", regexp.MustCompile(`^out:flush\n$`))
		c.stdin.Close()
		c.wait(t)
		deadline := time.Now().Add(attachTimeout)
		n := fdCount(t, supervisorPID)
		for ; n > fds; n = fdCount(t, supervisorPID) {
			if time.Now().After(deadline) {
				t.Fatalf("the supervisor has %d descriptors after its clients went, %d before any attach", n, fds)
			}
			time.Sleep(20 * time.Millisecond)
		}
		fds = n
	}

	t.Run("stdin", func(t *testing.T) {
		a := e.attach(t, echo, true, false)
		a.write(t, "hello\n")
		a.stdout.await(t, "stdout", regexp.MustCompile(`^out:hello\n$`))
		a.stderr.await(t, "stderr", regexp.MustCompile(`^err:hello\n$`))
		// Without stdin_once the client's end of input ends its attach
		// only: the container keeps its stdin for the next one.
		a.stdin.Close()
		if err := a.wait(t); err != nil {
			t.Fatalf("attach ended with %v", err)
		}
		e.awaitState(echo, runtimeapi.ContainerState_CONTAINER_RUNNING)
		b := e.attach(t, echo, true, false)
		b.write(t, "again\n")
		b.stdout.await(t, "stdout of the second attach", regexp.MustCompile(`^out:again\n$`))
		b.stdin.Close()
		if err := b.wait(t); err != nil {
			t.Fatalf("second attach ended with %v", err)
		}
	})

	// attached returns once every client of as (as[0] with stdin) gets
	// output: the supervisor has it as a client. Each round's line is
	// awaited; a client that joins later sees a later round.
	attached := func(t *testing.T, as []*attachment) {
		t.Helper()
		deadline := time.Now().Add(attachTimeout)
		for round := 0; ; round++ {
			as[0].write(t, fmt.Sprintf("ping-%d\n", round))
			as[0].stdout.await(t, "stdout", regexp.MustCompile(fmt.Sprintf(`out:ping-%d\n`, round)))
			all := true
			for _, a := range as {
				all = all && strings.Contains(a.stdout.String(), "out:ping-")
			}
			if all {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("not every client was attached after %d rounds", round)
			}
		}
	}

	t.Run("concurrent", func(t *testing.T) {
		var as []*attachment
		for i := 0; i < 4; i++ {
			as = append(as, e.attach(t, echo, i%2 == 0, false))
		}
		attached(t, as)
		// Every client sees every line, whoever typed it.
		as[0].write(t, "from-0\n")
		as[2].write(t, "from-2\n")
		for i, a := range as {
			a.stdout.await(t, fmt.Sprintf("stdout of client %d", i), regexp.MustCompile(`out:from-0\n(.*\n)*out:from-2\n|out:from-2\n(.*\n)*out:from-0\n`))
		}
		for _, a := range as {
			a.cancel()
			a.wait(t)
		}
		flush(t)
	})

	t.Run("abrupt disconnects", func(t *testing.T) {
		flush(t) // the baseline from a quiet moment
		var as []*attachment
		for i := 0; i < 8; i++ {
			a := e.attach(t, echo, i%2 == 0, false)
			as = append(as, a)
		}
		attached(t, as)
		// Each client's connection is a descriptor of the supervisor's: the
		// count reaches the baseline plus one a client (polled: the count
		// also sees the supervisor's own passing descriptors).
		withClients := fdCount(t, supervisorPID)
		for deadline := time.Now().Add(attachTimeout); withClients-fds < len(as) && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
			withClients = fdCount(t, supervisorPID)
		}
		// Gone without a word: the connection is dropped.
		for _, a := range as {
			a.cancel()
		}
		for _, a := range as {
			a.wait(t)
		}
		// flush waits until the supervisor is back to its descriptors of
		// before any attach; compared with that baseline, not with a count
		// taken now (the supervisor may hold a passing descriptor of its
		// own at any moment: a status write, a /proc read).
		flush(t)
		if withClients-fds < len(as) {
			t.Errorf("the supervisor had %d descriptors with %d clients attached, %d before any attach: the attaches did not go through it", withClients, len(as), fds)
		}
		e.awaitState(echo, runtimeapi.ContainerState_CONTAINER_RUNNING)
	})

	t.Run("no stdin", func(t *testing.T) {
		// A container without stdin: the client's input is dropped (as
		// containerd drops it), the output comes.
		cfg := ctrConfig("nostdin", 0)
		cfg.Command = []string{"sh", "-c", "read line; echo read-returned-$?; while true; do echo tick; sleep 0.2; done"}
		id := e.startContainer(sb, cfg, sbCfg)
		a := e.attach(t, id, true, false)
		a.write(t, "ignored\n")
		a.stdout.await(t, "stdout", regexp.MustCompile(`tick\n`))
		if strings.Contains(a.stdout.String(), "ignored") {
			t.Errorf("a container without stdin read the attach's input: %q", a.stdout.String())
		}
		a.stdin.Close()
		if err := a.wait(t); err != nil {
			t.Errorf("attach ended with %v", err)
		}
	})

	t.Run("stdin_once", func(t *testing.T) {
		cfg := ctrConfig("once", 0)
		cfg.Command = []string{"sh", "-c", "cat; echo after-eof"}
		cfg.Stdin, cfg.StdinOnce = true, true
		id := e.startContainer(sb, cfg, sbCfg)
		e.awaitState(id, runtimeapi.ContainerState_CONTAINER_RUNNING)
		a := e.attach(t, id, true, false)
		a.write(t, "only-once\n")
		a.stdout.await(t, "stdout", regexp.MustCompile(`^only-once\n$`))
		// The end of the first attach's input is the container's EOF;
		// the output after it still reaches the client.
		a.stdin.Close()
		if err := a.wait(t); err != nil {
			t.Fatalf("attach ended with %v", err)
		}
		if got := a.stdout.String(); got != "only-once\nafter-eof\n" {
			t.Errorf("stdout of the stdin_once attach = %q, want the input and after-eof", got)
		}
		st := e.awaitState(id, runtimeapi.ContainerState_CONTAINER_EXITED)
		if st.ExitCode != 0 {
			t.Errorf("the stdin_once container exited with %d", st.ExitCode)
		}
		// Attaching to what does not run: containerd's words.
		_, err := e.rt.Attach(e.ctx(), &runtimeapi.AttachRequest{ContainerId: id, Stdout: true})
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "CONTAINER_EXITED") {
			t.Errorf("Attach to an exited container: %v, want FailedPrecondition naming CONTAINER_EXITED", err)
		}
	})

	t.Run("tty", func(t *testing.T) {
		cfg := ctrConfig("tty", 0)
		cfg.Command = []string{"sh"}
		cfg.Stdin, cfg.Tty = true, true
		cfg.LogPath = "tty.log"
		id := e.startContainer(sb, cfg, sbCfg)
		e.awaitState(id, runtimeapi.ContainerState_CONTAINER_RUNNING)
		a := e.attach(t, id, true, true)
		a.sizes <- remotecommand.TerminalSize{Width: 101, Height: 33}
		a.write(t, "stty size; echo term=$TERM; tty\r")
		a.stdout.await(t, "the terminal", regexp.MustCompile(`33 101\r\n`))
		a.stdout.await(t, "the terminal", regexp.MustCompile(`term=xterm\r\n`))
		a.stdout.await(t, "the terminal", regexp.MustCompile(`/dev/pts/\d+\r\n`))
		// The resize travels on its own stream: the shell waits for it.
		a.sizes <- remotecommand.TerminalSize{Width: 120, Height: 40}
		a.write(t, `while [ "$(stty size)" != "40 120" ]; do sleep 0.05; done; echo resized-to-$(stty size | tr ' ' x)`+"\r")
		a.stdout.await(t, "the terminal", regexp.MustCompile(`resized-to-40x120\r\n`))
		// The log is the CRI's: the pty's one stream as stdout, a line an
		// entry, without the terminal's \r.
		b, err := os.ReadFile(logDir + "/tty.log")
		if err != nil {
			t.Fatal(err)
		}
		// (A line the shell's editor wrapped may keep a \r of its own,
		// as with containerd, which drops the one before the \n only.)
		for _, line := range []string{"33 101", "term=xterm", `/dev/pts/\d+`, "resized-to-40x120"} {
			if !regexp.MustCompile(`(?m)^\S+ stdout F ` + line + `$`).Match(b) {
				t.Errorf("the tty container's log has no entry %q (without \\r):\n%q", line, b)
			}
		}
		if bytes.Contains(b, []byte(" stderr ")) {
			t.Errorf("the tty container's log has a stderr entry:\n%q", b)
		}
		// The client goes away: the shell runs on for the next attach.
		a.cancel()
		a.wait(t)
		a2 := e.attach(t, id, true, true)
		a2.sizes <- remotecommand.TerminalSize{Width: 80, Height: 24}
		a2.write(t, "echo back-$((6*7))\r")
		a2.stdout.await(t, "the terminal of the second attach", regexp.MustCompile(`back-42\r\n`))
		a2.write(t, "exit 3\r")
		if err := a2.wait(t); err != nil {
			t.Errorf("attach ended with %v", err)
		}
		if st := e.awaitState(id, runtimeapi.ContainerState_CONTAINER_EXITED); st.ExitCode != 3 {
			t.Errorf("the tty shell exited with %d, want 3", st.ExitCode)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		gone := e.startContainer(sb, ctrConfig("gone", 0), sbCfg)
		if _, err := e.rt.RemoveContainer(e.ctx(), &runtimeapi.RemoveContainerRequest{ContainerId: gone}); err != nil {
			t.Fatal(err)
		}
		other := config("attach-other", 0)
		osb := e.run(other)
		oc := e.startContainer(osb, ctrConfig("echo", 0), other)
		e.awaitState(oc, runtimeapi.ContainerState_CONTAINER_RUNNING)
		if _, err := e.rt.StopPodSandbox(e.ctx(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: osb}); err != nil {
			t.Fatal(err)
		}
		created := e.create(sb, ctrConfig("created", 0), sbCfg)
		for _, c := range []struct {
			name string
			req  *runtimeapi.AttachRequest
			want codes.Code
		}{
			{"unknown id", &runtimeapi.AttachRequest{ContainerId: strings.Repeat("ab", 32), Stdout: true}, codes.NotFound},
			{"removed container", &runtimeapi.AttachRequest{ContainerId: gone, Stdout: true}, codes.NotFound},
			{"container of a stopped sandbox", &runtimeapi.AttachRequest{ContainerId: oc, Stdout: true}, codes.FailedPrecondition},
			{"sandbox id as a container id", &runtimeapi.AttachRequest{ContainerId: osb, Stdout: true}, codes.NotFound},
			{"created, not started", &runtimeapi.AttachRequest{ContainerId: created, Stdout: true}, codes.FailedPrecondition},
			{"no stream", &runtimeapi.AttachRequest{ContainerId: echo}, codes.InvalidArgument},
			{"tty with stderr", &runtimeapi.AttachRequest{ContainerId: echo, Stdout: true, Stderr: true, Tty: true}, codes.InvalidArgument},
		} {
			if _, err := e.rt.Attach(e.ctx(), c.req); status.Code(err) != c.want {
				t.Errorf("Attach to %s: %v, want %v", c.name, err, c.want)
			}
		}
		e.remove(osb)
	})

	// Input ends with the container: the echo loop says so in its log.
	a := e.attach(t, echo, true, false)
	a.write(t, "last\n")
	a.stdout.await(t, "stdout", regexp.MustCompile(`out:last\n`))
	a.cancel()
	a.wait(t)
	b, err := os.ReadFile(logDir + "/echo.log")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"stdout F out:hello", "stderr F err:hello", "stdout F out:last"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("echo.log has no %q:\n%s", want, b)
		}
	}
	e.remove(sb)
	waitGone(t, supervisorPID)
	testutil.AssertNoLeak(t, before, e.roots())
}
