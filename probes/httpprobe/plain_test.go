package httpprobe

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peapod/peapod/probes"
	"github.com/peapod/peapod/runtime/spec"
)

// requestDiff names what differs between two requests as a server sees
// them: method, URI, Host, Connection: close and every header.
func requestDiff(a, b *http.Request) string {
	var d []string
	if a.Method != b.Method || a.RequestURI != b.RequestURI || a.Host != b.Host || a.Close != b.Close || a.Proto != b.Proto {
		d = append(d, fmt.Sprintf("%s %s %s host %q close %v vs %s %s %s host %q close %v",
			a.Method, a.RequestURI, a.Proto, a.Host, a.Close, b.Method, b.RequestURI, b.Proto, b.Host, b.Close))
	}
	if !reflect.DeepEqual(a.Header, b.Header) {
		d = append(d, fmt.Sprintf("headers %v vs %v", a.Header, b.Header))
	}
	return strings.Join(d, "; ")
}

// rawResponses are answers written straight to the connection, for what
// net/http's server would not send.
var rawResponses = map[string]string{
	"/raw/close":      "",
	"/raw/garbage":    "hello there\r\n\r\n",
	"/raw/badcode":    "HTTP/1.1 2x0 OK\r\n\r\n",
	"/raw/continue":   "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"/raw/short":      "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b",
	"/raw/short3xx":   "HTTP/1.1 302 Found\r\nContent-Length: 100\r\n\r\nonly ten b",
	"/raw/unframed":   "HTTP/1.1 301 Moved\r\n\r\nto the end of the connection",
	"/raw/chunked":    "HTTP/1.1 300 Multiple\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
	"/raw/badchunk":   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
	"/raw/cutchunk":   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nhello",
	"/raw/lf":         "HTTP/1.0 404 Not Found\nContent-Length: 0\n\n",
	"/raw/noreason":   "HTTP/1.1 503\r\nContent-Length: 0\r\n\r\n",
	"/raw/noloc":      "HTTP/1.1 302 Found\r\nContent-Length: 4\r\n\r\nnope",
	"/raw/badloc":     "HTTP/1.1 302 Found\r\nLocation: http://[::1\r\nContent-Length: 0\r\n\r\n",
	"/raw/noredirect": "HTTP/1.1 304 Not Modified\r\nLocation: /ok\r\nContent-Length: 0\r\n\r\n",
	// The colon of a continued field on its second line (found by the fuzzer).
	"/raw/foldcolon": "HTTP/1.1 200 OK\r\nX-Name\r\n : v\r\nContent-Length: 0\r\n\r\n",
}

// diffServer answers every path the differential test probes.
func diffServer(t *testing.T) (*httptest.Server, *[]*http.Request, *sync.Mutex) {
	var mu sync.Mutex
	var seen []*http.Request
	var port int
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r)
		mu.Unlock()
		p := r.URL.Path
		if raw, ok := rawResponses[p]; ok {
			conn, bw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			bw.WriteString(raw)
			bw.Flush()
			conn.Close()
			return
		}
		switch {
		case p == "/ok":
			fmt.Fprint(w, "fine")
		case strings.HasPrefix(p, "/code/"):
			code, _ := strconv.Atoi(strings.TrimPrefix(p, "/code/"))
			w.WriteHeader(code)
			fmt.Fprint(w, "secret body")
		case p == "/stream":
			// Chunked by net/http: flushed before the handler returns.
			w.Write([]byte("part one, "))
			w.(http.Flusher).Flush()
			w.Write([]byte("part two"))
		case p == "/big":
			w.Write(make([]byte, 1<<20))
		case p == "/big3xx":
			w.WriteHeader(http.StatusMultipleChoices)
			w.Write([]byte(strings.Repeat("y", 20<<10)))
		case p == "/to-ok":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case p == "/to-fail":
			http.Redirect(w, r, "/code/500", http.StatusMovedPermanently)
		case p == "/to-query":
			http.Redirect(w, r, "/ok?a=b&c=%20d", http.StatusTemporaryRedirect)
		case p == "/to-abs":
			http.Redirect(w, r, fmt.Sprintf("http://127.0.0.1:%d/ok", port), http.StatusSeeOther)
		case p == "/elsewhere":
			w.Header().Set("Location", fmt.Sprintf("http://localhost:%d/ok", port))
			w.WriteHeader(http.StatusPermanentRedirect)
			fmt.Fprint(w, "moved")
		case strings.HasPrefix(p, "/hop/"):
			n, _ := strconv.Atoi(strings.TrimPrefix(p, "/hop/"))
			if n > 0 {
				http.Redirect(w, r, "/hop/"+strconv.Itoa(n-1), http.StatusFound)
			}
		case p == "/slow":
			<-r.Context().Done()
		case p == "/slowbody":
			w.Header().Set("Content-Length", "100")
			w.Write([]byte("start"))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}
	}))
	t.Cleanup(s.Close)
	port = serverPort(t, s)
	return s, &seen, &mu
}

// TestPlainMatchesNetHTTP is the differential test of the supervisor's
// plain HTTP probe: every case runs through net/http (the kubelet's client,
// as peapod-prober runs it) and through probes.PlainHTTPHandler against the
// same server, and both must give the same outcome, message and error-ness,
// and send the same requests.
func TestPlainMatchesNetHTTP(t *testing.T) {
	s, seen, mu := diffServer(t)
	paths := []string{
		"/ok", "/code/204", "/code/299", "/code/300", "/code/304", "/code/399", "/code/400", "/code/404", "/code/500",
		"/stream", "/big", "/big3xx", "/to-ok", "/to-fail", "/to-query", "/to-abs", "/elsewhere", "/hop/9", "/hop/10",
		"/slowbody", "/slow",
	}
	for p := range rawResponses {
		paths = append(paths, p)
	}
	headers := []spec.HTTPHeader{{Name: "x-one", Value: "1"}, {Name: "X-ONE", Value: "2"}, {Name: "Host", Value: "vhost.test"}, {Name: "accept", Value: "text/plain"}}
	for _, p := range paths {
		for _, hs := range [][]spec.HTTPHeader{nil, headers} {
			g := spec.HTTPGet{Path: p, Scheme: "HTTP", Headers: hs}
			mu.Lock()
			*seen = nil
			mu.Unlock()
			// Only /slow and /slowbody are about the timeout; every other
			// path must be answered, however loaded the machine, and
			// returns as soon as it is.
			timeout := answered
			if strings.HasPrefix(p, "/slow") {
				timeout = 300 * time.Millisecond
			}
			httpProbe(t, s, g, timeout)
			mu.Lock()
			reqs := *seen
			mu.Unlock()
			if len(reqs)%2 != 0 {
				t.Errorf("%s: %d requests, not the same number from each client", p, len(reqs))
				continue
			}
			for i, half := 0, len(reqs)/2; i < half; i++ {
				if d := requestDiff(reqs[i], reqs[half+i]); d != "" {
					t.Errorf("%s request %d: %s", p, i, d)
				}
			}
		}
	}
	// Nothing listens: both give the dial error.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	g := spec.HTTPGet{Path: "/", Scheme: "HTTP"}
	out, msg, err := NewHTTPHandler(&g, closed, answered, NewHTTPTransport()).Probe(context.Background(), "127.0.0.1")
	pout, pmsg, perr := probes.NewPlainHTTPHandler(&g, closed, answered, nil).Probe(context.Background(), "127.0.0.1")
	if out != probes.OutcomeFailure || pout != out || pmsg != msg || err != nil || perr != nil {
		t.Errorf("refused: net/http %v %q %v; plain %v %q %v", out, msg, err, pout, pmsg, perr)
	}
}

// TestPlainHandsHTTPSToProber checks that a plain probe redirected to
// https on the same host is run by the fallback, and is a probe error
// without one.
func TestPlainHandsHTTPSToProber(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer tlsSrv.Close()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://127.0.0.1:"+strconv.Itoa(serverPort(t, tlsSrv))+"/", http.StatusFound)
	}))
	defer s.Close()
	g := spec.HTTPGet{Path: "/", Scheme: "HTTP"}
	fallback := NewHTTPHandler(&g, serverPort(t, s), answered, NewHTTPTransport())
	out, msg, err := probes.NewPlainHTTPHandler(&g, serverPort(t, s), answered, fallback).Probe(context.Background(), "127.0.0.1")
	if out != probes.OutcomeSuccess || err != nil {
		t.Errorf("with fallback: %v %q %v, want success through TLS", out, msg, err)
	}
	if _, _, err := probes.NewPlainHTTPHandler(&g, serverPort(t, s), answered, nil).Probe(context.Background(), "127.0.0.1"); err != probes.ErrNeedsTLS {
		t.Errorf("without fallback: error %v, want ErrNeedsTLS", err)
	}
}

// TestPlainStopsWithContext checks that cancelling the worker's context
// ends a probe in flight at once, well before its timeout.
func TestPlainStopsWithContext(t *testing.T) {
	accepted := make(chan struct{}, 1)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		accepted <- struct{}{}
		<-r.Context().Done()
	}))
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	g := spec.HTTPGet{Path: "/", Scheme: "HTTP"}
	h := probes.NewPlainHTTPHandler(&g, serverPort(t, s), time.Hour, nil)
	done := make(chan probes.Outcome, 1)
	go func() {
		out, _, _ := h.Probe(ctx, "127.0.0.1")
		done <- out
	}()
	<-accepted
	cancel()
	if out := <-done; out != probes.OutcomeFailure {
		t.Errorf("cancelled probe: %v, want failure", out)
	}
}

// BenchmarkPlainHTTPProbe measures one probe through the supervisor's
// plain handler, reused across probes as a worker reuses it; compare with
// BenchmarkHTTPProbe (net/http).
func BenchmarkPlainHTTPProbe(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	// A minimal server, so the benchmark weighs the client.
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					l, err := br.ReadString('\n')
					if err != nil || l == "\r\n" {
						break
					}
				}
				c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
			}()
		}
	}()
	g := spec.HTTPGet{Path: "/healthz", Scheme: "HTTP"}
	h := probes.NewPlainHTTPHandler(&g, ln.Addr().(*net.TCPAddr).Port, time.Second, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if out, msg, err := h.Probe(ctx, "127.0.0.1"); out != probes.OutcomeSuccess || err != nil {
			b.Fatalf("%v %q %v", out, msg, err)
		}
	}
}
