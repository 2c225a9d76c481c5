package grpcprobe

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// serve starts a gRPC server on a loopback port, with register adding its
// services, and returns its address.
func serve(t *testing.T, register func(*grpc.Server)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	register(s)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

// slowHealth answers Check only when the caller gives up.
type slowHealth struct {
	healthpb.UnimplementedHealthServer
}

func (slowHealth) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestChecklist_24(t *testing.T) {
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("down", healthpb.HealthCheckResponse_NOT_SERVING)
	withHealth := serve(t, func(s *grpc.Server) { healthpb.RegisterHealthServer(s, hs) })
	without := serve(t, func(*grpc.Server) {})
	slow := serve(t, func(s *grpc.Server) { healthpb.RegisterHealthServer(s, slowHealth{}) })
	cases := []struct {
		name, addr, service string
		healthy             bool
		msg                 string
	}{
		{"serving", withHealth, "", true, "service healthy"},
		{"not serving", withHealth, "down", false, `service unhealthy (responded with "NOT_SERVING")`},
		{"unknown service", withHealth, "nope", false, "error: health rpc probe failed: "},
		{"no health service", without, "", false, "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): unknown service grpc.health.v1.Health"},
		{"slow", slow, "", false, "timeout: health rpc did not complete within 300ms"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Only the slow case is about the timeout; the others must be
			// answered, however loaded the machine, and return as soon as
			// they are.
			timeout := time.Minute
			if tc.name == "slow" {
				timeout = 300 * time.Millisecond
			}
			start := time.Now()
			healthy, msg := Probe(tc.addr, tc.service, timeout)
			if healthy != tc.healthy || !strings.HasPrefix(msg, tc.msg) {
				t.Fatalf("Probe = %v %q, want %v %q", healthy, msg, tc.healthy, tc.msg)
			}
			if tc.name == "slow" && time.Since(start) > 2*time.Second {
				t.Fatalf("took %v, want about the timeout", time.Since(start))
			}
		})
	}
	// Nothing listening: the blocking dial runs into the deadline.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	if healthy, msg := Probe(addr, "", 200*time.Millisecond); healthy || !strings.HasPrefix(msg, `timeout: failed to connect service "`+addr+`" within 200ms`) {
		t.Fatalf("closed port: %v %q", healthy, msg)
	}
}
