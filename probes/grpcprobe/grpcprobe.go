// Package grpcprobe is the kubelet's gRPC prober (pkg/probe/grpc). It links
// gRPC, so the supervisor never imports it: the peapod-prober helper
// process does, and the supervisor starts that only for pods with an HTTP
// or gRPC probe.
package grpcprobe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/peapod/peapod/probes"
)

// Probe calls grpc.health.v1.Health/Check for service at addr over
// plaintext, the dial and the call together bounded by timeout. It returns
// whether the service is SERVING and the kubelet's message; every network
// outcome is a result, none is an error.
func Probe(addr, service string, timeout time.Duration) (healthy bool, msg string) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	dialer := probes.NewProbeDialer(0)
	// passthrough: the address is the pod IP, handed to the dialer as is
	// (NewClient would otherwise resolve it through DNS).
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithUserAgent(probes.UserAgent),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
			return dialer.DialContext(ctx, "tcp", a)
		}),
	)
	if err == nil {
		err = waitReady(ctx, conn)
		if err != nil {
			_ = conn.Close()
		}
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return false, fmt.Sprintf("timeout: failed to connect service %q within %v: %+v", addr, timeout, err)
		}
		return false, fmt.Sprintf("error: failed to connect service at %q: %+v", addr, err)
	}
	defer func() { _ = conn.Close() }()
	resp, err := healthpb.NewHealthClient(conn).Check(
		metadata.NewOutgoingContext(ctx, make(metadata.MD)),
		&healthpb.HealthCheckRequest{Service: service},
	)
	if err != nil {
		return false, rpcFailure(err, timeout)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return false, fmt.Sprintf("service unhealthy (responded with %q)", resp.GetStatus().String())
	}
	return true, "service healthy"
}

// waitReady connects conn and waits until it is ready or ctx ends: the
// kubelet's blocking dial (WithBlock), which NewClient no longer offers. As
// there, a refused connection is retried until the deadline.
func waitReady(ctx context.Context, conn *grpc.ClientConn) error {
	conn.Connect()
	for {
		st := conn.GetState()
		if st == connectivity.Ready {
			return nil
		}
		if !conn.WaitForStateChange(ctx, st) {
			return ctx.Err()
		}
	}
}

// rpcFailure words a failed Check as the kubelet does.
func rpcFailure(err error, timeout time.Duration) string {
	if st, ok := status.FromError(err); ok {
		switch st.Code() {
		case codes.Unimplemented:
			return fmt.Sprintf("error: this server does not implement the grpc health protocol (grpc.health.v1.Health): %s", st.Message())
		case codes.DeadlineExceeded:
			return fmt.Sprintf("timeout: health rpc did not complete within %v", timeout)
		}
	}
	return fmt.Sprintf("error: health rpc probe failed: %+v", err)
}
