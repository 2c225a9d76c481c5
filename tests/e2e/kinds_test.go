package e2e

import (
	"strings"
	"testing"

	"github.com/peapod/peapod/internal/testutil"
)

// TestOtherKinds_13: run with a manifest of a kind peapod does not run
// fails with one line saying so (a workload also names its pod template),
// exit 1, and creates nothing, not even the valid pod beside it in the file.
func TestOtherKinds_13(t *testing.T) {
	const pod = `apiVersion: v1
kind: Pod
metadata: {name: beside}
spec:
  containers:
  - {name: a, image: busybox:latest, command: [sleep, "1"]}
---
`
	tests := []struct {
		name     string
		manifest string
		want     string
	}{{
		name:     "service",
		manifest: pod + "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports: [{port: 80}]\n",
		want:     "<stdin>: document 2: kind Service is not supported: peapod runs v1 Pods (and the ConfigMaps and Secrets they use)\n",
	}, {
		name: "deployment",
		manifest: pod + `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: a, image: busybox:latest}]
`,
		want: "kind Deployment is not supported: peapod runs v1 Pods (and the ConfigMaps and Secrets they use); " +
			"peapod has no controllers: to run this Deployment's pod, make its spec.template a manifest of its own",
	}}
	e := newEnv(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.on(t)
			before := testutil.TakeSnapshot(t, e.roots())
			out, stderr, code := e.run(tt.manifest, "run", "-d", "-f", "-")
			if code != 1 {
				t.Fatalf("run exit code = %d, want 1; stdout: %s; stderr: %s", code, out, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr does not say %q:\n%s", tt.want, stderr)
			}
			if strings.Contains(stderr, "unknown field") {
				t.Errorf("stderr reports a field error:\n%s", stderr)
			}
			if strings.Contains(out, "created") {
				t.Errorf("run says it created something: %s", out)
			}
			e.assertNoLeak(before)
		})
	}
}
