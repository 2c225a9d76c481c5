package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/peapod/peapod/probes"
	"github.com/peapod/peapod/runtime/spec"
)

// inProcess starts serve on pipes, as the supervisor starts the binary.
func inProcess(t *testing.T) *probes.RemoteProber {
	t.Helper()
	var wg sync.WaitGroup
	r := probes.NewRemoteProber(func() (io.WriteCloser, io.ReadCloser, error) {
		reqR, reqW := io.Pipe()
		resR, resW := io.Pipe()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := serve(reqR, resW); err != nil {
				t.Errorf("serve: %v", err)
			}
			resW.Close()
		}()
		return reqW, resR, nil
	})
	t.Cleanup(func() { r.Close(); wg.Wait() })
	return r
}

// answered is the timeout of probes the tests expect an answer to: only a
// hang may reach it, so a loaded machine cannot turn an answer into a
// timeout, and an answer returns as soon as it comes.
const answered = time.Minute

func port(t *testing.T, addr string) int {
	t.Helper()
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return a.Port
}

func TestServeHTTP(t *testing.T) {
	var mu sync.Mutex
	var agents []string
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		agents = append(agents, r.Header.Get("User-Agent")+" "+r.Header.Get("X-Tab"))
		mu.Unlock()
		switch r.URL.Path {
		case "/503":
			w.WriteHeader(503)
		case "/elsewhere":
			w.Header().Set("Location", "http://localhost:1/ok")
			w.WriteHeader(http.StatusFound)
			fmt.Fprint(w, "moved\tline\nnext")
		}
	}))
	defer s.Close()
	r := inProcess(t)
	p := port(t, s.Listener.Addr().String())
	cases := []struct {
		path string
		out  probes.Outcome
		msg  string
	}{
		{"/ok", probes.OutcomeSuccess, ""},
		{"/503", probes.OutcomeFailure, "HTTP probe failed with statuscode: 503"},
		{"/elsewhere", probes.OutcomeWarning, "Probe terminated redirects, Response body: moved\tline\nnext"},
	}
	for _, tc := range cases {
		h := r.Handler(probes.RemoteProbe{Kind: probes.RemoteHTTP, Timeout: answered, Port: p,
			HTTP: spec.HTTPGet{Scheme: "HTTP", Path: tc.path, Headers: []spec.HTTPHeader{{Name: "X-Tab", Value: "a\tb"}}}})
		for range 2 {
			out, msg, err := h.Probe(context.Background(), "127.0.0.1")
			if out != tc.out || msg != tc.msg || err != nil {
				t.Errorf("%s: %v %q %v, want %v %q", tc.path, out, msg, err, tc.out, tc.msg)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := "kube-probe/" + probes.KubeVersion + " a\tb"; len(agents) != 6 || agents[0] != want {
		t.Errorf("requests %q, want 6 with %q", agents, want)
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	cp := port(t, closed.Listener.Addr().String())
	closed.Close()
	h := r.Handler(probes.RemoteProbe{Kind: probes.RemoteHTTP, Timeout: answered, Port: cp, HTTP: spec.HTTPGet{Scheme: "HTTP", Path: "/"}})
	if out, msg, err := h.Probe(context.Background(), "127.0.0.1"); out != probes.OutcomeFailure || err != nil || !strings.Contains(msg, "connection refused") {
		t.Errorf("closed port: %v %q %v", out, msg, err)
	}
}

func TestServeGRPC(t *testing.T) {
	serveGRPC := func(register func(*grpc.Server)) int {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := grpc.NewServer()
		register(s)
		go s.Serve(ln)
		t.Cleanup(s.Stop)
		return port(t, ln.Addr().String())
	}
	hs := health.NewServer()
	hs.SetServingStatus("down", healthpb.HealthCheckResponse_NOT_SERVING)
	withHealth := serveGRPC(func(s *grpc.Server) { healthpb.RegisterHealthServer(s, hs) })
	without := serveGRPC(func(*grpc.Server) {})
	r := inProcess(t)
	cases := []struct {
		port    int
		service string
		out     probes.Outcome
		msg     string
	}{
		{withHealth, "", probes.OutcomeSuccess, "service healthy"},
		{withHealth, "down", probes.OutcomeFailure, `service unhealthy (responded with "NOT_SERVING")`},
		{without, "", probes.OutcomeFailure, "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): unknown service grpc.health.v1.Health"},
	}
	for _, tc := range cases {
		h := r.Handler(probes.RemoteProbe{Kind: probes.RemoteGRPC, Timeout: answered, Port: tc.port, Service: tc.service})
		if out, msg, err := h.Probe(context.Background(), "127.0.0.1"); out != tc.out || msg != tc.msg || err != nil {
			t.Errorf("port %d service %q: %v %q %v, want %v %q", tc.port, tc.service, out, msg, err, tc.out, tc.msg)
		}
	}
}

func TestServeRejects(t *testing.T) {
	var out strings.Builder
	if err := serve(strings.NewReader("P\t1\t99\t10.0.0.1\nD\t1\tftp\t1\t2\t3\n"), &out); err == nil {
		t.Fatal("a malformed line must end serve")
	}
	if !strings.HasPrefix(out.String(), "1\t3\t\tprobe 99 was never defined\n") {
		t.Fatalf("answer to an undefined probe: %q", out.String())
	}
}

// BenchmarkServeHTTP is one HTTP probe through the protocol, as the
// supervisor runs it: request encoding, pipe, prober, shared transport.
func BenchmarkServeHTTP(b *testing.B) {
	s := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer s.Close()
	r := probes.NewRemoteProber(func() (io.WriteCloser, io.ReadCloser, error) {
		reqR, reqW := io.Pipe()
		resR, resW := io.Pipe()
		go func() { serve(reqR, resW); resW.Close() }()
		return reqW, resR, nil
	})
	defer r.Close()
	h := r.Handler(probes.RemoteProbe{Kind: probes.RemoteHTTP, Timeout: time.Second,
		Port: s.Listener.Addr().(*net.TCPAddr).Port, HTTP: spec.HTTPGet{Scheme: "HTTP", Path: "/healthz"}})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if out, msg, err := h.Probe(ctx, "127.0.0.1"); out != probes.OutcomeSuccess || err != nil {
			b.Fatalf("%v %q %v", out, msg, err)
		}
	}
}
