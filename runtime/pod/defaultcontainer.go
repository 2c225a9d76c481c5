package pod

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
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
	p, err := v.KubePod()
	if err != nil {
		return "", "", err
	}
	name, note = DefaultContainer(p)
	if name == "" {
		return "", "", fmt.Errorf("pod %s/%s has no containers", v.Record.Namespace, v.Record.Name)
	}
	return name, note, nil
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
