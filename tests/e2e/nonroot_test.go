package e2e

import (
	"slices"
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

// TestSupplementalGroupsPolicy: the pod's supplementalGroupsPolicy is
// accepted (Strict as well as Merge, anything else refused naming the
// field), the process gets its primary gid (from the image's /etc/passwd:
// 0 for a uid it lacks) with the listed groups, and `peapod get -o json`
// reports the identity the running process has, as the kubelet does.
func TestSupplementalGroupsPolicy(t *testing.T) {
	e := newEnv(t)
	p := newPod("groups", ctr("app", "sleep", "1000"))
	p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr[int64](1000), SupplementalGroups: []int64{5, 6},
		SupplementalGroupsPolicy: ptr[corev1.SupplementalGroupsPolicy]("Loose")}
	_, stderr, code := e.run(podJSON(p), "run", "-d", "-f", "-")
	if code == 0 || !strings.Contains(stderr, `spec.securityContext.supplementalGroupsPolicy: Unsupported value: "Loose"`) {
		t.Fatalf("run with policy Loose: exit %d, stderr %q; want the field refused", code, stderr)
	}
	p.Spec.SecurityContext.SupplementalGroupsPolicy = ptr(corev1.SupplementalGroupsPolicyStrict)
	e.runPod(podJSON(p))
	if got := strings.TrimSpace(e.mustExec("groups", "app", "id", "-G")); got != "0 5 6" {
		t.Errorf("id -G = %q, want 0 5 6", got)
	}
	got := e.get("groups").Status.ContainerStatuses
	if len(got) != 1 || got[0].User == nil || got[0].User.Linux == nil {
		t.Fatalf("containerStatuses = %+v, want one with user.linux", got)
	}
	if u := got[0].User.Linux; u.UID != 1000 || u.GID != 0 || !slices.Equal(u.SupplementalGroups, []int64{0, 5, 6}) {
		t.Errorf("containerStatuses[0].user.linux = %+v, want uid 1000, gid 0, groups [0 5 6]", u)
	}
}
