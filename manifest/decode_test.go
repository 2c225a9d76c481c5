package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const minimalPod = `apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
  containers:
  - name: app
    image: busybox:latest
`

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    []string // pod names
		wantErr string   // substring of the error; "" = success
	}{
		{name: "yaml", data: strings.ReplaceAll(minimalPod, "%s", "a"), want: []string{"a"}},
		{name: "json", data: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"j"},"spec":{"containers":[{"name":"app","image":"busybox"}]}}`, want: []string{"j"}},
		{
			name: "multi-document with empty and comment-only documents",
			data: "---\n" + strings.ReplaceAll(minimalPod, "%s", "a") + "---\n# nothing here\n---\n" + strings.ReplaceAll(minimalPod, "%s", "b") + "--- # trailing\n",
			want: []string{"a", "b"},
		},
		{
			name:    "unknown field names its path and document",
			data:    strings.ReplaceAll(minimalPod, "%s", "a") + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec:\n  contaners: []\n",
			wantErr: `pods.yaml: document 2: error unmarshaling JSON: unknown field "spec.contaners"`,
		},
		{
			name:    "unknown nested field",
			data:    "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers: [{name: a, imag: x}]\n",
			wantErr: `pods.yaml: document 1: error unmarshaling JSON: unknown field "spec.containers[0].imag"`,
		},
		{
			name:    "duplicate field",
			data:    "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers: [{name: a, image: x, image: y}]\n",
			wantErr: `pods.yaml: document 1: error converting YAML to JSON`,
		},
		{name: "malformed", data: "apiVersion: v1\nkind: Pod\nmetadata: {name: a\n", wantErr: `pods.yaml: document 1: error converting YAML to JSON: yaml: line`},
		{name: "wrong type", data: "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: a, ports: [{containerPort: x}]}]}\n", wantErr: `pods.yaml: document 1: error unmarshaling JSON`},
		{name: "no kind", data: "apiVersion: v1\nmetadata: {name: a}\n", wantErr: `pods.yaml: document 1: apiVersion "v1" kind "" is not a v1 Pod`},
		{name: "wrong apiVersion", data: "apiVersion: apps/v1\nkind: Pod\nmetadata: {name: a}\n", wantErr: `apiVersion "apps/v1" kind "Pod" is not a v1 Pod`},
		{name: "empty", data: "# only a comment\n---\n", wantErr: "pods.yaml: no pod documents found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pods, err := Decode([]byte(tt.data), "pods.yaml")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Decode() error = %v, want it to contain %q", err, tt.wantErr)
				}
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("Decode() error %v is not ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode() error = %v", err)
			}
			var names []string
			for _, p := range pods {
				names = append(names, p.Name)
			}
			if strings.Join(names, ",") != strings.Join(tt.want, ",") {
				t.Errorf("Decode() pods = %v, want %v", names, tt.want)
			}
		})
	}
}

func TestExampleLoadsCleanly(t *testing.T) {
	path := filepath.Join("..", "examples", "two-containers.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pods, warnings, err := Load(data, path)
	if err != nil {
		t.Fatalf("Load(%s) error = %v", path, err)
	}
	if len(pods) != 1 || len(pods[0].Spec.Containers) != 2 {
		t.Fatalf("Load(%s) = %d pods, want one with two containers", path, len(pods))
	}
	// busybox:latest defaults to imagePullPolicy Always, which is the only
	// thing peapod warns about here.
	for _, w := range warnings {
		if !strings.Contains(w, "imagePullPolicy: Always") {
			t.Errorf("unexpected warning %q", w)
		}
	}
}
