package probes

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestKubeVersionMatchesGoMod keeps KubeVersion (and so the probes'
// User-Agent) in sync with the k8s.io/api version in go.mod.
func TestKubeVersionMatchesGoMod(t *testing.T) {
	b, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*k8s\.io/api v0\.(\d+)\.`).FindSubmatch(b)
	if m == nil {
		t.Fatal("k8s.io/api not found in go.mod")
	}
	if want := "1." + string(m[1]); KubeVersion != want {
		t.Fatalf("KubeVersion = %q, go.mod's k8s.io/api is Kubernetes %s", KubeVersion, want)
	}
	if UserAgent != "kube-probe/"+KubeVersion {
		t.Fatalf("UserAgent = %q", UserAgent)
	}
}

// TestLeanDeps keeps the package linkable by the supervisor: stdlib,
// x/sys, runtime/spec, runtime/state (with internal/procfs) and the OCI
// spec types only.
func TestLeanDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	allowed := []string{"golang.org/x/sys/", "github.com/peapod/peapod/runtime/spec", "github.com/peapod/peapod/runtime/state", "github.com/peapod/peapod/internal/procfs", "github.com/peapod/peapod/probes", "github.com/opencontainers/runtime-spec/", "vendor/"}
	for _, dep := range strings.Fields(string(out)) {
		first := strings.SplitN(dep, "/", 2)[0]
		if !strings.Contains(first, ".") {
			continue // standard library
		}
		ok := false
		for _, a := range allowed {
			ok = ok || strings.HasPrefix(dep, a) || dep == strings.TrimSuffix(a, "/")
		}
		if !ok {
			t.Errorf("probes links %s; the supervisor must stay lean", dep)
		}
	}
}
