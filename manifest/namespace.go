package manifest

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// LoadInNamespace is Load for a CLI invoked with -n: documents without
// metadata.namespace land in ns, and a document naming another namespace
// is an error, as kubectl reports it.
func LoadInNamespace(data []byte, source, ns string) ([]*corev1.Pod, []string, error) {
	docs, err := Decode(data, source)
	if err != nil {
		return nil, nil, err
	}
	for i, p := range docs {
		if p.Namespace != "" && p.Namespace != ns {
			return nil, nil, invalid(fmt.Errorf("%s: document %d: the namespace from the provided object %q does not match the namespace %q. You must pass '--namespace=%s' to perform this operation", source, i+1, p.Namespace, ns, p.Namespace))
		}
	}
	// Decode again with the namespace filled in, so Load's checks (and its
	// error texts) apply unchanged.
	pods, warnings, err := Load(data, source)
	if err != nil {
		return nil, warnings, err
	}
	for _, p := range pods {
		p.Namespace = ns
	}
	return pods, warnings, nil
}
