// Package httpprobe is the kubelet's httpGet prober (pkg/probe/http). It
// links net/http and crypto/tls, so the supervisor never imports it: the
// peapod-prober helper process does, and serves the supervisor's HTTP
// probes through one shared transport.
package httpprobe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/peapod/peapod/probes"
	"github.com/peapod/peapod/runtime/spec"
)

// NewHTTPTransport returns the transport all HTTP probes of a prober share
// (pkg/probe/http.New): no keep-alive, so every probe opens a fresh
// connection and sends Connection: close (stale keep-alive connections once
// failed probes, #15643); no proxy, whatever the node's environment says
// (#68607); no compression; TLS unverified with no client certificate.
func NewHTTPTransport() *http.Transport {
	return &http.Transport{
		Proxy:               http.ProxyURL(nil),
		DialContext:         probes.NewProbeDialer(0).DialContext,
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the kubelet does not verify probe targets
		DisableKeepAlives:   true,
		DisableCompression:  true,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   true,
	}
}

// HTTPHandler is the httpGet probe (pkg/probe/http). It caches its request
// and rebuilds it only when the pod IP changes, and reuses one body buffer;
// it is used by one worker at a time and is not safe for concurrent use.
type HTTPHandler struct {
	// client bounds the whole exchange by the probe timeout and applies the
	// redirect rule; it shares the prober's transport.
	client *http.Client
	// scheme is "http" or "https".
	scheme string
	// host overrides the pod IP when set (httpGet.host).
	host string
	// port is the resolved port.
	port int
	// path is the request path, possibly with a query.
	path string
	// header holds the user headers plus the User-Agent and Accept defaults.
	header http.Header
	// req is the cached request; reqIP and reqCtx are the pod IP and the
	// worker context it was built for.
	req    *http.Request
	reqIP  string
	reqCtx context.Context
	// buf receives up to probes.MaxRespBodyLength of each response body.
	buf []byte
}

var _ probes.Handler = (*HTTPHandler)(nil)

// NewHTTPHandler returns an HTTP handler for a probe whose port is already
// resolved. transport is shared by all handlers of a prober.
func NewHTTPHandler(g *spec.HTTPGet, port int, timeout time.Duration, transport http.RoundTripper) *HTTPHandler {
	scheme := strings.ToLower(g.Scheme)
	if scheme == "" {
		scheme = "http"
	}
	return &HTTPHandler{
		client: &http.Client{
			Transport:     transport,
			Timeout:       timeout,
			CheckRedirect: redirectChecker,
		},
		scheme: scheme,
		host:   g.Host,
		port:   port,
		path:   g.Path,
		header: probeHeaders(g.Headers),
		buf:    make([]byte, probes.MaxRespBodyLength),
	}
}

// probeHeaders builds the request headers as newProbeRequest: user headers
// (canonicalised, repeats kept), then User-Agent and Accept defaults when the
// user gave none; an empty user Accept removes the header, an empty user
// User-Agent sends none.
func probeHeaders(hs []spec.HTTPHeader) http.Header {
	h := make(http.Header, len(hs)+2)
	for _, x := range hs {
		h.Add(x.Name, x.Value)
	}
	if _, ok := h["User-Agent"]; !ok {
		h.Set("User-Agent", probes.UserAgent)
	}
	if _, ok := h["Accept"]; !ok {
		h.Set("Accept", "*/*")
	} else if h.Get("Accept") == "" {
		h.Del("Accept")
	}
	return h
}

// redirectChecker follows redirects to the same host name (any scheme or
// port, #136698) up to probes.MaxHTTPRequests requests and stops at another host, whose 3xx is
// then classified as a warning (#73172).
func redirectChecker(req *http.Request, via []*http.Request) error {
	if req.URL.Hostname() != via[0].URL.Hostname() {
		return http.ErrUseLastResponse
	}
	if len(via) >= probes.MaxHTTPRequests {
		return errors.New("stopped after 10 redirects")
	}
	return nil
}

// request returns the cached request, rebuilding it when the pod IP moved.
func (h *HTTPHandler) request(ctx context.Context, podIP string) (*http.Request, error) {
	if h.req != nil && h.reqIP == podIP && h.reqCtx == ctx {
		return h.req, nil
	}
	host := h.host
	if host == "" {
		host = podIP
	}
	u := probes.ProbeURL(h.scheme, host, h.port, h.path)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("failed to build probe request for %q: %w", u.String(), err)
	}
	req.Header = h.header
	req.Host = h.header.Get("Host")
	h.req, h.reqIP, h.reqCtx = req, podIP, ctx
	return req, nil
}

// Probe runs one GET. 200-299 is success, 300-399 (a redirect that was not
// followed) a warning carrying the body, anything else a failure whose
// message never contains the body (blind SSRF, #99425). Transport errors and
// timeouts are failures; a body read error other than the size cap is an
// error, as DoHTTPProbe.
func (h *HTTPHandler) Probe(ctx context.Context, podIP string) (probes.Outcome, string, error) {
	req, err := h.request(ctx, podIP)
	if err != nil {
		return probes.OutcomeUnknown, "", err
	}
	res, err := h.client.Do(req)
	if err != nil {
		return probes.OutcomeFailure, err.Error(), nil
	}
	defer res.Body.Close()
	n, err := readAtMost(res.Body, h.buf)
	if err != nil {
		return probes.OutcomeFailure, "", fmt.Errorf("failed to read probe response body from %q: %w", req.URL, err)
	}
	return probes.HTTPOutcome(res.StatusCode, h.buf[:n])
}

// readAtMost fills buf from r. A body longer than buf is truncated, not an
// error (utilio.ReadAtMost's ErrLimitReached is non-fatal in the kubelet);
// any other read error, a body cut short of its length included, is one.
func readAtMost(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
