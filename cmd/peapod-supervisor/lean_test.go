package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// heavy are packages no per-pod or in-container binary may link: every
// linked package's init() runs in every supervisor, init stage and exec
// helper, and its text costs RSS per pod (measured on this VM: k8s.io/api
// alone takes a Go binary from 2.0 to 8.7 MiB RSS and 2.3 to 6 ms start-up).
var heavy = []string{
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
	// The seccomp compiler and the default profile: compiled by the CLI,
	// the init and exec stages only load the bytes.
	"github.com/peapod/peapod/seccomp", "github.com/elastic/go-seccomp-bpf", "github.com/moby/profiles/",
	"golang.org/x/net/bpf",
}

// initOnly are what only the in-container stages use: the child side of a
// container start and its dependencies live in peapod-init, for the
// instant between fork and execve, never in the resident supervisor.
var initOnly = []string{
	"github.com/peapod/peapod/namespaces/containerinit", // the init and exec stages
	"github.com/peapod/peapod/namespaces/nsenter",       // the cgo constructor
	"github.com/cyphar/filepath-securejoin",             // pathrs-lite: mounts resolved inside the rootfs
	"github.com/moby/sys/capability",                    // credentials before execve
	"runtime/cgo",                                       // the supervisor is pure Go
}

// TestBinariesAreLean checks the dependencies of the per-pod supervisor and
// of peapod-init, each built as scripts/provision.sh builds it.
func TestBinariesAreLean(t *testing.T) {
	for _, tt := range []struct {
		pkg    string
		cgo    bool
		banned []string
		// needed must be linked: it proves the listing is the real one.
		needed []string
	}{
		{".", false, append(heavy, initOnly...), []string{"github.com/peapod/peapod/namespaces"}},
		{"../peapod-init", true, heavy, initOnly},
	} {
		t.Run(tt.pkg, func(t *testing.T) {
			cmd := exec.Command("go", "list", "-deps", tt.pkg)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if tt.cgo {
				cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
			}
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list -deps %s: %v", tt.pkg, err)
			}
			deps := strings.Fields(string(out))
			for _, d := range deps {
				for _, b := range tt.banned {
					if strings.HasPrefix(d, b) {
						t.Errorf("%s links %s (banned prefix %q)", tt.pkg, d, b)
					}
				}
			}
			if len(deps) < 10 {
				t.Fatalf("go list returned only %d packages: %q", len(deps), deps)
			}
			for _, n := range tt.needed {
				if !hasPrefix(deps, n) {
					t.Errorf("%s does not link %s: the dependency listing is not what it checks", tt.pkg, n)
				}
			}
		})
	}
}

// hasPrefix reports whether a package in deps starts with prefix.
func hasPrefix(deps []string, prefix string) bool {
	for _, d := range deps {
		if strings.HasPrefix(d, prefix) {
			return true
		}
	}
	return false
}
