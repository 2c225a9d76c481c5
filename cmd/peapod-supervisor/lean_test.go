package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestSupervisorIsLean keeps heavy packages out of the binary that runs
// once per pod: every linked package's init() runs in every supervisor,
// init stage, exec helper and reaper, and its data costs RSS per pod
// (measured on this VM: k8s.io/api alone takes a Go binary from 2.0 to
// 8.7 MiB RSS and 2.3 to 6 ms start-up).
func TestSupervisorIsLean(t *testing.T) {
	// CGO_ENABLED=0 as the supervisor is built (scripts/provision.sh).
	cmd := exec.Command("go", "list", "-deps", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	banned := []string{
		"k8s.io/",                      // Kubernetes types and machinery
		"sigs.k8s.io/",                 // yaml, json
		"gopkg.in/yaml", "go.yaml.in/", // YAML
		"google.golang.org/grpc",                // gRPC (run by peapod-prober)
		"net/http", "crypto/tls", "crypto/x509", // HTTP probes: run by peapod-prober
		"google.golang.org/protobuf",             // its codec
		"github.com/prometheus/",                 // metrics rendering lives in the CLI
		"github.com/google/go-containerregistry", // images
		"github.com/cilium/ebpf",                 // device filter: applied by the CLI
		"github.com/vishvananda/netlink",         // the network is set up by the CLI
		"github.com/google/nftables",
		"github.com/spf13/", // cobra
		"github.com/containernetworking/",
		// cgo lives in peapod-init; the supervisor is built with CGO_ENABLED=0.
		"github.com/peapod/peapod/namespaces/nsenter",
		"runtime/cgo",
	}
	deps := strings.Fields(string(out))
	for _, d := range deps {
		for _, b := range banned {
			if strings.HasPrefix(d, b) {
				t.Errorf("peapod-supervisor links %s (banned prefix %q)", d, b)
			}
		}
	}
	if len(deps) < 10 {
		t.Fatalf("go list returned only %d packages: %q", len(deps), deps)
	}
}
