package manifest

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Load decodes, defaults and validates every document of a manifest. It
// fails, naming the file, each invalid pod and every field error, if any
// document is invalid, so that callers create nothing. Warnings are
// prefixed with the pod they concern.
func Load(data []byte, source string) (pods []*corev1.Pod, warnings []string, err error) {
	pods, err = Decode(data, source)
	if err != nil {
		return nil, nil, err
	}
	var problems []string
	seen := map[string]int{}
	for i, pod := range pods {
		SetDefaults(pod)
		w, errs := Validate(pod)
		id := fmt.Sprintf("%s: document %d: pod %q", source, i+1, pod.Namespace+"/"+pod.Name)
		for _, msg := range w {
			warnings = append(warnings, fmt.Sprintf("%s: %s", id, msg))
		}
		for _, e := range errs {
			problems = append(problems, fmt.Sprintf("%s: %s", id, e.Error()))
		}
		key := pod.Namespace + "/" + pod.Name
		if first, dup := seen[key]; dup && pod.Name != "" {
			problems = append(problems, fmt.Sprintf("%s: metadata.name: Duplicate value: %q (also document %d)", id, pod.Name, first))
		}
		seen[key] = i + 1
	}
	if len(problems) > 0 {
		return nil, warnings, invalid(fmt.Errorf("%s", strings.Join(problems, "\n")))
	}
	return pods, warnings, nil
}
