package e2e

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestRunAsNonRoot: runAsNonRoot with an image that runs as root is the
// kubelet's CreateContainerConfigError, with nothing left behind; with a
// non-root runAsUser the pod runs as that user.
func TestRunAsNonRoot(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	p := newPod("nonroot", ctr("app", "sleep", "1000"))
	p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr(true)}
	_, stderr, code := e.run(podJSON(p), "run", "-d", "-f", "-")
	want := "CreateContainerConfigError: container has runAsNonRoot and image will run as root (pod: \"nonroot_default("
	if code == 0 || !strings.Contains(stderr, want) || !strings.Contains(stderr, "container: app)") {
		t.Fatalf("run: exit %d, stderr %q; want %q", code, stderr, want)
	}
	if out, _, _ := e.run("", "ps", "-A"); strings.Contains(out, "nonroot") {
		t.Errorf("a refused pod is listed:\n%s", out)
	}
	e.assertNoLeak(before)
	p.Spec.SecurityContext.RunAsUser = ptr[int64](1000)
	e.runPod(podJSON(p))
	if got := strings.TrimSpace(e.mustExec("nonroot", "app", "id", "-u")); got != "1000" {
		t.Errorf("id -u = %q, want 1000", got)
	}
}
