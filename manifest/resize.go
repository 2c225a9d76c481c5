package manifest

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Resized is a pod after an in-place resize of one container's limits.
type Resized struct {
	// Pod is the pod with the container's new resources (a copy).
	Pod *corev1.Pod
	// Container and PodLevel are the OCI resources of the container's and
	// of the pod's cgroup, computed as at creation.
	Container, PodLevel *specs.LinuxResources
}

// Resize returns p with container's CPU and memory limits set to cpu and
// memory (nil leaves one as it is), following the rules of the kubelet's
// in-place resize: the pod's QoS class may not change, so a request that
// equalled the old limit follows the new one (a Guaranteed pod stays
// Guaranteed), and a limit may be set only where one exists or the class
// stays the same. The new resources are validated as the API server does.
func Resize(p *corev1.Pod, container string, cpu, memory *resource.Quantity) (*Resized, error) {
	out := p.DeepCopy()
	idx := -1
	for i, c := range out.Spec.Containers {
		if c.Name == container {
			idx = i
		}
	}
	if idx < 0 {
		for _, c := range out.Spec.InitContainers {
			if c.Name == container {
				return nil, fmt.Errorf("container %q of pod %s/%s is an init container: only app containers are resized in place", container, p.Namespace, p.Name)
			}
		}
		return nil, fmt.Errorf("pod %s/%s has no container %q", p.Namespace, p.Name, container)
	}
	if cpu == nil && memory == nil {
		return nil, fmt.Errorf("nothing to resize: give --cpu and/or --memory")
	}
	c := &out.Spec.Containers[idx]
	set := func(name corev1.ResourceName, q *resource.Quantity) {
		if q == nil {
			return
		}
		old, hadLimit := c.Resources.Limits[name]
		if c.Resources.Limits == nil {
			c.Resources.Limits = corev1.ResourceList{}
		}
		c.Resources.Limits[name] = q.DeepCopy()
		if req, ok := c.Resources.Requests[name]; !ok || (hadLimit && req.Cmp(old) == 0) {
			if c.Resources.Requests == nil {
				c.Resources.Requests = corev1.ResourceList{}
			}
			c.Resources.Requests[name] = q.DeepCopy()
		}
	}
	set(corev1.ResourceCPU, cpu)
	set(corev1.ResourceMemory, memory)
	fp := field.NewPath("spec", "containers").Index(idx).Child("resources")
	if _, errs := validateResources(&c.Resources, fp); len(errs) > 0 {
		return nil, fmt.Errorf("pod %s/%s: %w", p.Namespace, p.Name, errs.ToAggregate())
	}
	if before, after := QOSClass(&p.Spec), QOSClass(&out.Spec); before != after {
		return nil, fmt.Errorf("pod %s/%s: resizing container %q would change the pod's QoS class from %s to %s, which the kubelet does not allow in place",
			p.Namespace, p.Name, container, before, after)
	}
	return &Resized{Pod: out, Container: linuxResources(c.Resources), PodLevel: podResources(out.Spec.InitContainers, out.Spec.Containers)}, nil
}
