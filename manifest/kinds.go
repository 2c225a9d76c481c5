package manifest

import (
	"encoding/json"
	"fmt"
)

// supportedKinds is what the message for any other kind says peapod runs.
const supportedKinds = "peapod runs v1 Pods (and the ConfigMaps and Secrets they use)"

// podTemplates maps the workload kinds that wrap a pod template to the
// path of that template in their spec. peapod has no controllers, so it
// runs none of them; the error points at the template, which the user can
// cut out into a Pod manifest of its own.
var podTemplates = map[string]string{
	"Deployment":            "spec.template",
	"ReplicaSet":            "spec.template",
	"StatefulSet":           "spec.template",
	"DaemonSet":             "spec.template",
	"ReplicationController": "spec.template",
	"Job":                   "spec.template",
	"CronJob":               "spec.jobTemplate.spec.template",
}

// typeHeader is the part of any Kubernetes object that says what it is.
type typeHeader struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// checkKind refuses, in one line, a document of a kind peapod does not run.
// A document with no kind, or a Pod of another apiVersion, is left to the
// Pod decoder, which names the field (or the apiVersion) that is wrong.
func checkKind(j []byte) error {
	var h typeHeader
	// Not strict: only the header matters here, and a malformed body is the
	// Pod decoder's to report with its path.
	if err := json.Unmarshal(j, &h); err != nil {
		return nil
	}
	if h.Kind == "" || h.Kind == "Pod" || h.APIVersion == "v1" && (h.Kind == "ConfigMap" || h.Kind == "Secret") {
		return nil
	}
	if tpl, ok := podTemplates[h.Kind]; ok {
		return invalid(fmt.Errorf("kind %s is not supported: %s; peapod has no controllers: "+
			"to run this %s's pod, make its %s a manifest of its own (apiVersion: v1, kind: Pod, with the template's metadata and spec)",
			h.Kind, supportedKinds, h.Kind, tpl))
	}
	return invalid(fmt.Errorf("kind %s is not supported: %s", h.Kind, supportedKinds))
}
