package probes

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/peapod/peapod/runtime/spec"
)

// The prober line protocol. The supervisor writes requests on the
// prober's stdin and reads responses on its stdout, one per line, fields
// separated by tabs; a field escapes backslash, tab and newline, so a
// response body or an error text can hold any byte.
//
//	D <handle> http <timeout-ns> <scheme> <host> <port> <path> [<name> <value>]...
//	D <handle> grpc <timeout-ns> <port> <service>
//	P <id> <handle> <pod-ip>
//	<id> <outcome> <message> <error>        (response)
//
// D defines a probe once per prober process; P runs a defined probe, and
// may be answered in any order. A non-empty error is a probe error.
const (
	// wireDefine starts a definition line.
	wireDefine = "D"
	// wireProbe starts a probe request line.
	wireProbe = "P"
)

// RemoteKind is a probe protocol the prober runs.
type RemoteKind string

// The protocols behind the prober.
const (
	RemoteHTTP RemoteKind = "http"
	RemoteGRPC RemoteKind = "grpc"
)

// ErrBadRequest marks a line the prober cannot parse.
var ErrBadRequest = errors.New("malformed prober request")

// RemoteProbe is a probe definition as the prober receives it; the port is
// already resolved.
type RemoteProbe struct {
	// Kind is the protocol.
	Kind RemoteKind
	// Timeout is the probe's timeoutSeconds.
	Timeout time.Duration
	// Port is the target port.
	Port int
	// HTTP holds scheme, host, path and headers of an http probe (its Port
	// field is unused).
	HTTP spec.HTTPGet
	// Service is the gRPC health service name.
	Service string
}

// Request is one parsed request line: a definition (Define set) or a probe.
type Request struct {
	// Define is the definition of handle Handle; nil for a probe request.
	Define *RemoteProbe
	// Handle names the probe definition.
	Handle uint64
	// ID matches a probe request with its response.
	ID uint64
	// PodIP is the probe's target unless the definition names a host.
	PodIP string
}

// appendDefine encodes the definition of probe p as handle.
func appendDefine(b []byte, handle uint64, p *RemoteProbe) []byte {
	b = append(b, wireDefine...)
	b = appendUint(b, handle)
	b = appendField(b, string(p.Kind))
	b = appendUint(b, uint64(p.Timeout))
	switch p.Kind {
	case RemoteHTTP:
		b = appendField(b, p.HTTP.Scheme)
		b = appendField(b, p.HTTP.Host)
		b = appendUint(b, uint64(p.Port))
		b = appendField(b, p.HTTP.Path)
		for _, h := range p.HTTP.Headers {
			b = appendField(b, h.Name)
			b = appendField(b, h.Value)
		}
	case RemoteGRPC:
		b = appendUint(b, uint64(p.Port))
		b = appendField(b, p.Service)
	}
	return append(b, '\n')
}

// appendProbe encodes a request to run handle against podIP.
func appendProbe(b []byte, id, handle uint64, podIP string) []byte {
	b = append(b, wireProbe...)
	b = appendUint(b, id)
	b = appendUint(b, handle)
	b = appendField(b, podIP)
	return append(b, '\n')
}

// AppendResponse encodes the answer to request id (the prober's side).
func AppendResponse(b []byte, id uint64, out Outcome, msg string, err error) []byte {
	b = strconv.AppendUint(b, id, 10)
	b = appendUint(b, uint64(out))
	b = appendField(b, msg)
	errText := ""
	if err != nil {
		errText = err.Error()
	}
	b = appendField(b, errText)
	return append(b, '\n')
}

// ParseRequest decodes one request line, without its newline (the
// prober's side).
func ParseRequest(line []byte) (Request, error) {
	f := splitFields(line)
	if len(f) < 3 {
		return Request{}, fmt.Errorf("%w: %d fields in %q", ErrBadRequest, len(f), line)
	}
	switch f[0] {
	case wireProbe:
		return parseProbe(f)
	case wireDefine:
		return parseDefine(f)
	}
	return Request{}, fmt.Errorf("%w: unknown kind %q", ErrBadRequest, f[0])
}

// parseProbe decodes the fields of a P line.
func parseProbe(f []string) (Request, error) {
	if len(f) != 4 {
		return Request{}, fmt.Errorf("%w: probe request with %d fields", ErrBadRequest, len(f))
	}
	id, err1 := strconv.ParseUint(f[1], 10, 64)
	handle, err2 := strconv.ParseUint(f[2], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return Request{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return Request{ID: id, Handle: handle, PodIP: f[3]}, nil
}

// parseDefine decodes the fields of a D line.
func parseDefine(f []string) (Request, error) {
	handle, err1 := strconv.ParseUint(f[1], 10, 64)
	p := &RemoteProbe{Kind: RemoteKind(f[2])}
	var timeout uint64
	var err2, err3 error
	switch {
	case p.Kind == RemoteHTTP && len(f) >= 8 && len(f)%2 == 0:
		timeout, err2 = strconv.ParseUint(f[3], 10, 63)
		p.HTTP.Scheme, p.HTTP.Host, p.HTTP.Path = f[4], f[5], f[7]
		p.Port, err3 = parsePort(f[6])
		for i := 8; i < len(f); i += 2 {
			p.HTTP.Headers = append(p.HTTP.Headers, spec.HTTPHeader{Name: f[i], Value: f[i+1]})
		}
	case p.Kind == RemoteGRPC && len(f) == 6:
		timeout, err2 = strconv.ParseUint(f[3], 10, 63)
		p.Port, err3 = parsePort(f[4])
		p.Service = f[5]
	default:
		return Request{}, fmt.Errorf("%w: %s definition with %d fields", ErrBadRequest, p.Kind, len(f))
	}
	if err := errors.Join(err1, err2, err3); err != nil {
		return Request{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	p.Timeout = time.Duration(timeout)
	return Request{Define: p, Handle: handle}, nil
}

// parsePort decodes a port as appendDefine writes it: unsigned, at most
// 65535. A negative one would be written back as a huge unsigned number.
func parsePort(s string) (int, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	return int(n), err
}

// remoteResult is one decoded response.
type remoteResult struct {
	// id is the request it answers.
	id uint64
	// out and msg are the handler's outcome and message.
	out Outcome
	msg string
	// err is the handler's error text ("" for none), or the transport's error.
	err error
}

// parseResponse decodes one response line, without its newline.
func parseResponse(line []byte) (remoteResult, error) {
	f := splitFields(line)
	if len(f) != 4 {
		return remoteResult{}, fmt.Errorf("malformed prober response %q", line)
	}
	id, err1 := strconv.ParseUint(f[0], 10, 64)
	out, err2 := strconv.ParseUint(f[1], 10, 8)
	if err := errors.Join(err1, err2); err != nil {
		return remoteResult{}, fmt.Errorf("malformed prober response %q: %w", line, err)
	}
	r := remoteResult{id: id, out: Outcome(out), msg: f[2]}
	if f[3] != "" {
		r.err = errors.New(f[3])
	}
	return r, nil
}

// appendUint appends a tab and n in decimal.
func appendUint(b []byte, n uint64) []byte {
	return strconv.AppendUint(append(b, '\t'), n, 10)
}

// appendField appends a tab and s, escaped.
func appendField(b []byte, s string) []byte {
	b = append(b, '\t')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b = append(b, '\\', '\\')
		case '\t':
			b = append(b, '\\', 't')
		case '\n':
			b = append(b, '\\', 'n')
		default:
			b = append(b, c)
		}
	}
	return b
}

// splitFields splits a line at its tabs and unescapes each field.
func splitFields(line []byte) []string {
	f := make([]string, 0, 8)
	for {
		i := bytes.IndexByte(line, '\t')
		if i < 0 {
			return append(f, unescape(line))
		}
		f = append(f, unescape(line[:i]))
		line = line[i+1:]
	}
}

// unescape reverses appendField's escaping.
func unescape(b []byte) string {
	if bytes.IndexByte(b, '\\') < 0 {
		return string(b)
	}
	var s strings.Builder
	s.Grow(len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '\\' && i+1 < len(b) {
			i++
			switch b[i] {
			case 't':
				c = '\t'
			case 'n':
				c = '\n'
			default:
				c = b[i]
			}
		}
		s.WriteByte(c)
	}
	return s.String()
}
