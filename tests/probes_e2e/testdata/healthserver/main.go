// Command healthserver is the gRPC server the probe tests run inside a pod:
// -mode serving or notserving registers grpc.health.v1.Health with that
// status for service ""; -mode none serves no health service at all.
package main

import (
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
	mode := flag.String("mode", "serving", "serving, notserving or none")
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
