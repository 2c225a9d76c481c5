package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/peapod/peapod/internal/testutil"
	corev1 "k8s.io/api/core/v1"
)

// pushBusybox writes busybox, as one layer running `sleep 1000`, to ref.
func pushBusybox(t *testing.T, ref string) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img := imageOf(t, []string{"sleep", "1000"}, layerOf(t, tarOf(t, busyboxTar)))
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("failed to push %s: %v", ref, err)
	}
}

// pullPod is a one-container pod of image under policy.
func pullPod(podName, image, policy string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  containers:
  - {name: c, image: %q, imagePullPolicy: %s}
`, podName, image, policy)
}

// TestPullPolicies_11: a pod whose image is only in a local docker-registry
// runs under IfNotPresent (pulled first); IfNotPresent does not contact the
// registry again once the image is there (the registry's access log);
// Always asks for the manifest again but fetches no blob again; Never with
// the image missing fails with ErrImageNeverPull naming the field and
// creates nothing; image ls, inspect, rm and prune see the pulled image.
func TestPullPolicies_11(t *testing.T) {
	e := newEnv(t)
	reg := testutil.StartRegistry(t)
	ref := reg.Host + "/busybox:1"
	pushBusybox(t, ref)
	manifestGets := func() int { return strings.Count(reg.Log(), `"GET /v2/busybox/manifests/1 `) }
	blobGets := func() int { return strings.Count(reg.Log(), `"GET /v2/busybox/blobs/`) }

	before := testutil.TakeSnapshot(t, e.roots())
	out, stderr, code := e.run(pullPod("never", ref, "Never"), "run", "-d", "-f", "-")
	if code == 0 || !strings.Contains(stderr, `spec.containers[0].image: Invalid value: "`+ref+`"`) || !strings.Contains(stderr, "ErrImageNeverPull") {
		t.Fatalf("run with Never and no image: code %d\nstdout: %s\nstderr: %s", code, out, stderr)
	}
	e.assertNoLeak(before)
	if n := manifestGets(); n != 0 {
		t.Errorf("Never contacted the registry: %d manifest GETs", n)
	}

	e.runPod(pullPod("pulled", ref, "IfNotPresent"))
	e.waitPod("pulled", 30*time.Second, phaseIs(corev1.PodRunning))
	e.mustExec("pulled", "c", "true")
	afterPull, blobsAfterPull := manifestGets(), blobGets()
	if afterPull != 1 || blobsAfterPull != 2 { // the config and the one layer
		t.Errorf("first pull: %d manifest GETs and %d blob GETs, want 1 and 2", afterPull, blobsAfterPull)
	}

	e.runPod(pullPod("present", ref, "IfNotPresent"))
	if n := manifestGets(); n != afterPull {
		t.Errorf("IfNotPresent with the image present contacted the registry: %d manifest GETs, want %d", n, afterPull)
	}
	heads := func() int { return strings.Count(reg.Log(), `"HEAD /v2/busybox/manifests/1 `) }
	headsBefore := heads() // the push asked too
	e.runPod(pullPod("always", ref, "Always"))
	if n, b, h := manifestGets(), blobGets(), heads()-headsBefore; n != afterPull || b != blobsAfterPull || h != 1 {
		// Always asks for the tag's digest with a HEAD; it has not moved.
		t.Errorf("Always: %d manifest GETs, %d blob GETs and %d HEADs, want %d, %d and 1", n, b, h, afterPull, blobsAfterPull)
	}
	e.waitPod("always", 30*time.Second, phaseIs(corev1.PodRunning))

	ls := e.mustRun("image", "ls")
	if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(reg.Host+"/busybox") + `\s+1\s+[0-9a-f]{12}\s`).MatchString(ls) {
		t.Errorf("image ls does not list %s with its digest:\n%s", ref, ls)
	}
	var inspected []struct {
		RepoDigests []string `json:"repoDigests"`
		Manifest    struct {
			Layers []struct{ Digest string } `json:"layers"`
		} `json:"manifest"`
		Config struct {
			Config struct{ Cmd []string } `json:"config"`
		} `json:"config"`
	}
	if err := json.Unmarshal([]byte(e.mustRun("image", "inspect", ref)), &inspected); err != nil {
		t.Fatalf("image inspect is not JSON: %v", err)
	}
	if len(inspected) != 1 || len(inspected[0].RepoDigests) != 1 || !strings.HasPrefix(inspected[0].RepoDigests[0], reg.Host+"/busybox@sha256:") ||
		len(inspected[0].Manifest.Layers) != 1 || strings.Join(inspected[0].Config.Config.Cmd, " ") != "sleep 1000" {
		t.Errorf("image inspect = %+v", inspected)
	}
	if _, stderr, code := e.run("", "image", "rm", ref); code == 0 || !strings.Contains(stderr, "in use") {
		t.Errorf("image rm of an image pods use: code %d, stderr %s", code, stderr)
	}
	// The tag moves to an image with the same base and one more layer:
	// Always fetches the new manifest, config and layer, not the base.
	r, _ := name.ParseReference(ref)
	moved := imageOf(t, []string{"sleep", "1000"}, layerOf(t, tarOf(t, busyboxTar)), layerOf(t, tarOf(t, "", tFile("moved", "yes"))))
	if err := remote.Write(r, moved); err != nil {
		t.Fatalf("failed to push the moved tag: %v", err)
	}
	baseLayers, _ := moved.Layers()
	baseDigest, _ := baseLayers[0].Digest()
	e.runPod(pullPod("moved", ref, "Always"))
	if n, b := manifestGets(), blobGets(); n != afterPull+1 || b != blobsAfterPull+2 ||
		strings.Count(reg.Log(), `"GET /v2/busybox/blobs/`+baseDigest.String()) != 1 {
		t.Errorf("Always after the tag moved: %d manifest GETs and %d blob GETs, want %d and %d (config and the new layer)",
			n, b, afterPull+1, blobsAfterPull+2)
	}
	e.waitPod("moved", 30*time.Second, phaseIs(corev1.PodRunning))
	e.mustExec("moved", "c", "cat", "/moved")
	e.mustRun("rm", "-f", "pulled", "present", "always", "moved")
	out = e.mustRun("image", "prune")
	if strings.Count(out, "removed") != 3 { // busybox:latest (imported) and both pulled ones
		t.Errorf("image prune removed:\n%s\nwant all three images", out)
	}
	if ls := e.mustRun("image", "ls"); strings.Count(strings.TrimSpace(ls), "\n") != 0 {
		t.Errorf("image ls after prune:\n%s", ls)
	}
}
