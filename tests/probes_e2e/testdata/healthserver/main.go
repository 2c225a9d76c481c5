// Command healthserver is the gRPC server the probe tests run inside a pod:
// -mode serving or notserving registers grpc.health.v1.Health with that
// status for service ""; -mode file answers SERVING while the file named
// by -file exists and NOT_SERVING otherwise; -mode none serves no health
// service at all.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	port := flag.Int("port", 9090, "port to listen on")
	mode := flag.String("mode", "serving", "serving, notserving, file or none")
	file := flag.String("file", "", "with -mode file: SERVING while this file exists")
	flag.Parse()
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthserver:", err)
		os.Exit(1)
	}
	s := grpc.NewServer()
	switch *mode {
	case "serving", "notserving":
		hs := health.NewServer()
		st := healthpb.HealthCheckResponse_SERVING
		if *mode == "notserving" {
			st = healthpb.HealthCheckResponse_NOT_SERVING
		}
		hs.SetServingStatus("", st)
		healthpb.RegisterHealthServer(s, hs)
	case "file":
		healthpb.RegisterHealthServer(s, fileHealth{path: *file})
	case "none":
	default:
		fmt.Fprintln(os.Stderr, "healthserver: unknown -mode", *mode)
		os.Exit(2)
	}
	if err := s.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "healthserver:", err)
		os.Exit(1)
	}
}

// fileHealth reports SERVING while its file exists, looked up on each Check.
type fileHealth struct {
	healthpb.UnimplementedHealthServer
	// path is the file.
	path string
}

func (f fileHealth) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if _, err := os.Stat(f.path); err != nil {
		return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_NOT_SERVING}, nil
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}
