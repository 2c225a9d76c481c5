package httpprobe

import (
	"bufio"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peapod/peapod/probes"
	"github.com/peapod/peapod/runtime/spec"
)

// rawServer answers every connection on loopback with the bytes of the
// current fuzz input, once the request's headers are in, then closes it.
type rawServer struct {
	// ln is the listener; port its port.
	ln   net.Listener
	port int
	// mu guards resp, the answer to write.
	mu   sync.Mutex
	resp []byte
}

// newRawServer starts a rawServer, stopped when the test ends.
func newRawServer(tb testing.TB) *rawServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &rawServer{ln: ln, port: ln.Addr().(*net.TCPAddr).Port}
	tb.Cleanup(func() { ln.Close() })
	go s.serve()
	return s
}

func (s *rawServer) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			br := bufio.NewReader(c)
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if l == "\r\n" {
					break
				}
			}
			s.mu.Lock()
			resp := s.resp
			s.mu.Unlock()
			_, _ = c.Write(resp)
		}()
	}
}

// responseMessage reports whether a probe message was built from an HTTP
// response (status code or redirect body) rather than from a transport
// error, whose wording may differ between the two clients.
func responseMessage(out probes.Outcome, msg string) bool {
	return out != probes.OutcomeFailure || strings.HasPrefix(msg, "HTTP probe failed with statuscode: ")
}

// FuzzPlainHTTPResponse is the differential test of the supervisor's own
// HTTP/1.1 response parser (probes.PlainHTTPHandler) against net/http, the
// kubelet's client, on whatever bytes a container answers: both must reach
// the same outcome and the same error-ness, and the same message whenever
// the message comes from the response. A plain probe redirected to https
// falls back to net/http, as in peapod-prober.
func FuzzPlainHTTPResponse(f *testing.F) {
	for _, raw := range rawResponses {
		f.Add([]byte(raw))
	}
	s := newRawServer(f)
	g := spec.HTTPGet{Path: "/healthz", Scheme: "HTTP"}
	const timeout = 2 * time.Second
	f.Fuzz(func(t *testing.T, resp []byte) {
		s.mu.Lock()
		s.resp = resp
		s.mu.Unlock()
		netHTTP := NewHTTPHandler(&g, s.port, timeout, NewHTTPTransport())
		out, msg, err := netHTTP.Probe(context.Background(), "127.0.0.1")
		plain := probes.NewPlainHTTPHandler(&g, s.port, timeout, NewHTTPHandler(&g, s.port, timeout, NewHTTPTransport()))
		pout, pmsg, perr := plain.Probe(context.Background(), "127.0.0.1")
		if pout != out || (perr == nil) != (err == nil) ||
			(responseMessage(out, msg) || responseMessage(pout, pmsg)) && pmsg != msg {
			t.Fatalf("response %q:\nnet/http gives %v %q %v\nplain    gives %v %q %v", resp, out, msg, err, pout, pmsg, perr)
		}
	})
}
