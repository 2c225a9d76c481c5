package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// forwardProc is a running `peapod port-forward`.
type forwardProc struct {
	cmd *exec.Cmd
	// ports maps each remote port to the local one it printed.
	ports map[int]string
	// mu guards stderr, which the command writes per failed connection.
	mu     sync.Mutex
	stderr strings.Builder
	// errChanged is signalled on every stderr line.
	errChanged chan struct{}
	// done is closed once the command exited; code is its exit code.
	done chan struct{}
	code int
}

// startForward starts port-forward and waits for one "Forwarding from"
// line per remote port (127.0.0.1's).
func (e *env) startForward(pod string, remotes []int, specs ...string) *forwardProc {
	e.t.Helper()
	cmd := exec.Command(e.bin, e.args(append([]string{"port-forward", pod}, specs...)...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	f := &forwardProc{cmd: cmd, ports: map[int]string{}, errChanged: make(chan struct{}, 1), done: make(chan struct{})}
	e.t.Cleanup(func() {
		cmd.Process.Kill()
		<-f.done
	})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			f.mu.Lock()
			f.stderr.WriteString(sc.Text() + "\n")
			f.mu.Unlock()
			select {
			case f.errChanged <- struct{}{}:
			default:
			}
		}
	}()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		cmd.Wait()
		f.code = cmd.ProcessState.ExitCode()
		close(f.done)
	}()
	re := regexp.MustCompile(`^Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)$`)
	deadline := time.After(cliTimeout)
	for len(f.ports) < len(remotes) {
		select {
		case l, ok := <-lines:
			if !ok {
				<-f.done
				e.t.Fatalf("port-forward exited with %d before forwarding: %s", f.code, f.errors())
			}
			if m := re.FindStringSubmatch(l); m != nil {
				var r int
				fmt.Sscan(m[2], &r)
				f.ports[r] = "127.0.0.1:" + m[1]
			}
		case <-deadline:
			e.t.Fatalf("port-forward printed no Forwarding line in %v: %s", cliTimeout, f.errors())
		}
	}
	// Keep draining ("Handling connection for ...").
	go func() {
		for range lines {
		}
	}()
	return f
}

func (f *forwardProc) errors() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stderr.String()
}

// awaitError waits until stderr matches re.
func (f *forwardProc) awaitError(t *testing.T, re *regexp.Regexp) {
	t.Helper()
	deadline := time.After(cliTimeout)
	for !re.MatchString(f.errors()) {
		select {
		case <-f.errChanged:
		case <-deadline:
			t.Fatalf("port-forward never printed %v; stderr: %s", re, f.errors())
		}
	}
}

// httpdPod serves /wwwN files "body N <tag>" with busybox httpd on 8080,
// Ready once it answers.
func httpdPod(name, tag string) *corev1.Pod {
	c := shell("web", fmt.Sprintf(`mkdir -p /www && for i in $(seq 1 20); do echo "body $i %s" > /www/f$i; done && exec httpd -f -p 8080 -h /www`, tag))
	c.ReadinessProbe = &corev1.Probe{PeriodSeconds: 1, ProbeHandler: corev1.ProbeHandler{
		HTTPGet: &corev1.HTTPGetAction{Path: "/f1", Port: intstr.FromInt32(8080)}}}
	return newPod(name, c)
}

// TestPortForward_12: 20 parallel connections through a forward to an
// httpd in the pod, each body checked; a closed port fails its connection
// with a clear error while the forward keeps serving; the forward ends
// when the pod is removed, and nothing is left behind.
func TestPortForward_12(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	tag := randomHex(t, 6)
	e.runPod(podJSON(httpdPod("pf", tag)))
	e.inspect("pf")
	e.mustRun("wait", "pf", "--for=condition=Ready", "--timeout=20s")

	f := e.startForward("pf", []int{8080, 9}, ":8080", "0:9")
	web := f.ports[8080]
	client := &http.Client{Timeout: cliTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(i int) error {
		resp, err := client.Get(fmt.Sprintf("http://%s/f%d", web, i))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if want := fmt.Sprintf("body %d %s\n", i, tag); string(b) != want {
			return fmt.Errorf("f%d: body %q, want %q", i, b, want)
		}
		return nil
	}

	t.Run("20 parallel connections", func(t *testing.T) {
		// All 20 are open at once: each holds its connection until every
		// other one has connected.
		var connected, wg sync.WaitGroup
		connected.Add(20)
		errs := make(chan error, 20)
		for i := 1; i <= 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.DialTimeout("tcp", web, cliTimeout)
				connected.Done()
				if err != nil {
					errs <- err
					return
				}
				defer c.Close()
				connected.Wait()
				fmt.Fprintf(c, "GET /f%d HTTP/1.0\r\n\r\n", i)
				b, err := io.ReadAll(c)
				if err != nil {
					errs <- err
					return
				}
				if want := fmt.Sprintf("body %d %s\n", i, tag); !strings.HasSuffix(string(b), "\r\n\r\n"+want) {
					errs <- fmt.Errorf("f%d: response %q does not end with body %q", i, b, want)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})

	t.Run("sequential connections", func(t *testing.T) {
		// A figure for the report: a connection and request through the
		// forward against the same straight to the pod's address.
		direct := net.JoinHostPort(e.get("pf").Status.PodIP, "8080")
		measure := func(addr string) time.Duration {
			const n = 100
			start := time.Now()
			for i := 0; i < n; i++ {
				resp, err := client.Get(fmt.Sprintf("http://%s/f%d", addr, i%20+1))
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			return time.Since(start) / n
		}
		if err := get(3); err != nil {
			t.Fatal(err)
		}
		t.Logf("per connection + GET: %v through the forward, %v straight to the pod", measure(web), measure(direct))
	})

	t.Run("closed port", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", f.ports[9], cliTimeout)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(cliTimeout))
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("read %d bytes from a closed port of the pod", n)
		}
		c.Close()
		f.awaitError(t, regexp.MustCompile(`error forwarding port 9 to pod default/pf: failed to connect to port 9 of pod default/pf: .*connection refused`))
		if err := get(7); err != nil {
			t.Errorf("the forward stopped serving after a refused connection: %v", err)
		}
	})

	t.Run("ends when the pod is removed", func(t *testing.T) {
		// An idle connection must not keep it running.
		idle, err := net.DialTimeout("tcp", web, cliTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer idle.Close()
		e.mustRun("rm", "-f", "pf")
		// inotify reports the removal; the fallback re-check is 10 s.
		select {
		case <-f.done:
		case <-time.After(3 * time.Second):
			t.Fatalf("port-forward still running 3 s after the pod was removed; stderr: %s", f.errors())
		}
		if f.code == 0 || !strings.Contains(f.errors(), "lost connection to pod: pod default/pf: pod is gone") {
			t.Errorf("exit code %d, stderr %q; want non-zero and lost connection to pod", f.code, f.errors())
		}
		idle.SetDeadline(time.Now().Add(cliTimeout))
		if _, err := idle.Read(make([]byte, 1)); err == nil {
			t.Errorf("an open connection survived the forward")
		}
	})
	e.assertNoLeak(before)
}

// TestPortForwardSignals_12: Ctrl-C ends a forward with exit code 0 and
// closes its listener; a bad port spec, a missing pod and a stopped pod are
// clear errors.
func TestPortForwardSignals_12(t *testing.T) {
	e := newEnv(t)
	p := httpdPod("sig", "x")
	// httpd as PID 1 ignores SIGTERM: stop would wait the default 30 s.
	grace := int64(1)
	p.Spec.TerminationGracePeriodSeconds = &grace
	e.runPod(podJSON(p))
	f := e.startForward("sig", []int{8080}, ":8080", "--address", "127.0.0.1")
	f.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-f.done:
	case <-time.After(cliTimeout):
		t.Fatal("port-forward ignored SIGINT")
	}
	if f.code != 0 {
		t.Errorf("exit code %d after SIGINT, want 0; stderr %s", f.code, f.errors())
	}
	if c, err := net.Dial("tcp", f.ports[8080]); err == nil {
		c.Close()
		t.Errorf("%s still accepts after the forward ended", f.ports[8080])
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"port-forward", "sig", "80:x"}, `invalid port "80:x"`},
		{[]string{"port-forward", "nope", "80"}, `pod "nope" in namespace "default": pod not found`},
		{[]string{"port-forward", "sig", "80", "--address", "host.invalid"}, `invalid --address "host.invalid"`},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
		out, err := exec.CommandContext(ctx, e.bin, e.args(tc.args...)...).CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("peapod %v: %v, output %q; want an error with %q", tc.args, err, out, tc.want)
		}
	}
	// Stopping the pod releases its network: a forward ends with it.
	f = e.startForward("sig", []int{8080}, ":8080")
	e.mustRun("stop", "sig")
	select {
	case <-f.done:
	case <-time.After(3 * time.Second):
		t.Fatalf("port-forward still running 3 s after the pod was stopped; stderr: %s", f.errors())
	}
	if f.code == 0 || !strings.Contains(f.errors(), "network namespace was released") {
		t.Errorf("after stop: exit code %d, stderr %q", f.code, f.errors())
	}
	if _, stderr, code := e.run("", "port-forward", "sig", "8080"); code == 0 || !strings.Contains(stderr, "has no network") {
		t.Errorf("port-forward to a stopped pod: exit %d, stderr %q; want a clear error", code, stderr)
	}
}
