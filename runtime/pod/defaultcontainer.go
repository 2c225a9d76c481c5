package pod

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/peapod/peapod/runtime/layout"
)

// DefaultContainerAnnotation names the container kubectl picks when -c is
// omitted (KEP-2227).
const DefaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

// DefaultContainer is kubectl's rule (podcmd.FindOrDefaultContainerByName)
// for the container a command works on when -c is omitted: the one the
// default-container annotation names, else the first app container. note
// is the line kubectl prints to stderr then ("" when there was no choice):
// that the annotation names no container of the pod, or which container
// was picked out of which.
func DefaultContainer(p *corev1.Pod) (name, note string) {
	if len(p.Spec.Containers) == 0 {
		return "", ""
	}
	var notes []string
	if want := p.Annotations[DefaultContainerAnnotation]; want != "" {
		if hasContainer(p, want) {
			return want, ""
		}
		notes = append(notes, fmt.Sprintf("Default container name %q not found in pod %s", want, p.Name))
	}
	name = p.Spec.Containers[0].Name
	if len(p.Spec.Containers) > 1 || len(p.Spec.InitContainers) > 0 || len(p.Spec.EphemeralContainers) > 0 {
		notes = append(notes, fmt.Sprintf("Defaulted container %q out of: %s", name, allContainerNames(p)))
	}
	return name, strings.Join(notes, "\n")
}

// DefaultContainer applies DefaultContainer to the view's stored pod.
func (v *View) DefaultContainer() (name, note string, err error) {
	p, err := v.containerNames()
	if err != nil {
		return "", "", err
	}
	name, note = DefaultContainer(p)
	if name == "" {
		return "", "", fmt.Errorf("pod %s/%s has no containers", v.Record.Namespace, v.Record.Name)
	}
	return name, note, nil
}

// writeDefaultContainer writes, for `peapod exec`'s fast path
// (cmd/peapod/internal/fastexec), the container exec picks without -c and
// kubectl's note about the choice (layout.DefaultContainerFile).
func writeDefaultContainer(run layout.Run, p *corev1.Pod) error {
	name, note := DefaultContainer(p)
	if !layout.IsLabel(name) {
		return nil // no exec profile can be named so: the fast path never applies
	}
	if err := os.MkdirAll(run.ExecDir(), 0o700); err != nil {
		return fmt.Errorf("failed to create %s: %w", run.ExecDir(), err)
	}
	path := filepath.Join(run.ExecDir(), layout.DefaultContainerFile)
	if err := os.WriteFile(path, []byte(name+"\n"+note), 0o600); err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	return nil
}

// containerNames is the stored pod cut down to what DefaultContainer
// reads: its name, annotations and container names. Decoding the whole
// corev1.Pod and building its status (KubePod) for that was a third of
// `peapod exec`'s CPU, nearly all of it first-use JSON reflection over the
// Kubernetes types.
func (v *View) containerNames() (*corev1.Pod, error) {
	p := &corev1.Pod{}
	p.Name = v.Record.Name
	if len(v.Record.Manifest) == 0 {
		return p, nil // an unreadable record: no containers known
	}
	type named []struct {
		Name string `json:"name"`
	}
	var m struct {
		Metadata struct {
			Name        string            `json:"name"`
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
		Spec struct {
			Containers          named `json:"containers"`
			InitContainers      named `json:"initContainers"`
			EphemeralContainers named `json:"ephemeralContainers"`
		} `json:"spec"`
	}
	if err := manifestOf(v.Record, &m); err != nil {
		return nil, err
	}
	if m.Metadata.Name != "" {
		p.Name = m.Metadata.Name
	}
	p.Annotations = m.Metadata.Annotations
	for _, c := range m.Spec.Containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c.Name})
	}
	for _, c := range m.Spec.InitContainers {
		p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: c.Name})
	}
	for _, c := range m.Spec.EphemeralContainers {
		p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: c.Name}})
	}
	return p, nil
}

// hasContainer reports whether the pod has a container (of any kind) by that name.
func hasContainer(p *corev1.Pod, name string) bool {
	for _, c := range p.Spec.Containers {
		if c.Name == name {
			return true
		}
	}
	for _, c := range p.Spec.InitContainers {
		if c.Name == name {
			return true
		}
	}
	for _, c := range p.Spec.EphemeralContainers {
		if c.Name == name {
			return true
		}
	}
	return false
}

// allContainerNames lists the pod's containers as kubectl does:
// "app, sidecar, setup (init), debug (ephem)".
func allContainerNames(p *corev1.Pod) string {
	var names []string
	for _, c := range p.Spec.Containers {
		names = append(names, c.Name)
	}
	for _, c := range p.Spec.InitContainers {
		names = append(names, c.Name+" (init)")
	}
	for _, c := range p.Spec.EphemeralContainers {
		names = append(names, c.Name+" (ephem)")
	}
	return strings.Join(names, ", ")
}
