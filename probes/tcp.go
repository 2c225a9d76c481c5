package probes

import (
	"context"
	"net"
	"strconv"
	"time"
)

// TCPHandler is the tcpSocket probe (pkg/probe/tcp): success once the
// connect completes; no byte is exchanged.
type TCPHandler struct {
	// host overrides the pod IP when set (tcpSocket.host).
	host string
	// port is the resolved port, kept as text for JoinHostPort.
	port string
	// dialer carries the timeout and the 1 s SO_LINGER.
	dialer *net.Dialer
}

var _ Handler = (*TCPHandler)(nil)

// NewTCPHandler returns a TCP handler for host (empty: the pod IP) and port.
func NewTCPHandler(host string, port int, timeout time.Duration) *TCPHandler {
	return &TCPHandler{host: host, port: strconv.Itoa(port), dialer: NewProbeDialer(timeout)}
}

// Probe dials host:port; a dial error or timeout is a Failure whose message
// is the dial error, as DoTCPProbe.
func (h *TCPHandler) Probe(ctx context.Context, podIP string) (Outcome, string, error) {
	host := h.host
	if host == "" {
		host = podIP
	}
	conn, err := h.dialer.DialContext(ctx, "tcp", net.JoinHostPort(host, h.port))
	if err != nil {
		return OutcomeFailure, err.Error(), nil
	}
	// The kubelet only logs a close error: the connect already proved health.
	_ = conn.Close()
	return OutcomeSuccess, "", nil
}
