package cri_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/peapod/peapod/internal/testutil"
)

// TestCrictlImageIDOfPulledImage runs a container of an image pulled from
// a registry (so it has a repo digest): ContainerStatus.image_id and
// Container.image_id are the ID PullImage answered, image_ref the repo
// digest, the image is found by that repo digest, and it cannot be
// removed, by tag, ID or repo digest, while the container exists.
func TestCrictlImageIDOfPulledImage(t *testing.T) {
	d := startDaemon(t)
	reg := testutil.StartRegistry(t)
	ref := reg.Host + "/app:1"
	pushBusybox(t, ref, "")
	id := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(d.run("crictl", "pull", ref)), "Image is up to date for "))
	var st struct {
		Status struct {
			ID          string   `json:"id"`
			RepoDigests []string `json:"repoDigests"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(d.run("crictl", "inspecti", ref)), &st); err != nil {
		t.Fatalf("crictl inspecti: %v", err)
	}
	if st.Status.ID != id || len(st.Status.RepoDigests) != 1 {
		t.Fatalf("crictl inspecti %s = %+v, want id %s and one repo digest", ref, st.Status, id)
	}
	digest := st.Status.RepoDigests[0]
	if err := json.Unmarshal([]byte(d.run("crictl", "inspecti", digest)), &st); err != nil || st.Status.ID != id {
		t.Errorf("crictl inspecti %s = %+v (%v), want image %s", digest, st.Status, err, id)
	}
	dir := t.TempDir()
	sb := writeJSON(t, dir, "sandbox.json", `{"metadata": {"name": "imageid", "namespace": "default", "uid": "uid-imageid"}, "linux": {}}`)
	ctr := writeJSON(t, dir, "ctr.json", fmt.Sprintf(`{"metadata": {"name": "app"}, "image": {"image": %q}, "command": ["sleep", "1000"], "linux": {}}`, ref))
	pod := strings.TrimSpace(d.run("crictl", "runp", sb))
	cid := strings.TrimSpace(d.run("crictl", "create", pod, ctr, sb))
	var in struct {
		Status struct {
			ImageRef string `json:"imageRef"`
			ImageID  string `json:"imageId"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(d.run("crictl", "inspect", cid)), &in); err != nil {
		t.Fatalf("crictl inspect: %v", err)
	}
	if in.Status.ImageID != id || in.Status.ImageRef != digest {
		t.Errorf("ContainerStatus image_id %q, image_ref %q; want %s and %s", in.Status.ImageID, in.Status.ImageRef, id, digest)
	}
	var ps struct {
		Containers []struct {
			ImageRef string `json:"imageRef"`
			ImageID  string `json:"imageId"`
		} `json:"containers"`
	}
	if err := json.Unmarshal([]byte(d.run("crictl", "ps", "-a", "-o", "json")), &ps); err != nil {
		t.Fatalf("crictl ps: %v", err)
	}
	if len(ps.Containers) != 1 || ps.Containers[0].ImageID != id {
		t.Errorf("ListContainers = %+v, want one container with image_id %s", ps.Containers, id)
	}
	for _, r := range []string{ref, id, digest} {
		if out, err := d.try("rmi", r); err == nil || !strings.Contains(out, "in use") {
			t.Errorf("crictl rmi %s while container %s uses it: %v\n%s", r, cid, err, out)
		}
	}
	d.run("crictl", "rmp", "-f", pod)
	d.run("crictl", "rmi", digest)
	if out := strings.TrimSpace(d.run("crictl", "images", "-q")); out != "" {
		t.Errorf("crictl images after rmi of the repo digest = %q", out)
	}
}
