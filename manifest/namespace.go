package manifest

import (
	corev1 "k8s.io/api/core/v1"
)

// LoadInNamespace is Load for a CLI invoked with -n: documents without
// metadata.namespace land in ns, and a document naming another namespace
// is an error, as kubectl reports it.
func LoadInNamespace(data []byte, source, ns string) ([]*corev1.Pod, []string, error) {
	objs, warnings, err := LoadFiles([]File{{Data: data, Source: source}}, ns)
	if err != nil {
		return nil, warnings, err
	}
	return objs.Pods, warnings, nil
}
