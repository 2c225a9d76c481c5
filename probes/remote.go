package probes

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Prober process restart backoff: a prober that keeps dying is restarted
// at most this often, doubling up to proberBackoffMax; one that lived
// proberHealthyAfter starts over at proberBackoffMin.
const (
	proberBackoffMin   = 100 * time.Millisecond
	proberBackoffMax   = 5 * time.Second
	proberHealthyAfter = 10 * time.Second
)

// remoteSlack is how long a probe waits beyond its timeout for the prober,
// which enforces the timeout itself, before giving up on it.
const remoteSlack = 2 * time.Second

// maxResponseLine bounds one response line: a 10 KiB body, escaped, plus
// an error text.
const maxResponseLine = 1 << 20

// ErrProberDown marks a probe the prober could not answer: it is not
// running, died with the probe in flight, or did not answer in time. It is
// a probe error, so the result stays as it was, as the kubelet treats
// prober errors.
var ErrProberDown = errors.New("prober not available")

// ProberStarter starts a prober process and returns the write end of its
// request pipe and the read end of its response pipe. Closing the request
// pipe must end the process, also a wedged one.
type ProberStarter func() (requests io.WriteCloser, responses io.ReadCloser, err error)

// RemoteProber runs HTTP and gRPC probes in a helper process, so the
// supervisor links neither net/http nor gRPC. It starts the process on the
// first probe, restarts it with a backoff when it dies, and multiplexes
// the probes of every worker over one pipe pair, matched by id.
type RemoteProber struct {
	// start launches the process.
	start ProberStarter
	// now reads the clock for the restart backoff.
	now func() time.Time
	// slack is remoteSlack (shorter in tests).
	slack time.Duration
	// handles numbers the probe definitions.
	handles atomic.Uint64
	// mu guards the fields below.
	mu sync.Mutex
	// conn is the running process (nil when none).
	conn *proberConn
	// gen counts started processes; a handler defines itself once per gen.
	gen uint64
	// nextID numbers the requests.
	nextID uint64
	// notBefore is when the next start may happen; backoff the current delay.
	notBefore time.Time
	backoff   time.Duration
	// closed is set by Close.
	closed bool
	// wmu serialises writes to the request pipe and guards wbuf.
	wmu sync.Mutex
	// wbuf is the reused request encoding buffer.
	wbuf []byte
}

// proberConn is one prober process.
type proberConn struct {
	// gen is the process's generation.
	gen uint64
	// w is the request pipe.
	w io.WriteCloser
	// started is when the process was started.
	started time.Time
	// pending maps in-flight request ids to the channel of their handler;
	// guarded by RemoteProber.mu.
	pending map[uint64]chan remoteResult
}

// NewRemoteProber returns a prober client that starts its process lazily.
func NewRemoteProber(start ProberStarter) *RemoteProber {
	return &RemoteProber{start: start, now: time.Now, slack: remoteSlack, backoff: proberBackoffMin}
}

// Close stops the prober (it exits when its request pipe closes); probes
// in flight and later report ErrProberDown. It is idempotent.
func (r *RemoteProber) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if c := r.conn; c != nil {
		r.conn = nil
		c.w.Close()
		failPending(c, fmt.Errorf("%w: closed", ErrProberDown))
	}
}

// connLocked returns the running process, starting one if none runs and
// the backoff allows.
func (r *RemoteProber) connLocked() (*proberConn, error) {
	if r.conn != nil {
		return r.conn, nil
	}
	if r.closed {
		return nil, fmt.Errorf("%w: closed", ErrProberDown)
	}
	now := r.now()
	if now.Before(r.notBefore) {
		return nil, fmt.Errorf("%w: restarting in %v", ErrProberDown, r.notBefore.Sub(now).Round(time.Millisecond))
	}
	w, rd, err := r.start()
	if err != nil {
		r.failedLocked(now, false)
		return nil, fmt.Errorf("%w: failed to start it: %w", ErrProberDown, err)
	}
	r.gen++
	c := &proberConn{gen: r.gen, w: w, started: now, pending: make(map[uint64]chan remoteResult)}
	r.conn = c
	go r.read(c, rd)
	return c, nil
}

// failedLocked schedules the next start after a failed start or a death.
func (r *RemoteProber) failedLocked(now time.Time, livedLong bool) {
	if livedLong {
		r.backoff = proberBackoffMin
	}
	r.notBefore = now.Add(r.backoff)
	r.backoff = min(2*r.backoff, proberBackoffMax)
}

// read delivers c's responses until its pipe ends, then fails what is
// still in flight: the process died (or was closed).
func (r *RemoteProber) read(c *proberConn, rd io.ReadCloser) {
	defer rd.Close()
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 0, 4096), maxResponseLine)
	for sc.Scan() {
		res, err := parseResponse(sc.Bytes())
		if err != nil {
			// A garbled stream cannot be resynchronised: drop the process.
			break
		}
		r.mu.Lock()
		if ch, ok := c.pending[res.id]; ok {
			delete(c.pending, res.id)
			deliver(ch, res)
		}
		r.mu.Unlock()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dropLocked(c, fmt.Errorf("%w: it exited with the probe in flight", ErrProberDown))
}

// dropLocked retires process c (closing its request pipe ends it),
// schedules the next start and fails what it had in flight.
func (r *RemoteProber) dropLocked(c *proberConn, err error) {
	if r.conn == c {
		r.conn = nil
		c.w.Close()
		now := r.now()
		r.failedLocked(now, now.Sub(c.started) >= proberHealthyAfter)
	}
	failPending(c, err)
}

// failPending answers every in-flight request of c with err.
func failPending(c *proberConn, err error) {
	for id, ch := range c.pending {
		delete(c.pending, id)
		deliver(ch, remoteResult{id: id, out: OutcomeUnknown, err: err})
	}
}

// deliver hands res to its handler without blocking: a handler's channel
// is drained before each request, so it always has room.
func deliver(ch chan remoteResult, res remoteResult) {
	select {
	case ch <- res:
	default:
	}
}

// RemoteHandler is an HTTP or gRPC probe run by the prober. Like every
// handler it is used by one worker at a time; it reuses its channel, timer
// and encoded definition across probes.
type RemoteHandler struct {
	// r is the shared client.
	r *RemoteProber
	// probe is the definition.
	probe RemoteProbe
	// handle names the definition in the protocol.
	handle uint64
	// gen is the process generation the definition was last sent to
	// (guarded by r.mu).
	gen uint64
	// results receives this handler's responses.
	results chan remoteResult
	// timer bounds the wait for the prober.
	timer *time.Timer
}

var _ Handler = (*RemoteHandler)(nil)

// Handler returns a handler that runs p through the prober.
func (r *RemoteProber) Handler(p RemoteProbe) *RemoteHandler {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &RemoteHandler{r: r, probe: p, handle: r.handles.Add(1), results: make(chan remoteResult, 1), timer: t}
}

// Probe asks the prober to run the probe against podIP and waits for its
// answer, ctx, or the timeout plus remoteSlack.
func (h *RemoteHandler) Probe(ctx context.Context, podIP string) (Outcome, string, error) {
	id, c, define, err := h.register()
	if err != nil {
		return OutcomeUnknown, "", err
	}
	if err := h.send(c, id, define, podIP); err != nil {
		h.unregister(c, id)
		return OutcomeUnknown, "", err
	}
	h.timer.Reset(h.probe.Timeout + h.r.slack)
	defer h.timer.Stop()
	for {
		select {
		case res := <-h.results:
			if res.id == id {
				return res.out, res.msg, res.err
			}
		case <-ctx.Done():
			h.unregister(c, id)
			return OutcomeUnknown, "", ctx.Err()
		case <-h.timer.C:
			// The prober bounds every probe by its timeout: silence past
			// that means it is wedged, so it is replaced.
			h.r.mu.Lock()
			delete(c.pending, id)
			h.r.dropLocked(c, fmt.Errorf("%w: it stopped answering", ErrProberDown))
			h.r.mu.Unlock()
			return h.expired()
		}
	}
}

// register picks a request id on the running process and reports whether
// the definition must be sent first.
func (h *RemoteHandler) register() (uint64, *proberConn, bool, error) {
	r := h.r
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.connLocked()
	if err != nil {
		return 0, nil, false, err
	}
	// A response that arrived after its request was given up is stale.
	select {
	case <-h.results:
	default:
	}
	r.nextID++
	c.pending[r.nextID] = h.results
	define := h.gen != c.gen
	h.gen = c.gen
	return r.nextID, c, define, nil
}

// unregister forgets request id (the response, if any, is dropped).
func (h *RemoteHandler) unregister(c *proberConn, id uint64) {
	h.r.mu.Lock()
	delete(c.pending, id)
	h.r.mu.Unlock()
}

// send writes the request (after the definition when the process has not
// seen it) in one write.
func (h *RemoteHandler) send(c *proberConn, id uint64, define bool, podIP string) error {
	r := h.r
	r.wmu.Lock()
	defer r.wmu.Unlock()
	b := r.wbuf[:0]
	if define {
		b = appendDefine(b, h.handle, &h.probe)
	}
	b = appendProbe(b, id, h.handle, podIP)
	r.wbuf = b
	if _, err := c.w.Write(b); err != nil {
		if define {
			// Send the definition again with the next request.
			r.mu.Lock()
			h.gen = 0
			r.mu.Unlock()
		}
		return fmt.Errorf("%w: failed to send the request: %w", ErrProberDown, err)
	}
	return nil
}

// expired is the result of a probe the prober did not answer in time. A
// gRPC probe keeps the kubelet's timeout failure (the helper process it
// replaces was killed at this point); anything else is a prober error.
func (h *RemoteHandler) expired() (Outcome, string, error) {
	if h.probe.Kind == RemoteGRPC {
		return OutcomeFailure, fmt.Sprintf("timeout: health rpc did not complete within %v", h.probe.Timeout), nil
	}
	return OutcomeUnknown, "", fmt.Errorf("%w: no answer within %v", ErrProberDown, h.probe.Timeout+h.r.slack)
}
