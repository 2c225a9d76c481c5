package httpprobe

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peapod/peapod/probes"
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

// answered is the timeout of probes the tests expect an answer to: only a
// hang may reach it, so a loaded machine cannot turn an answer into a
// timeout, and an answer returns as soon as it comes.
const answered = time.Minute

// httpProbe runs one probe of g against s through a fresh handler of each
// implementation that serves its scheme — net/http here (peapod-prober),
// probes.PlainHTTPHandler for http:// (the supervisor) — fails the test when
// they disagree, and returns net/http's result.
func httpProbe(t *testing.T, s *httptest.Server, g spec.HTTPGet, timeout time.Duration) (probes.Outcome, string, error) {
	t.Helper()
	if g.Scheme == "" {
		g.Scheme = "HTTP"
	}
	port := serverPort(t, s)
	out, msg, err := NewHTTPHandler(&g, port, timeout, NewHTTPTransport()).Probe(context.Background(), "127.0.0.1")
	if g.Scheme == "HTTP" {
		pout, pmsg, perr := probes.NewPlainHTTPHandler(&g, port, timeout, nil).Probe(context.Background(), "127.0.0.1")
		if pout != out || pmsg != msg || (perr == nil) != (err == nil) {
			t.Errorf("%s: net/http gives %v %q %v; plain gives %v %q %v", g.Path, out, msg, err, pout, pmsg, perr)
		}
	}
	return out, msg, err
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
	h := NewHTTPHandler(&g, serverPort(t, s), answered, NewHTTPTransport())
	plain := probes.NewPlainHTTPHandler(&g, serverPort(t, s), answered, nil)
	for i := 0; i < 2; i++ {
		if out, msg, err := h.Probe(context.Background(), "127.0.0.1"); out != probes.OutcomeSuccess || err != nil {
			t.Fatalf("probe %d: %v %q %v", i, out, msg, err)
		}
	}
	for i := 0; i < 2; i++ {
		if out, msg, err := plain.Probe(context.Background(), "127.0.0.1"); out != probes.OutcomeSuccess || err != nil {
			t.Fatalf("plain probe %d: %v %q %v", i, out, msg, err)
		}
	}
	mu.Lock()
	r, nconns := got[0], conns
	if d := requestDiff(got[0], got[2]); d != "" {
		t.Errorf("plain request differs from net/http's: %s", d)
	}
	got = nil
	mu.Unlock()
	checks := map[string][2]string{
		"method":     {r.Method, "GET"},
		"uri":        {r.RequestURI, "/healthz?x=1"},
		"ua":         {r.Header.Get("User-Agent"), "kube-probe/" + probes.KubeVersion},
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
	if nconns != 4 {
		t.Errorf("%d connections for 4 probes: keep-alive must be off", conns)
	}
	// User User-Agent and Accept replace the defaults; empty Accept removes it; Host sets the vhost.
	g = spec.HTTPGet{Path: "/", Headers: []spec.HTTPHeader{{Name: "User-Agent", Value: "mine"}, {Name: "Accept", Value: ""}, {Name: "Host", Value: "example.test"}}}
	if out, _, err := httpProbe(t, s, g, answered); out != probes.OutcomeSuccess || err != nil {
		t.Fatalf("probe: %v %v", out, err)
	}
	mu.Lock()
	r = got[0]
	if d := requestDiff(got[0], got[1]); d != "" {
		t.Errorf("plain request differs from net/http's: %s", d)
	}
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
		want probes.Outcome
	}{{200, probes.OutcomeSuccess}, {204, probes.OutcomeSuccess}, {304, probes.OutcomeWarning}, {399, probes.OutcomeWarning}, {400, probes.OutcomeFailure}, {404, probes.OutcomeFailure}, {503, probes.OutcomeFailure}} {
		out, msg, err := httpProbe(t, s, spec.HTTPGet{Path: "/" + strconv.Itoa(tc.code)}, answered)
		if err != nil || out != tc.want {
			t.Fatalf("status %d: %v %q %v, want %v", tc.code, out, msg, err, tc.want)
		}
		if tc.want == probes.OutcomeFailure && msg != "HTTP probe failed with statuscode: "+strconv.Itoa(tc.code) {
			t.Fatalf("status %d message %q", tc.code, msg)
		}
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
		want probes.Outcome
		msg  string
	}{
		{"/to-ok", probes.OutcomeSuccess, ""},
		{"/to-fail", probes.OutcomeFailure, "HTTP probe failed with statuscode: 500"},
		{"/elsewhere", probes.OutcomeWarning, "Probe terminated redirects, Response body: moved"},
		// The kubelet's checker is Go's default: it refuses an 11th
		// request, so 9 redirects are followed and the 10th fails.
		{"/hop/9", probes.OutcomeSuccess, ""},
		{"/hop/10", probes.OutcomeFailure, "stopped after 10 redirects"},
	} {
		out, msg, err := httpProbe(t, s, spec.HTTPGet{Path: tc.path}, answered)
		if err != nil || out != tc.want || !strings.Contains(msg, tc.msg) {
			t.Fatalf("%s: %v %q %v, want %v %q", tc.path, out, msg, err, tc.want, tc.msg)
		}
	}
}

func TestChecklist_18(t *testing.T) {
	s := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer s.Close()
	if out, msg, err := httpProbe(t, s, spec.HTTPGet{Path: "/", Scheme: "HTTPS"}, answered); out != probes.OutcomeSuccess || err != nil {
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
	if err != nil || out != probes.OutcomeFailure || !strings.Contains(msg, "Client.Timeout exceeded") {
		t.Fatalf("slow: %v %q %v", out, msg, err)
	}
	if out, msg, err := httpProbe(t, s, spec.HTTPGet{Path: "/big"}, answered); err != nil || out != probes.OutcomeSuccess {
		t.Fatalf("1 MiB body: %v %q %v", out, msg, err)
	}
	n, err := readAtMost(strings.NewReader(strings.Repeat("x", 1<<20)), make([]byte, probes.MaxRespBodyLength))
	if n != 10<<10 || err != nil {
		t.Fatalf("readAtMost read %d, %v; want 10 KiB", n, err)
	}
}

// BenchmarkHTTPProbe measures one HTTP probe against a loopback server
// through a handler reused across probes, as a worker does.
func BenchmarkHTTPProbe(b *testing.B) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer s.Close()
	port := s.Listener.Addr().(*net.TCPAddr).Port
	h := NewHTTPHandler(&spec.HTTPGet{Path: "/healthz", Scheme: "HTTP"}, port, time.Second, NewHTTPTransport())
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if out, msg, err := h.Probe(ctx, "127.0.0.1"); out != probes.OutcomeSuccess || err != nil {
			b.Fatalf("%v %q %v", out, msg, err)
		}
	}
}
