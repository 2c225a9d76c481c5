package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCLIDoesNotLinkCRI keeps gRPC and the CRI API out of the CLI: their
// package initialisation would cost every peapod command about a
// millisecond of start-up and 4 MiB of RSS (measured on this VM), so
// `peapod cri` execs the separate peapod-cri binary instead.
func TestCLIDoesNotLinkCRI(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list returned only %d packages: %q", len(deps), deps)
	}
	for _, d := range deps {
		for _, banned := range []string{"google.golang.org/grpc", "k8s.io/cri-api", "github.com/peapod/peapod/cri"} {
			if d == banned || strings.HasPrefix(d, banned+"/") {
				t.Errorf("peapod links %s; it belongs in peapod-cri", d)
			}
		}
	}
}

// TestCLILinksOnlyJSONPathOfClientGo: -o jsonpath uses client-go's
// jsonpath package, which needs nothing else of client-go (about 250 KiB
// of binary, measured); the clientsets and their API machinery would add
// tens of MiB to every peapod command.
func TestCLILinksOnlyJSONPathOfClientGo(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	allowed := map[string]bool{"k8s.io/client-go/util/jsonpath": true, "k8s.io/client-go/third_party/forked/golang/template": true}
	found := false
	for _, d := range strings.Fields(string(out)) {
		if strings.HasPrefix(d, "k8s.io/client-go/") {
			if !allowed[d] {
				t.Errorf("peapod links %s; only client-go's jsonpath belongs in the CLI", d)
			}
			found = found || d == "k8s.io/client-go/util/jsonpath"
		}
	}
	if !found {
		t.Errorf("peapod does not link k8s.io/client-go/util/jsonpath: -o jsonpath must be Kubernetes' own")
	}
}
