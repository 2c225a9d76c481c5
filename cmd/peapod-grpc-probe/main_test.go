package main

import (
	"bytes"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func TestRun(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("down", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(s, hs)
	go s.Serve(ln)
	defer s.Stop()
	addr := ln.Addr().String()
	cases := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"-addr", addr, "-timeout", "1s"}, 0, "service healthy"},
		{[]string{"-addr", addr, "-service", "down", "-timeout", "1s"}, 1, `service unhealthy (responded with "NOT_SERVING")`},
		{[]string{"-service", "x"}, 2, ""},
		{[]string{"-addr", addr, "extra"}, 2, ""},
	}
	for _, tc := range cases {
		var stdout, stderr bytes.Buffer
		if code := run(tc.args, &stdout, &stderr); code != tc.code || stdout.String() != tc.out {
			t.Fatalf("run %q = %d %q (stderr %q), want %d %q", tc.args, code, stdout.String(), stderr.String(), tc.code, tc.out)
		}
	}
}
