// Command peapod-grpc-probe runs one kubelet-style gRPC health probe and
// reports it the way the supervisor's gRPC handler reads it: exit 0 when
// the service is SERVING, 1 when it is not, 2 on bad usage; the kubelet's
// message on stdout. It exists so the supervisor binary links no gRPC.
//
//	peapod-grpc-probe -addr 10.0.0.5:9000 -service S -timeout 1s
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/peapod/peapod/probes/grpcprobe"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args, probes, prints the message and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("peapod-grpc-probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "host:port of the gRPC server")
	service := fs.String("service", "", "service name for grpc.health.v1.Health/Check")
	timeout := fs.Duration("timeout", time.Second, "bound on dial and call together")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *addr == "" || *timeout <= 0 || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: peapod-grpc-probe -addr host:port [-service S] [-timeout 1s]")
		return 2
	}
	healthy, msg := grpcprobe.Probe(*addr, *service, *timeout)
	fmt.Fprint(stdout, msg)
	if healthy {
		return 0
	}
	return 1
}
