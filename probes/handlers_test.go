package probes

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/runtime/spec"
)

// serverPort returns the loopback port of an httptest server.
func serverPort(t *testing.T, s *httptest.Server) int {
	t.Helper()
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(u.Port())
	return p
}

// httpProbe runs one probe of path against s through a fresh handler.
func httpProbe(t *testing.T, s *httptest.Server, g spec.HTTPGet, timeout time.Duration) (Outcome, string, error) {
	t.Helper()
	if g.Scheme == "" {
		g.Scheme = "HTTP"
	}
	h := NewHTTPHandler(&g, serverPort(t, s), timeout, NewHTTPTransport())
	return h.Probe(context.Background(), "127.0.0.1")
}

func TestChecklist_15(t *testing.T) {
	var mu sync.Mutex
	var got []*http.Request
	var conns int
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r)
		mu.Unlock()
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			mu.Lock()
			conns++
			mu.Unlock()
		}
	}
	s.Start()
	defer s.Close()
	g := spec.HTTPGet{Path: "/healthz?x=1", Headers: []spec.HTTPHeader{{Name: "x-custom", Value: "a"}, {Name: "X-Custom", Value: "b"}}}
	h := NewHTTPHandler(&g, serverPort(t, s), time.Second, NewHTTPTransport())
	for i := 0; i < 2; i++ {
		if out, msg, err := h.Probe(context.Background(), "127.0.0.1"); out != OutcomeSuccess || err != nil {
			t.Fatalf("probe %d: %v %q %v", i, out, msg, err)
		}
	}
	mu.Lock()
	r, nconns := got[0], conns
	got = nil
	mu.Unlock()
	checks := map[string][2]string{
		"method":     {r.Method, "GET"},
		"uri":        {r.RequestURI, "/healthz?x=1"},
		"ua":         {r.Header.Get("User-Agent"), "kube-probe/" + KubeVersion},
		"accept":     {r.Header.Get("Accept"), "*/*"},
		"connection": {strconv.FormatBool(r.Close), "true"},
		"encoding":   {r.Header.Get("Accept-Encoding"), ""},
		"custom":     {strings.Join(r.Header.Values("X-Custom"), ","), "a,b"},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
	if nconns != 2 {
		t.Errorf("%d connections for 2 probes: keep-alive must be off", conns)
	}
	// User User-Agent and Accept replace the defaults; empty Accept removes it; Host sets the vhost.
	g = spec.HTTPGet{Path: "/", Headers: []spec.HTTPHeader{{Name: "User-Agent", Value: "mine"}, {Name: "Accept", Value: ""}, {Name: "Host", Value: "example.test"}}}
	if out, _, err := httpProbe(t, s, g, time.Second); out != OutcomeSuccess || err != nil {
		t.Fatalf("probe: %v %v", out, err)
	}
	mu.Lock()
	r = got[0]
	mu.Unlock()
	if r.Header.Get("User-Agent") != "mine" || r.Header.Values("Accept") != nil || r.Host != "example.test" {
		t.Errorf("UA %q Accept %q Host %q", r.Header.Get("User-Agent"), r.Header.Values("Accept"), r.Host)
	}
	// The node's proxy is never used.
	req, _ := http.NewRequest(http.MethodGet, "http://10.0.0.1/", nil)
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	if u, err := NewHTTPTransport().Proxy(req); u != nil || err != nil {
		t.Errorf("proxy %v %v, want none", u, err)
	}
}

func TestChecklist_16(t *testing.T) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		w.WriteHeader(code)
		fmt.Fprint(w, "secret body")
	}))
	defer s.Close()
	for _, tc := range []struct {
		code int
		want Outcome
	}{{200, OutcomeSuccess}, {204, OutcomeSuccess}, {304, OutcomeWarning}, {399, OutcomeWarning}, {400, OutcomeFailure}, {404, OutcomeFailure}, {503, OutcomeFailure}} {
		out, msg, err := httpProbe(t, s, spec.HTTPGet{Path: "/" + strconv.Itoa(tc.code)}, time.Second)
		if err != nil || out != tc.want {
			t.Fatalf("status %d: %v %q %v, want %v", tc.code, out, msg, err, tc.want)
		}
		if tc.want == OutcomeFailure && msg != "HTTP probe failed with statuscode: "+strconv.Itoa(tc.code) {
			t.Fatalf("status %d message %q", tc.code, msg)
		}
	}
	g := &spec.HTTPGet{Path: "/503", Scheme: "HTTP"}
	rec := &recorder{}
	res, err := runProbe(context.Background(), Readiness, "c", NewHTTPHandler(g, serverPort(t, s), time.Second, NewHTTPTransport()), "127.0.0.1", rec)
	evs := rec.all()
	if res != Failure || err != nil || len(evs) != 1 || evs[0].Message != "Readiness probe failed: HTTP probe failed with statuscode: 503" {
		t.Fatalf("result %v err %v events %+v", res, err, evs)
	}
}

func TestChecklist_17(t *testing.T) {
	var port int
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/ok":
		case r.URL.Path == "/fail":
			w.WriteHeader(500)
		case r.URL.Path == "/to-ok":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case r.URL.Path == "/to-fail":
			http.Redirect(w, r, "/fail", http.StatusFound)
		case r.URL.Path == "/elsewhere":
			// Another host name for the same loopback server: not followed,
			// so no request leaves for it anyway.
			w.Header().Set("Location", fmt.Sprintf("http://localhost:%d/ok", port))
			w.WriteHeader(http.StatusFound)
			fmt.Fprint(w, "moved")
		case strings.HasPrefix(r.URL.Path, "/hop/"):
			n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/hop/"))
			if n == 0 {
				return
			}
			http.Redirect(w, r, "/hop/"+strconv.Itoa(n-1), http.StatusFound)
		}
	}))
	defer s.Close()
	port = serverPort(t, s)
	for _, tc := range []struct {
		path string
		want Outcome
		msg  string
	}{
		{"/to-ok", OutcomeSuccess, ""},
		{"/to-fail", OutcomeFailure, "HTTP probe failed with statuscode: 500"},
		{"/elsewhere", OutcomeWarning, "Probe terminated redirects, Response body: moved"},
		// The kubelet's checker is Go's default: it refuses an 11th
		// request, so 9 redirects are followed and the 10th fails.
		{"/hop/9", OutcomeSuccess, ""},
		{"/hop/10", OutcomeFailure, "stopped after 10 redirects"},
	} {
		out, msg, err := httpProbe(t, s, spec.HTTPGet{Path: tc.path}, time.Second)
		if err != nil || out != tc.want || !strings.Contains(msg, tc.msg) {
			t.Fatalf("%s: %v %q %v, want %v %q", tc.path, out, msg, err, tc.want, tc.msg)
		}
	}
	rec := &recorder{}
	g := &spec.HTTPGet{Path: "/elsewhere", Scheme: "HTTP"}
	res, _ := runProbe(context.Background(), Liveness, "c", NewHTTPHandler(g, port, time.Second, NewHTTPTransport()), "127.0.0.1", rec)
	evs := rec.all()
	if res != Success || len(evs) != 1 || evs[0].Reason != ReasonProbeWarning || evs[0].Message != "Liveness probe warning: Probe terminated redirects, Response body: moved" {
		t.Fatalf("result %v events %+v", res, evs)
	}
}

func TestChecklist_18(t *testing.T) {
	s := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer s.Close()
	if out, msg, err := httpProbe(t, s, spec.HTTPGet{Path: "/", Scheme: "HTTPS"}, time.Second); out != OutcomeSuccess || err != nil {
		t.Fatalf("self-signed https: %v %q %v", out, msg, err)
	}
}

func TestChecklist_19(t *testing.T) {
	release := make(chan struct{})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Write(make([]byte, 1<<20))
			return
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer s.Close()
	defer close(release)
	out, msg, err := httpProbe(t, s, spec.HTTPGet{Path: "/slow"}, 200*time.Millisecond)
	if err != nil || out != OutcomeFailure || !strings.Contains(msg, "Client.Timeout exceeded") {
		t.Fatalf("slow: %v %q %v", out, msg, err)
	}
	if out, msg, err := httpProbe(t, s, spec.HTTPGet{Path: "/big"}, time.Second); err != nil || out != OutcomeSuccess {
		t.Fatalf("1 MiB body: %v %q %v", out, msg, err)
	}
	n, err := readAtMost(strings.NewReader(strings.Repeat("x", 1<<20)), make([]byte, maxRespBodyLength))
	if n != 10<<10 || err != nil {
		t.Fatalf("readAtMost read %d, %v; want 10 KiB", n, err)
	}
}

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

func TestGRPCHandler(t *testing.T) {
	var gotArgv []string
	run := func(code int, out string, err error) Runner {
		return func(_ context.Context, argv []string, timeout time.Duration) ([]byte, int, error) {
			gotArgv = argv
			return []byte(out), code, err
		}
	}
	cases := []struct {
		code int
		out  string
		err  error
		want Outcome
		msg  string
		perr bool
	}{
		{0, "service healthy", nil, OutcomeSuccess, "service healthy", false},
		{1, `service unhealthy (responded with "NOT_SERVING")`, nil, OutcomeFailure, `service unhealthy (responded with "NOT_SERVING")`, false},
		{-1, "", fmt.Errorf("killed: %w", ErrExecTimeout), OutcomeFailure, "timeout: health rpc did not complete within 1s", false},
		{2, "usage", nil, OutcomeUnknown, "", true},
		{0, "", io.ErrClosedPipe, OutcomeUnknown, "", true},
	}
	for _, tc := range cases {
		h := NewGRPCHandler("/bin/peapod-grpc-probe", 9000, "svc", time.Second, run(tc.code, tc.out, tc.err))
		out, msg, err := h.Probe(context.Background(), "10.1.2.3")
		if out != tc.want || msg != tc.msg || (err != nil) != tc.perr {
			t.Fatalf("exit %d: %v %q %v", tc.code, out, msg, err)
		}
	}
	if want := "[/bin/peapod-grpc-probe -addr 10.1.2.3:9000 -service svc -timeout 1s]"; fmt.Sprint(gotArgv) != want {
		t.Fatalf("argv %v, want %s", gotArgv, want)
	}
}
