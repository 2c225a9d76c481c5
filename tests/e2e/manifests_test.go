package e2e

import (
	"encoding/json"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// newPod builds a v1 Pod with the given containers.
func newPod(name string, ctrs ...corev1.Container) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.PodSpec{Containers: ctrs},
	}
}

// ctr builds a busybox container running cmd. IfNotPresent keeps the
// "imported, not pulled" warning of Always out of the tests' output.
func ctr(name string, cmd ...string) corev1.Container {
	return corev1.Container{Name: name, Image: "busybox:latest", ImagePullPolicy: corev1.PullIfNotPresent, Command: cmd}
}

// shell builds a busybox container running `sh -c script`.
func shell(name, script string) corev1.Container {
	return ctr(name, "sh", "-c", script)
}

// podJSON renders a pod as a JSON manifest (JSON is YAML, and peapod
// accepts both).
func podJSON(p *corev1.Pod) string {
	b, err := json.Marshal(p)
	if err != nil {
		panic(err) // a v1.Pod always marshals
	}
	return string(b)
}

// emptyDir is an emptyDir volume.
func emptyDir(name string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
}

// mount returns c with a volume mount added.
func mount(c corev1.Container, vol, path string) corev1.Container {
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: vol, MountPath: path})
	return c
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }
