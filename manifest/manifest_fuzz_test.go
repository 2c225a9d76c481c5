package manifest

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"

	"github.com/peapod/peapod/runtime/spec"
	"github.com/peapod/peapod/seccomp"
)

// anyImage resolves every reference to one runnable image.
type anyImage struct{}

func (anyImage) Resolve(string) (*ResolvedImage, error) {
	return &ResolvedImage{ID: "sha256:fff", Layers: []string{"/l/one"}, Config: ImageConfig{Cmd: []string{"run"}}}, nil
}

// FuzzManifest runs any bytes through what `peapod run -f` does before it
// creates anything: decode, default, validate, then build the spec and the
// pod's /etc files. Load fails only with ErrInvalid; a pod it accepts
// validates again unchanged, survives a JSON round trip (re-encoded, it is
// accepted and decodes to the same pod), and becomes a spec whose
// durations are never negative and whose hostname fits the kernel's.
func FuzzManifest(f *testing.F) {
	in := testInput()
	in.Images = anyImage{}
	// One Localhost profile exists (profiles/deny.json): others are missing.
	in.SeccompDir = f.TempDir()
	if err := os.MkdirAll(filepath.Join(in.SeccompDir, "profiles"), 0o755); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(in.SeccompDir, "profiles", "deny.json"),
		[]byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644); err != nil {
		f.Fatal(err)
	}
	hf := hostFiles{
		resolv:       []byte("nameserver 127.0.0.53\nsearch lan\n"),
		readUpstream: func() ([]byte, error) { return []byte("nameserver 10.0.0.1\n"), nil },
		hosts:        func() ([]byte, error) { return []byte("127.0.0.1 localhost\n"), nil },
		hostname:     func() (string, error) { return "host", nil },
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pods, _, err := Load(data, "fuzz.yaml")
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Load(%q) error %v is not ErrInvalid", data, err)
			}
			return
		}
		for _, pod := range pods {
			if _, errs := Validate(pod); len(errs) > 0 {
				t.Fatalf("Load(%q) accepted a pod that does not validate again: %v", data, errs)
			}
			j, err := json.Marshal(pod)
			if err != nil {
				t.Fatalf("Load(%q) accepted a pod that does not encode: %v", data, err)
			}
			again, _, err := Load(j, "again.json")
			if err != nil {
				t.Fatalf("Load(%q) accepted a pod whose JSON %s is refused: %v", data, j, err)
			}
			if !apiequality.Semantic.DeepEqual(again[0], pod) {
				t.Fatalf("Load(%q): the pod's JSON %s decodes to another pod", data, j)
			}
			checkSpec(t, data, pod, in)
			if _, _, _, err := etcFiles(pod, in.IP, hf); err != nil {
				t.Fatalf("Load(%q) accepted a pod whose /etc files cannot be built: %v", data, err)
			}
		}
	})
}

// checkSpec builds the spec of an accepted pod and checks what the
// supervisor and the kernel will rely on. A ContainerConfigError (e.g.
// runAsNonRoot against the image's root user) and a Localhost seccomp
// profile that is not there are valid outcomes.
func checkSpec(t *testing.T, data []byte, pod *corev1.Pod, in SpecInput) {
	t.Helper()
	out, _, err := ToSpec(pod, in)
	if errors.Is(err, ErrContainerConfig) || errors.Is(err, seccomp.ErrProfile) {
		return
	}
	if err != nil {
		t.Fatalf("Load(%q) accepted a pod whose spec cannot be built: %v", data, err)
	}
	if msg := specChecks(out); msg != "" {
		t.Fatalf("Load(%q): spec %+v: %s", data, out, msg)
	}
}

// specChecks are the properties of a built spec.
func specChecks(out *spec.Pod) string {
	if out.TerminationGracePeriod() < 0 {
		return "negative grace period"
	}
	if !out.HostNetwork && len(out.Hostname) > hostnameMax {
		return "hostname longer than 63 bytes"
	}
	for _, c := range append(append([]spec.Container{}, out.InitContainers...), out.Containers...) {
		for _, pr := range []*spec.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
			if pr != nil && pr.TerminationGracePeriodSeconds != nil && spec.Seconds(*pr.TerminationGracePeriodSeconds) < 0 {
				return "negative probe grace period"
			}
		}
	}
	return ""
}
