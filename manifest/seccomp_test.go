package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/peapod/peapod/runtime/spec"
	"github.com/peapod/peapod/seccomp"
)

// TestToSpecSeccomp: which profile each container gets, as the kubelet
// picks it, and that a filter is compiled for every confined one.
func TestToSpecSeccomp(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "deny-mkdir.json"),
		[]byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	runtimeDefault := &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	unconfined := &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
	local := &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: ptr.To("deny-mkdir.json")}
	tests := []struct {
		name           string
		podProfile     *corev1.SeccompProfile
		sc             *corev1.SecurityContext
		seccompDefault bool
		want           string
	}{
		{"nothing named", nil, nil, false, "Unconfined"},
		{"nothing named, --seccomp-default", nil, nil, true, "RuntimeDefault"},
		{"pod RuntimeDefault", runtimeDefault, nil, false, "RuntimeDefault"},
		{"container overrides pod", runtimeDefault, &corev1.SecurityContext{SeccompProfile: unconfined}, true, "Unconfined"},
		{"container Localhost", nil, &corev1.SecurityContext{SeccompProfile: local}, false, "Localhost/deny-mkdir.json"},
		{"pod Localhost", local, nil, false, "Localhost/deny-mkdir.json"},
		{"privileged runs unconfined", runtimeDefault, &corev1.SecurityContext{Privileged: ptr.To(true), SeccompProfile: runtimeDefault}, true, "Unconfined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{}
			pod.Name, pod.Namespace = "web", "prod"
			pod.Spec.Containers = []corev1.Container{{Name: "app", Image: "busybox:1.36", SecurityContext: tt.sc}}
			if tt.podProfile != nil {
				pod.Spec.SecurityContext = &corev1.PodSecurityContext{SeccompProfile: tt.podProfile}
			}
			SetDefaults(pod)
			if _, errs := Validate(pod); len(errs) > 0 {
				t.Fatalf("test pod is invalid: %v", errs)
			}
			in := testInput()
			in.SeccompDir, in.SeccompDefault = dir, tt.seccompDefault
			out, _, err := ToSpec(pod, in)
			if err != nil {
				t.Fatal(err)
			}
			c := out.Containers[0]
			if c.SeccompProfile != tt.want {
				t.Errorf("profile = %q, want %q", c.SeccompProfile, tt.want)
			}
			if confined := tt.want != "Unconfined"; confined != (len(c.Seccomp) > 0) || len(c.Seccomp)%seccomp.InstructionSize != 0 {
				t.Errorf("filter of %d bytes for %s", len(c.Seccomp), tt.want)
			}
		})
	}
}

// TestToSpecSeccompMissingProfile: a Localhost profile that is not there
// fails the spec, naming the container and the file.
func TestToSpecSeccompMissingProfile(t *testing.T) {
	pod := &corev1.Pod{}
	pod.Name = "p"
	pod.Spec.Containers = []corev1.Container{{Name: "app", Image: "busybox:1.36", SecurityContext: &corev1.SecurityContext{
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: ptr.To("gone.json")}}}}
	SetDefaults(pod)
	in := testInput()
	in.SeccompDir = t.TempDir()
	_, _, err := ToSpec(pod, in)
	want := `container "app": cannot load seccomp profile "` + filepath.Join(in.SeccompDir, "gone.json") + `": open ` + filepath.Join(in.SeccompDir, "gone.json") + ": no such file or directory"
	if err == nil || err.Error() != want || !errors.Is(err, seccomp.ErrProfile) {
		t.Fatalf("ToSpec() error = %v\nwant %s", err, want)
	}
}

// TestContainerSpecSeccompHostPath: through ContainerSpec (the CRI's
// builder) a Localhost profile is an absolute host path, read there and
// compiled; a privileged container runs unconfined without reading it. A
// profile the compiler refuses (an unknown action) is an ErrProfile naming
// the file, as a missing one is, on both paths.
func TestContainerSpecSeccompHostPath(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "deny-mkdir.json")
	bad := filepath.Join(dir, "bad-action.json")
	for p, body := range map[string]string{
		good: `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}`,
		bad:  `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_MAYBE"}]}`,
	} {
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	build := func(ref string, privileged bool) (*spec.Container, error) {
		pod := &corev1.Pod{}
		pod.Name = "p"
		c := &corev1.Container{Name: "app", Image: "busybox:1.36", SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(privileged),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: ptr.To(ref)}}}
		sc, _, err := ContainerSpec(pod, c, "0123456789ab", testInput())
		return sc, err
	}
	sc, err := build(good, false)
	if err != nil {
		t.Fatal(err)
	}
	if sc.SeccompProfile != "Localhost/"+good || len(sc.Seccomp) == 0 {
		t.Errorf("profile %q, filter of %d bytes", sc.SeccompProfile, len(sc.Seccomp))
	}
	if sc, err := build(filepath.Join(dir, "gone.json"), true); err != nil || sc.SeccompProfile != "Unconfined" || len(sc.Seccomp) != 0 {
		t.Errorf("privileged: %v, %v", sc, err)
	}
	for _, ref := range []string{filepath.Join(dir, "gone.json"), bad} {
		_, err := build(ref, false)
		if err == nil || !errors.Is(err, seccomp.ErrProfile) || !strings.Contains(err.Error(), `"`+ref+`"`) {
			t.Errorf("%s: %v, want an ErrProfile naming the file", ref, err)
		}
	}
	// The same refusal through `peapod run`'s builder, relative to
	// SeccompDir.
	pod := &corev1.Pod{}
	pod.Name = "p"
	pod.Spec.Containers = []corev1.Container{{Name: "app", Image: "busybox:1.36", SecurityContext: &corev1.SecurityContext{
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: ptr.To("bad-action.json")}}}}
	SetDefaults(pod)
	in := testInput()
	in.SeccompDir = dir
	_, _, err = ToSpec(pod, in)
	want := `container "app": cannot load seccomp profile "` + bad + `": `
	if err == nil || !errors.Is(err, seccomp.ErrProfile) || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), `unknown action "SCMP_ACT_MAYBE"`) {
		t.Errorf("ToSpec() error = %v\nwant %s… unknown action", err, want)
	}
}
