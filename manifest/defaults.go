package manifest

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Defaults the API server applies (k8s.io/kubernetes pkg/apis/core/v1/defaults.go).
const (
	defaultNamespace              = "default"
	defaultTerminationGracePeriod = int64(30)
	defaultTerminationMessagePath = "/dev/termination-log"
	defaultProbeTimeoutSeconds    = 1
	defaultProbePeriodSeconds     = 10
	defaultProbeSuccessThreshold  = 1
	defaultProbeFailureThreshold  = 3
	defaultHTTPGetPath            = "/"
	defaultFieldRefAPIVersion     = "v1"
	defaultImageTag               = "latest"
)

// SetDefaults applies the API server's defaulting for the fields peapod
// supports, so that a pod read back with `get -o json` looks as it would
// from a cluster.
func SetDefaults(pod *corev1.Pod) {
	if pod.Namespace == "" {
		pod.Namespace = defaultNamespace
	}
	s := &pod.Spec
	if s.RestartPolicy == "" {
		s.RestartPolicy = corev1.RestartPolicyAlways
	}
	if s.TerminationGracePeriodSeconds == nil {
		g := defaultTerminationGracePeriod
		s.TerminationGracePeriodSeconds = &g
	}
	if s.DNSPolicy == "" {
		s.DNSPolicy = corev1.DNSClusterFirst
	}
	for i := range s.Volumes {
		defaultVolume(&s.Volumes[i])
	}
	for i := range s.InitContainers {
		defaultContainer(&s.InitContainers[i], s.HostNetwork)
	}
	for i := range s.Containers {
		defaultContainer(&s.Containers[i], s.HostNetwork)
	}
}

// defaultVolume makes a volume with no source an emptyDir, as the API does.
func defaultVolume(v *corev1.Volume) {
	if v.VolumeSource == (corev1.VolumeSource{}) {
		v.EmptyDir = &corev1.EmptyDirVolumeSource{}
	}
	defaultProjectionModes(v)
}

// defaultContainer applies the per-container defaults.
func defaultContainer(c *corev1.Container, hostNetwork bool) {
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = defaultPullPolicy(c.Image)
	}
	if c.TerminationMessagePath == "" {
		c.TerminationMessagePath = defaultTerminationMessagePath
	}
	if c.TerminationMessagePolicy == "" {
		c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
	}
	defaultResources(&c.Resources)
	for i := range c.Ports {
		p := &c.Ports[i]
		if p.Protocol == "" {
			p.Protocol = corev1.ProtocolTCP
		}
		// A host-network pod's ports are host ports: the API fills them in.
		if hostNetwork && p.HostPort == 0 {
			p.HostPort = p.ContainerPort
		}
	}
	for i := range c.Env {
		if ref := fieldRefOf(c.Env[i]); ref != nil && ref.APIVersion == "" {
			ref.APIVersion = defaultFieldRefAPIVersion
		}
	}
	for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
		defaultProbe(p)
	}
}

// fieldRefOf returns the env var's downward-API reference, or nil.
func fieldRefOf(e corev1.EnvVar) *corev1.ObjectFieldSelector {
	if e.ValueFrom == nil {
		return nil
	}
	return e.ValueFrom.FieldRef
}

// defaultPullPolicy is Always for ":latest" or untagged references, else
// IfNotPresent; a digest reference is never "latest".
func defaultPullPolicy(image string) corev1.PullPolicy {
	if strings.Contains(image, "@") {
		return corev1.PullIfNotPresent
	}
	if imageTag(image) == defaultImageTag {
		return corev1.PullAlways
	}
	return corev1.PullIfNotPresent
}

// imageTag returns a reference's tag, "latest" when it has none. The tag is
// what follows the last ':' after the last '/' (a registry port is not a tag).
func imageTag(image string) string {
	name := image[strings.LastIndex(image, "/")+1:]
	if i := strings.LastIndex(name, ":"); i >= 0 {
		return name[i+1:]
	}
	return defaultImageTag
}

// defaultProbe turns zero timings into the API's defaults.
func defaultProbe(p *corev1.Probe) {
	if p == nil {
		return
	}
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = defaultProbeTimeoutSeconds
	}
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds = defaultProbePeriodSeconds
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = defaultProbeSuccessThreshold
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = defaultProbeFailureThreshold
	}
	if h := p.HTTPGet; h != nil {
		if h.Path == "" {
			h.Path = defaultHTTPGetPath
		}
		if h.Scheme == "" {
			h.Scheme = corev1.URISchemeHTTP
		}
	}
}
