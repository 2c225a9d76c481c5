package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/peapod/peapod/probes"
	"github.com/peapod/peapod/probes/grpcprobe"
	"github.com/peapod/peapod/probes/httpprobe"
)

// maxRequestLine bounds one request line (a definition with its headers).
const maxRequestLine = 1 << 20

// probe is one defined probe: its handler, reused for every run, and the
// lock that runs it once at a time (a handler is not safe for concurrent
// use; the supervisor may re-send a probe it gave up on while the first
// run still waits for its timeout).
type probe struct {
	// mu serialises runs of handler.
	mu sync.Mutex
	// handler runs the probe.
	handler probes.Handler
}

// responder writes answers, one Write per line, from any goroutine.
type responder struct {
	// mu serialises writes and guards buf.
	mu sync.Mutex
	// w is stdout.
	w io.Writer
	// buf is the reused encoding buffer.
	buf []byte
}

// respond writes the answer to request id.
func (r *responder) respond(id uint64, out probes.Outcome, msg string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf = probes.AppendResponse(r.buf[:0], id, out, msg, err)
	if _, werr := r.w.Write(r.buf); werr != nil {
		// The supervisor is gone; stdin's EOF ends serve.
		fmt.Fprintln(os.Stderr, "peapod-prober: failed to write an answer:", werr)
	}
}

// serve reads requests from in until EOF and answers them on out. Probes
// run concurrently, each in its own goroutine; definitions are read in
// order, so a probe always finds the definition sent before it.
func serve(in io.Reader, out io.Writer) error {
	// One transport for every HTTP probe of the pod, as the kubelet's
	// prober: no keep-alive, so it pools nothing, and nothing per probe.
	transport := httpprobe.NewHTTPTransport()
	// Every probe shares one context: a handler caches its request per
	// context, and the timeout is enforced by the handler itself.
	ctx := context.Background()
	res := &responder{w: out}
	defs := make(map[uint64]*probe)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 4096), maxRequestLine)
	for sc.Scan() {
		req, err := probes.ParseRequest(sc.Bytes())
		if err != nil {
			return err
		}
		if req.Define != nil {
			defs[req.Handle] = &probe{handler: newHandler(req.Define, transport)}
			continue
		}
		p := defs[req.Handle]
		if p == nil {
			res.respond(req.ID, probes.OutcomeUnknown, "", fmt.Errorf("probe %d was never defined", req.Handle))
			continue
		}
		go run(ctx, p, req, res)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("failed to read requests: %w", err)
	}
	return nil
}

// run runs one probe and answers it.
func run(ctx context.Context, p *probe, req probes.Request, res *responder) {
	p.mu.Lock()
	out, msg, err := p.handler.Probe(ctx, req.PodIP)
	p.mu.Unlock()
	res.respond(req.ID, out, msg, err)
}

// newHandler builds the handler of a definition.
func newHandler(d *probes.RemoteProbe, transport http.RoundTripper) probes.Handler {
	switch d.Kind {
	case probes.RemoteHTTP:
		return httpprobe.NewHTTPHandler(&d.HTTP, d.Port, d.Timeout, transport)
	case probes.RemoteGRPC:
		return &grpcHandler{port: strconv.Itoa(d.Port), service: d.Service, timeout: d.Timeout}
	}
	return errHandler{fmt.Errorf("unknown probe kind %q", d.Kind)}
}

// grpcHandler is the grpc probe: SERVING is success, anything else a
// failure with the kubelet's message.
type grpcHandler struct {
	// port and service are the probe's target.
	port    string
	service string
	// timeout bounds dial and call together.
	timeout time.Duration
	// addr is the cached pod IP:port; addrIP the pod IP it was built for.
	addr   string
	addrIP string
}

// Probe implements probes.Handler; gRPC probes have no host field.
func (h *grpcHandler) Probe(_ context.Context, podIP string) (probes.Outcome, string, error) {
	if h.addrIP != podIP || h.addr == "" {
		h.addr, h.addrIP = net.JoinHostPort(podIP, h.port), podIP
	}
	healthy, msg := grpcprobe.Probe(h.addr, h.service, h.timeout)
	if !healthy {
		return probes.OutcomeFailure, msg, nil
	}
	return probes.OutcomeSuccess, msg, nil
}

// errHandler answers every probe with an error.
type errHandler struct {
	// err is the error.
	err error
}

func (h errHandler) Probe(context.Context, string) (probes.Outcome, string, error) {
	return probes.OutcomeUnknown, "", h.err
}
