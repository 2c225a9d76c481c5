package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// TestRecursiveReadOnlyHostPath: a hostPath with a tmpfs mounted below
// it, mounted read-only by two containers of one pod. With
// recursiveReadOnly: Enabled the submount is read-only inside too (EROFS);
// with readOnly alone it stays writable, as in Kubernetes, which is what
// recursiveReadOnly is for. recursiveReadOnly on a writable mount is
// refused as the API server refuses it, naming the field, and nothing is
// made.
func TestRecursiveReadOnlyHostPath(t *testing.T) {
	e := newEnv(t)
	hp := t.TempDir()
	sub := filepath.Join(hp, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(sub, unix.MNT_DETACH); err != nil {
			t.Errorf("failed to unmount %s: %v", sub, err)
		}
	})
	readOnly := func(c corev1.Container, rro *corev1.RecursiveReadOnlyMode) corev1.Container {
		c.VolumeMounts = []corev1.VolumeMount{{Name: "h", MountPath: "/h", ReadOnly: true, RecursiveReadOnly: rro}}
		return c
	}
	pod := func(name string, ctrs ...corev1.Container) *corev1.Pod {
		p := newPod(name, ctrs...)
		p.Spec.Volumes = []corev1.Volume{{Name: "h", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hp}}}}
		return p
	}

	bad := pod("rro-writable", ctr("app", "sleep", "1000"))
	bad.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "h", MountPath: "/h", RecursiveReadOnly: ptr(corev1.RecursiveReadOnlyEnabled)}}
	before := e.snapshot()
	_, stderr, code := e.run(podJSON(bad), "run", "-d", "-f", "-")
	if code == 0 || !strings.Contains(stderr, "spec.containers[0].volumeMounts[0].recursiveReadOnly") || !strings.Contains(stderr, "readOnly") {
		t.Fatalf("recursiveReadOnly on a writable mount: exit %d, stderr %q; want a refusal naming the field", code, stderr)
	}
	e.assertNoLeak(before)

	e.runPod(podJSON(pod("rro",
		readOnly(ctr("rro", "sleep", "1000"), ptr(corev1.RecursiveReadOnlyEnabled)),
		readOnly(ctr("ro", "sleep", "1000"), nil))))
	for _, tc := range []struct {
		ctr      string
		writable bool
	}{{"rro", false}, {"ro", true}} {
		if _, stderr, code := e.exec("rro", tc.ctr, "touch", "/h/top"); code == 0 || !strings.Contains(stderr, "Read-only file system") {
			t.Errorf("%s: touch /h/top: exit %d, %q; want EROFS", tc.ctr, code, stderr)
		}
		_, stderr, code := e.exec("rro", tc.ctr, "touch", "/h/sub/"+tc.ctr)
		if tc.writable && code != 0 {
			t.Errorf("%s: touch /h/sub (a submount of a plain read-only mount): exit %d, %q; want it writable", tc.ctr, code, stderr)
		}
		if !tc.writable && (code == 0 || !strings.Contains(stderr, "Read-only file system")) {
			t.Errorf("%s: touch /h/sub (a submount of a recursively read-only mount): exit %d, %q; want EROFS", tc.ctr, code, stderr)
		}
	}
	// The host's submount stays writable: only the container's copy of
	// it was made read-only.
	if err := os.WriteFile(filepath.Join(sub, "host"), nil, 0o644); err != nil {
		t.Errorf("the host's submount: %v", err)
	}
}
