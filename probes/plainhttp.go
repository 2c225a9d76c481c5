package probes

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/peapod/peapod/runtime/spec"
)

// The kubelet's HTTP probe limits (pkg/probe/http), for both HTTP
// implementations: the body read is capped at 10 KiB, and Go's default
// redirect checker refuses an 11th request.
const (
	MaxRespBodyLength = 10 << 10
	MaxHTTPRequests   = 10
	// maxHeaderBytes bounds a response's status line and headers, as
	// net/http's transport bounds them (MaxResponseHeaderBytes' default).
	maxHeaderBytes = 1 << 20
	// max1xxResponses is how many informational responses net/http skips
	// before it gives up on a server.
	max1xxResponses = 5
)

// ErrNeedsTLS is returned by a PlainHTTPHandler without a fallback when a
// same-host redirect leads to https, which only peapod-prober can speak.
var ErrNeedsTLS = errors.New("redirect to https needs peapod-prober")

// PlainHTTPHandler is the httpGet probe for scheme HTTP, run inside the
// supervisor: one GET over one fresh connection, written and parsed here
// rather than by net/http, which would start a Transport with three
// goroutines per connection, link crypto/tls into every supervisor (its RSS
// is per pod) and, kept out, cost a pipe hop to peapod-prober per probe.
// The request, the redirect rule, the 10 KiB body cap and the outcomes are
// the kubelet's (pkg/probe/http, with Go's client underneath);
// probes/httpprobe's differential test runs both implementations against the
// same servers. It is used by one worker at a time.
type PlainHTTPHandler struct {
	// host overrides the pod IP when set (httpGet.host).
	host string
	// port is the resolved port.
	port int
	// path is httpGet.path as given.
	path string
	// hostHeader is the user's Host header ("": the URL's host).
	hostHeader string
	// userReferer is set when the user's headers carry a Referer, which
	// net/http then keeps through redirects instead of naming the last URL.
	userReferer bool
	// header holds the request's header lines after Host, each ending in
	// CRLF: User-Agent and Accept as newProbeRequest sets them, the user's
	// headers, and Connection: close (no keep-alive, #15643).
	header []byte
	// timeout bounds the whole probe, redirects and body included, as the
	// kubelet's http.Client.Timeout.
	timeout time.Duration
	// fallback runs the whole probe again in peapod-prober when a
	// same-host redirect leads to https (nil: ErrNeedsTLS).
	fallback Handler
	// br reads responses; body receives up to MaxRespBodyLength of each;
	// req is the request being written; hdr holds a header line being
	// unfolded. All are reused across probes.
	br   *bufio.Reader
	body []byte
	req  []byte
	hdr  []byte
	// cl holds a response's Content-Length while its headers are read.
	cl []byte
}

var _ Handler = (*PlainHTTPHandler)(nil)

// NewPlainHTTPHandler returns the handler of an http:// probe whose port is
// already resolved. fallback, which may be nil, runs the probe when a
// redirect leads to https.
func NewPlainHTTPHandler(g *spec.HTTPGet, port int, timeout time.Duration, fallback Handler) *PlainHTTPHandler {
	h := &PlainHTTPHandler{
		host:     g.Host,
		port:     port,
		path:     g.Path,
		timeout:  timeout,
		fallback: fallback,
		br:       bufio.NewReaderSize(nil, 4096),
		body:     make([]byte, MaxRespBodyLength),
	}
	h.hostHeader, h.userReferer, h.header = probeHeaderLines(g.Headers)
	return h
}

// probeHeaderLines renders the request headers as newProbeRequest builds
// them and net/http writes them: user headers canonicalised with repeats
// kept; User-Agent and Accept defaults when the user gave none; an empty
// first Accept removes the header, an empty User-Agent sends none (only the
// first User-Agent is written); CR and LF in values become spaces. The
// first Host value is returned apart, as the request's authority; referer
// reports whether the user set a Referer, which redirects then keep.
func probeHeaderLines(hs []spec.HTTPHeader) (host string, referer bool, lines []byte) {
	type kv struct{ k, v string }
	user := make([]kv, 0, len(hs))
	var ua, accept []string
	for _, x := range hs {
		k := textproto.CanonicalMIMEHeaderKey(x.Name)
		switch k {
		case "Host":
			if host == "" {
				host = x.Value
			}
			continue
		case "User-Agent":
			ua = append(ua, x.Value)
			continue
		case "Accept":
			accept = append(accept, x.Value)
			continue
		case "Referer":
			referer = true
		}
		user = append(user, kv{k, x.Value})
	}
	clean := strings.NewReplacer("\r", " ", "\n", " ")
	var b bytes.Buffer
	write := func(k, v string) {
		b.WriteString(k)
		b.WriteString(": ")
		b.WriteString(clean.Replace(v))
		b.WriteString("\r\n")
	}
	switch {
	case ua == nil:
		write("User-Agent", UserAgent)
	case ua[0] != "":
		write("User-Agent", ua[0])
	}
	switch {
	case accept == nil:
		write("Accept", "*/*")
	case accept[0] != "":
		for _, v := range accept {
			write("Accept", v)
		}
	}
	for _, x := range user {
		write(x.k, x.v)
	}
	write("Connection", "close")
	return host, referer, b.Bytes()
}

// ProbeURL is the kubelet's formatURL: the path goes through url.Parse so a
// query survives; a path that does not parse is used as a plain path.
func ProbeURL(scheme, host string, port int, path string) *url.URL {
	u, err := url.Parse(path)
	if err != nil {
		u = &url.URL{Path: path}
	}
	u.Scheme = scheme
	u.Host = net.JoinHostPort(host, strconv.Itoa(port))
	return u
}

// httpResponse is what one exchange yields.
type httpResponse struct {
	// code is the status code.
	code int
	// location is the Location header ("" when absent).
	location string
	// n is how many body bytes are in the handler's body buffer.
	n int
}

// errTimeout marks an exchange that hit the probe's deadline before the
// response headers were complete.
var errTimeout = errors.New("context deadline exceeded (Client.Timeout exceeded while awaiting headers)")

// Probe runs one probe: GETs, following same-host redirects, until a final
// response. 200-299 is success, 300-399 (a redirect not followed) a warning
// carrying the body, anything else a failure naming the status code only
// (never the body: blind SSRF, #99425). Connection errors and timeouts are
// failures whose message is net/http's error text; a body read error other
// than the size cap is an error, as DoHTTPProbe.
func (h *PlainHTTPHandler) Probe(ctx context.Context, podIP string) (Outcome, string, error) {
	deadline := time.Now().Add(h.timeout)
	host := h.host
	if host == "" {
		host = podIP
	}
	first := ProbeURL("http", host, h.port, h.path)
	// net/http keeps a custom Host only through relative redirects.
	customHost := h.hostHeader != "" && h.hostHeader != first.Host
	u, authority, referer := first, first.Host, ""
	if h.hostHeader != "" {
		authority = h.hostHeader
	}
	for reqs := 1; ; reqs++ {
		// net/http reads a response's body only when it is final: the body
		// of a redirect it follows, or whose Location does not parse, is
		// dropped unread, so its errors do not count.
		final := func(res httpResponse) bool {
			next, err := redirectTarget(res, u)
			return err == nil && (next == nil || next.Hostname() != first.Hostname())
		}
		res, err := h.exchange(ctx, deadline, u, authority, referer, final)
		if err != nil {
			var be *bodyError
			if errors.As(err, &be) {
				return OutcomeFailure, "", fmt.Errorf("failed to read probe response body from %q: %w", u.String(), be.err)
			}
			return OutcomeFailure, (&url.Error{Op: "Get", URL: u.String(), Err: err}).Error(), nil
		}
		next, err := redirectTarget(res, u)
		if err != nil {
			return OutcomeFailure, (&url.Error{Op: "Get", URL: u.String(), Err: err}).Error(), nil
		}
		// Another host name is not followed (#73172): its 3xx is final.
		if next == nil || next.Hostname() != first.Hostname() {
			return HTTPOutcome(res.code, h.body[:res.n])
		}
		if reqs >= MaxHTTPRequests {
			// net/http names the Location as it came in this error.
			return OutcomeFailure, (&url.Error{Op: "Get", URL: res.location, Err: errors.New("stopped after 10 redirects")}).Error(), nil
		}
		if next.Scheme != "http" {
			if h.fallback == nil {
				return OutcomeUnknown, "", ErrNeedsTLS
			}
			// net/http would go on over TLS; peapod-prober runs the probe
			// from its first request instead (the server sees that one twice).
			return h.fallback.Probe(ctx, podIP)
		}
		authority = next.Host
		if customHost && !isAbsLocation(res.location) {
			authority = h.hostHeader
		}
		// net/http names the previous URL, without user info, as Referer.
		if !h.userReferer {
			ref := *u
			ref.User = nil
			referer = ref.String()
		}
		u = next
	}
}

// HTTPOutcome maps a final response to the probe outcome, as DoHTTPProbe:
// 200-299 success, 300-399 (a redirect not followed) a warning carrying the
// body, anything else a failure naming the status code only (never the
// body: blind SSRF, #99425).
func HTTPOutcome(code int, body []byte) (Outcome, string, error) {
	switch {
	case code >= 200 && code < 300:
		// The kubelet only logs a success's body: building it would cost an
		// allocation per probe for nothing.
		return OutcomeSuccess, "", nil
	case code >= 300 && code < 400:
		return OutcomeWarning, "Probe terminated redirects, Response body: " + string(body), nil
	}
	return OutcomeFailure, "HTTP probe failed with statuscode: " + strconv.Itoa(code), nil
}

// redirectTarget returns where net/http's client would go next after res, or nil
// when res is final: only 301, 302, 303, 307 and 308 with a Location are
// followed.
func redirectTarget(res httpResponse, u *url.URL) (*url.URL, error) {
	switch res.code {
	case 301, 302, 303, 307, 308:
	default:
		return nil, nil
	}
	if res.location == "" {
		return nil, nil
	}
	loc, err := u.Parse(res.location)
	if err != nil {
		return nil, fmt.Errorf("failed to parse Location header %q: %w", res.location, err)
	}
	return loc, nil
}

// isAbsLocation reports whether a Location value is an absolute URL.
func isAbsLocation(loc string) bool {
	u, err := url.Parse(loc)
	return err == nil && u.IsAbs()
}

// bodyError wraps a failure to read a response body: the kubelet turns it
// into a probe error rather than a failure.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return e.err.Error() }

// exchange runs one GET of u on a fresh connection and reads the response
// headers and, when final says the response is final, up to
// MaxRespBodyLength of its body into h.body.
func (h *PlainHTTPHandler) exchange(ctx context.Context, deadline time.Time, u *url.URL, authority, referer string, final func(httpResponse) bool) (httpResponse, error) {
	d := net.Dialer{Deadline: deadline, Control: setLinger}
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		if ctx.Err() == nil && isTimeout(err) {
			return httpResponse{}, errTimeout
		}
		return httpResponse{}, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return httpResponse{}, err
	}
	// The deadline is the probe's; the worker's context (the pod stopping)
	// cuts the exchange short too, without a goroutine per probe.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	h.req = append(h.req[:0], "GET "...)
	h.req = append(h.req, u.RequestURI()...)
	h.req = append(h.req, " HTTP/1.1\r\nHost: "...)
	h.req = append(h.req, authority...)
	h.req = append(h.req, "\r\n"...)
	h.req = append(h.req, h.header...)
	if referer != "" {
		h.req = append(h.req, "Referer: "...)
		h.req = append(h.req, referer...)
		h.req = append(h.req, "\r\n"...)
	}
	h.req = append(h.req, "\r\n"...)
	if _, err := conn.Write(h.req); err != nil {
		return httpResponse{}, headerErr(err)
	}
	h.br.Reset(conn)
	res, chunked, length, err := h.readHead()
	if err != nil {
		return res, headerErr(err)
	}
	if !final(res) {
		return res, nil
	}
	res.n, err = h.readBody(res.code, chunked, length)
	if err != nil {
		if isTimeout(err) {
			err = errors.New("context deadline exceeded (Client.Timeout or context cancellation while reading body)")
		}
		return res, &bodyError{err}
	}
	return res, nil
}

// headerErr maps an error before the response headers were complete to
// net/http's wording: a timeout is the client's, anything else breaks the
// transport connection.
func headerErr(err error) error {
	switch {
	case isTimeout(err):
		return errTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return io.EOF
	}
	return fmt.Errorf("net/http: HTTP/1.x transport connection broken: %w", err)
}

// isTimeout reports whether err is a deadline expiry.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// readHead reads the status line and the headers of the final response,
// skipping informational (1xx but 101) responses as net/http does. It keeps
// only what the probe needs: Location and the body's framing, which it
// checks as net/http's ReadResponse does (FuzzPlainHTTPResponse holds the
// two to the same verdicts).
func (h *PlainHTTPHandler) readHead() (res httpResponse, chunked bool, length int64, err error) {
	budget := maxHeaderBytes
	for skipped := 0; ; skipped++ {
		line, err := h.line(&budget)
		if err != nil {
			return res, false, 0, err
		}
		var atLeast11 bool
		res.code, atLeast11, err = parseStatusLine(line)
		if err != nil {
			return res, false, 0, err
		}
		f := framing{cl: h.cl[:0]}
		res.location = ""
		err = h.readMIMEHeader(&budget, func(key, value []byte) {
			switch {
			case bytes.EqualFold(key, []byte("Location")):
				if res.location == "" {
					res.location = string(value)
				}
			default:
				f.add(key, value)
			}
		})
		h.cl = f.cl
		if err != nil {
			return res, false, 0, err
		}
		if chunked, length, err = f.check(atLeast11); err != nil {
			return res, false, 0, err
		}
		if res.code < 100 || res.code > 199 || res.code == 101 {
			return res, chunked, length, nil
		}
		if skipped+1 > max1xxResponses {
			return res, false, 0, errors.New("net/http: too many 1xx informational responses")
		}
	}
}

// framing is what a response's headers say about its body, gathered
// without an allocation in the common case.
type framing struct {
	// te counts Transfer-Encoding values; teChunked is whether the first
	// says chunked.
	te        int
	teChunked bool
	// cl is the first Content-Length value, trimmed (in a buffer reused
	// across probes); clCount counts them, clDiffer is set when one differs.
	cl       []byte
	clCount  int
	clDiffer bool
	// badTrailer is a framing header a Trailer value announces.
	badTrailer string
}

// add notes one header that bears on the framing.
func (f *framing) add(key, value []byte) {
	switch {
	case bytes.EqualFold(key, []byte("Transfer-Encoding")):
		if f.te == 0 {
			f.teChunked = bytes.EqualFold(value, []byte("chunked"))
		}
		f.te++
	case bytes.EqualFold(key, []byte("Content-Length")):
		v := bytes.Trim(value, " \t\r\n") // textproto.TrimString
		if f.clCount == 0 {
			f.cl = append(f.cl[:0], v...)
		} else if !bytes.Equal(v, f.cl) {
			f.clDiffer = true
		}
		f.clCount++
	case bytes.EqualFold(key, []byte("Trailer")):
		for _, k := range bytes.Split(value, []byte(",")) {
			switch k = bytes.Trim(k, " \t\r\n"); {
			case bytes.EqualFold(k, []byte("Transfer-Encoding")), bytes.EqualFold(k, []byte("Trailer")), bytes.EqualFold(k, []byte("Content-Length")):
				f.badTrailer = string(k)
			}
		}
	}
}

// check applies net/http's readTransfer rules: Transfer-Encoding is
// ignored before HTTP/1.1, else it must be one "chunked"; every
// Content-Length must agree and be a number (also beside chunked); a
// chunked body may not announce framing headers as trailers. It returns
// the framing (length -1: none).
func (f *framing) check(atLeast11 bool) (chunked bool, length int64, err error) {
	if f.te > 0 && atLeast11 {
		if f.te != 1 || !f.teChunked {
			return false, 0, errors.New("unsupported transfer encoding")
		}
		chunked = true
	}
	length = -1
	if f.clCount > 0 {
		if f.clDiffer {
			return false, 0, errors.New("http: message cannot contain multiple Content-Length headers")
		}
		n, err := strconv.ParseUint(string(f.cl), 10, 63)
		if err != nil {
			return false, 0, fmt.Errorf("bad Content-Length %q", f.cl)
		}
		length = int64(n)
	}
	if chunked {
		if f.badTrailer != "" {
			return false, 0, fmt.Errorf("bad trailer key %q", f.badTrailer)
		}
		length = -1
	}
	return chunked, length, nil
}

// readMIMEHeader reads header lines up to the empty line with
// textproto.Reader.ReadMIMEHeader's rules: no leading white space on the
// first line, a colon on each field's first line, a line starting with
// white space continues the one before,
// a name of token characters (a space makes it a name nobody matches), a
// value of visible characters, spaces and tabs. It calls fn with each name
// and value; both are valid until the next read.
func (h *PlainHTTPHandler) readMIMEHeader(budget *int, fn func(key, value []byte)) error {
	if b, err := h.br.Peek(1); err == nil && (b[0] == ' ' || b[0] == '\t') {
		line, err := h.line(budget)
		if err != nil {
			return err
		}
		return fmt.Errorf("malformed MIME header initial line: %q", line)
	}
	for {
		line, err := h.line(budget)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
		// The colon must be on the field's first line: textproto checks
		// it before joining continuation lines, so "a" + " :" is
		// refused, not read as a field named "a ".
		if bytes.IndexByte(line, ':') < 0 {
			return fmt.Errorf("malformed MIME header: missing colon: %q", line)
		}
		h.hdr = append(h.hdr[:0], trimOWS(line)...)
		for {
			// A continuation line (obs-fold) joins the one before with a space.
			b, err := h.br.Peek(1)
			if err != nil || (b[0] != ' ' && b[0] != '\t') {
				break
			}
			line, err := h.line(budget)
			if err != nil {
				return err
			}
			h.hdr = append(append(h.hdr, ' '), trimOWS(line)...)
		}
		k, v, ok := bytes.Cut(h.hdr, []byte(":"))
		if !ok || !validHeaderKey(k) {
			return fmt.Errorf("malformed MIME header line: %q", h.hdr)
		}
		for _, c := range v {
			if !validHeaderValueByte(c) {
				return fmt.Errorf("malformed MIME header line: %q", h.hdr)
			}
		}
		if bytes.IndexByte(k, ' ') < 0 {
			fn(k, bytes.TrimLeft(v, " \t"))
		}
	}
}

// trimOWS trims spaces and tabs at both ends.
func trimOWS(b []byte) []byte {
	return bytes.TrimRight(bytes.TrimLeft(b, " \t"), " \t")
}

// validHeaderKey is textproto's rule for a header name: not empty, token
// characters, and spaces (accepted, but such a name is never
// canonicalised, so it matches no header net/http looks for).
func validHeaderKey(k []byte) bool {
	if len(k) == 0 {
		return false
	}
	for _, c := range k {
		if c != ' ' && !validHeaderFieldByte(c) {
			return false
		}
	}
	return true
}

// validHeaderFieldByte reports whether c is a token character (RFC 7230).
func validHeaderFieldByte(c byte) bool {
	return c < 0x80 && c > ' ' && c != 0x7f && !strings.ContainsRune("\"(),/:;<=>?@[\\]{}", rune(c))
}

// validHeaderValueByte reports whether c may appear in a header value:
// visible characters, space, tab and obs-text.
func validHeaderValueByte(c byte) bool {
	return c >= 0x80 || (c >= ' ' && c != 0x7f) || c == '\t'
}

// line reads one line without its "\n" or "\r\n" (one CR only, as
// bufio.Reader.ReadLine), charging it to budget. The slice is valid until
// the next read.
func (h *PlainHTTPHandler) line(budget *int) ([]byte, error) {
	var long []byte
	for {
		b, err := h.br.ReadSlice('\n')
		*budget -= len(b)
		if *budget < 0 {
			return nil, fmt.Errorf("server response headers exceeded %d bytes; aborted", maxHeaderBytes)
		}
		if err == bufio.ErrBufferFull {
			long = append(long, b...)
			continue
		}
		if err != nil {
			return nil, err
		}
		if long != nil {
			b = append(long, b...)
		}
		b = b[:len(b)-1]
		if len(b) > 0 && b[len(b)-1] == '\r' {
			b = b[:len(b)-1]
		}
		return b, nil
	}
}

// parseStatusLine reads the code of "HTTP/1.1 200 OK", checking in
// net/http's order and with its error texts, and reports whether the
// version is at least HTTP/1.1.
func parseStatusLine(line []byte) (code int, atLeast11 bool, err error) {
	proto, status, ok := bytes.Cut(line, []byte(" "))
	if !ok {
		return 0, false, fmt.Errorf("malformed HTTP response %q", line)
	}
	c, _, _ := bytes.Cut(bytes.TrimLeft(status, " "), []byte(" "))
	code, ok = atoi3(c)
	if !ok {
		return 0, false, fmt.Errorf("malformed HTTP status code %q", c)
	}
	if !validHTTPVersion(proto) {
		return 0, false, fmt.Errorf("malformed HTTP version %q", proto)
	}
	return code, proto[5] > '1' || proto[5] == '1' && proto[7] >= '1', nil
}

// validHTTPVersion accepts what http.ParseHTTPVersion accepts: HTTP/1.0,
// HTTP/1.1 and other HTTP/d.d.
func validHTTPVersion(p []byte) bool {
	return len(p) == 8 && bytes.HasPrefix(p, []byte("HTTP/")) && p[5] >= '0' && p[5] <= '9' && p[6] == '.' && p[7] >= '0' && p[7] <= '9'
}

// atoi3 is net/http's status code rule without an allocation: three
// characters that strconv.Atoi reads as a number that is not negative
// ("+20" is 20, "-00" is 0).
func atoi3(c []byte) (int, bool) {
	if len(c) != 3 {
		return 0, false
	}
	digits, neg := c, false
	if c[0] == '+' || c[0] == '-' {
		digits, neg = c[1:], c[0] == '-'
	}
	n := 0
	for _, d := range digits {
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + int(d-'0')
	}
	return n, !neg || n == 0
}

// readBody reads up to MaxRespBodyLength of the body into h.body. A body
// longer than that is truncated, not an error (utilio.ReadAtMost's
// ErrLimitReached is non-fatal in the kubelet); one that ends before its
// Content-Length or chunked terminator is an error.
func (h *PlainHTTPHandler) readBody(code int, chunked bool, length int64) (int, error) {
	switch {
	case code == 204 || code == 304 || (code >= 100 && code < 200):
		return 0, nil
	case chunked:
		return h.readChunked()
	case length >= 0:
		want := int(min(length, int64(len(h.body))))
		n, err := io.ReadFull(h.br, h.body[:want])
		if err == io.EOF && want > 0 {
			err = io.ErrUnexpectedEOF
		}
		return n, err
	}
	// No framing: the body runs to the end of the connection.
	n, err := io.ReadFull(h.br, h.body)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = nil
	}
	return n, err
}

// readChunked decodes a chunked body into h.body up to its capacity, as
// net/http's chunked reader does (a chunk-size line ends in CRLF, sizes are
// up to 16 hex digits, extensions are ignored, chunk data is followed by
// CRLF, at most 16 KiB of non-data); after the last chunk the trailer is
// read and checked, and ignored.
func (h *PlainHTTPHandler) readChunked() (int, error) {
	n := 0
	var excess int64
	for n < len(h.body) {
		line, err := h.chunkLine()
		if err != nil {
			return n, err
		}
		excess += int64(len(line)) + 2
		line, _, _ = bytes.Cut(bytes.TrimRight(line, " \t"), []byte(";"))
		sz, err := parseHexUint(line)
		if err != nil {
			return n, err
		}
		excess = max(excess-(16+2*int64(sz)), 0)
		if excess > 16<<10 {
			return n, errors.New("chunked encoding contains too much non-data")
		}
		if sz == 0 {
			return n, h.readTrailer()
		}
		take := int(min(sz, uint64(len(h.body)-n)))
		m, err := io.ReadFull(h.br, h.body[n:n+take])
		n += m
		if err != nil {
			return n, eofUnexpected(err)
		}
		if uint64(take) < sz {
			// The cap is reached; the rest is never read.
			return n, nil
		}
		var crlf [2]byte
		if _, err := io.ReadFull(h.br, crlf[:]); err != nil {
			return n, eofUnexpected(err)
		}
		if crlf != [2]byte{'\r', '\n'} {
			return n, errors.New("malformed chunked encoding")
		}
	}
	return n, nil
}

// chunkLine reads a chunk-size line, which must end in CRLF and hold no
// other CR, without its CRLF.
func (h *PlainHTTPHandler) chunkLine() ([]byte, error) {
	p, err := h.br.ReadSlice('\n')
	switch {
	case err == io.EOF:
		return nil, io.ErrUnexpectedEOF
	case err == bufio.ErrBufferFull:
		return nil, errors.New("header line too long")
	case err != nil:
		return nil, err
	}
	if i := bytes.IndexByte(p, '\r'); i < 0 {
		return nil, errors.New("chunked line ends with bare LF")
	} else if i != len(p)-2 {
		return nil, errors.New("invalid CR in chunked line")
	}
	return p[:len(p)-2], nil
}

// parseHexUint reads a chunk size: 1 to 16 hex digits.
func parseHexUint(v []byte) (uint64, error) {
	if len(v) == 0 {
		return 0, errors.New("empty hex number for chunk length")
	}
	var n uint64
	for i, b := range v {
		switch {
		case '0' <= b && b <= '9':
			b -= '0'
		case 'a' <= b && b <= 'f':
			b = b - 'a' + 10
		case 'A' <= b && b <= 'F':
			b = b - 'A' + 10
		default:
			return 0, errors.New("invalid byte in chunk length")
		}
		if i == 16 {
			return 0, errors.New("http chunk length too large")
		}
		n = n<<4 | uint64(b)
	}
	return n, nil
}

// readTrailer reads what follows the last chunk as net/http does: a bare
// CRLF, or trailer header lines that a CRLF CRLF ends within one buffer.
func (h *PlainHTTPHandler) readTrailer() error {
	b, err := h.br.Peek(2)
	switch {
	case bytes.Equal(b, []byte("\r\n")):
		_, err := h.br.Discard(2)
		return err
	case len(b) < 2:
		return errors.New("http: unexpected EOF reading trailer")
	case err != nil:
		return err
	}
	if b, _ := h.br.Peek(h.br.Size()); !bytes.Contains(b, []byte("\r\n\r\n")) {
		return errors.New("http: suspiciously long trailer after chunked body")
	}
	budget := maxHeaderBytes
	err = h.readMIMEHeader(&budget, func(_, _ []byte) {})
	if err == io.EOF {
		return errors.New("http: unexpected EOF reading trailer")
	}
	return err
}

// eofUnexpected turns an EOF inside a framed body into io.ErrUnexpectedEOF.
func eofUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
