package probes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// grpcHelperSlack is how long the host runner waits beyond the probe
// timeout before killing a helper that ignored its own deadline.
const grpcHelperSlack = 2 * time.Second

// GRPCHandler is the gRPC probe. The supervisor does not link gRPC, so it
// runs the peapod-grpc-probe helper binary through a host Runner: exit 0 is
// SERVING, exit 1 a failure, and stdout is the kubelet's message.
type GRPCHandler struct {
	// helper is the path of the peapod-grpc-probe binary.
	helper string
	// port and service are the probe's target.
	port    string
	service string
	// timeout is the probe's timeoutSeconds, passed to the helper.
	timeout time.Duration
	// run executes the helper on the host (the node's network namespace).
	run Runner
	// argv is the cached helper command line; argvIP the pod IP it targets.
	argv   []string
	argvIP string
}

var _ Handler = (*GRPCHandler)(nil)

// NewGRPCHandler returns a gRPC handler that runs helper through run.
func NewGRPCHandler(helper string, port int, service string, timeout time.Duration, run Runner) *GRPCHandler {
	return &GRPCHandler{helper: helper, port: strconv.Itoa(port), service: service, timeout: timeout, run: run}
}

// GRPCHelperArgv is the helper's command line for one probe.
func GRPCHelperArgv(helper, addr, service string, timeout time.Duration) []string {
	return []string{helper, "-addr", addr, "-service", service, "-timeout", timeout.String()}
}

// Probe runs the helper against the pod IP (gRPC probes have no host field).
func (h *GRPCHandler) Probe(ctx context.Context, podIP string) (Outcome, string, error) {
	if h.argv == nil || h.argvIP != podIP {
		h.argv = GRPCHelperArgv(h.helper, net.JoinHostPort(podIP, h.port), h.service, h.timeout)
		h.argvIP = podIP
	}
	out, code, err := h.run(ctx, h.argv, h.timeout+grpcHelperSlack)
	if errors.Is(err, ErrExecTimeout) {
		return OutcomeFailure, fmt.Sprintf("timeout: health rpc did not complete within %v", h.timeout), nil
	}
	if err != nil {
		return OutcomeUnknown, "", fmt.Errorf("failed to run grpc probe helper %q: %w", h.helper, err)
	}
	msg := strings.TrimSuffix(string(out), "\n")
	switch code {
	case 0:
		return OutcomeSuccess, msg, nil
	case 1:
		return OutcomeFailure, msg, nil
	}
	return OutcomeUnknown, "", fmt.Errorf("grpc probe helper %q exited with code %d: %s", h.helper, code, out)
}
