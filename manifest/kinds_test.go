package manifest

import (
	"errors"
	"strings"
	"testing"
)

// TestDecodeOtherKinds: a document of a kind peapod does not run gets one
// line saying so (a workload kind also names its pod template), not a
// field error against the Pod schema such as `unknown field "data"`.
func TestDecodeOtherKinds(t *testing.T) {
	const unsupported = "is not supported: peapod runs v1 Pods (and the ConfigMaps and Secrets they use)"
	tests := []struct {
		name string
		data string
		want string // the whole message after "pods.yaml: document N: "
		doc  int
	}{
		{
			name: "service",
			data: "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports: [{port: 80}]\n",
			want: "kind Service " + unsupported,
			doc:  1,
		},
		{
			name: "after a pod",
			data: strings.ReplaceAll(minimalPod, "%s", "a") + "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: in}\nspec: {}\n",
			want: "kind Ingress " + unsupported,
			doc:  2,
		},
		{
			name: "json",
			data: `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"n"}}`,
			want: "kind Namespace " + unsupported,
			doc:  1,
		},
	}
	for kind, tpl := range map[string]string{
		"Deployment": "spec.template", "ReplicaSet": "spec.template", "StatefulSet": "spec.template",
		"DaemonSet": "spec.template", "Job": "spec.template", "ReplicationController": "spec.template",
		"CronJob": "spec.jobTemplate.spec.template",
	} {
		tests = append(tests, struct {
			name string
			data string
			want string
			doc  int
		}{
			name: kind,
			data: "apiVersion: apps/v1\nkind: " + kind + "\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers: [{name: a, image: busybox}]\n",
			want: "kind " + kind + " " + unsupported + "; peapod has no controllers: to run this " + kind + "'s pod, make its " + tpl +
				" a manifest of its own (apiVersion: v1, kind: Pod, with the template's metadata and spec)",
			doc: 1,
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.data), "pods.yaml")
			if err == nil {
				t.Fatal("Decode() accepted the document")
			}
			want := "pods.yaml: document " + string(rune('0'+tt.doc)) + ": " + tt.want
			if err.Error() != want {
				t.Errorf("Decode() error =\n%s\nwant\n%s", err, want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Decode() error %v is not ErrInvalid", err)
			}
		})
	}
}
