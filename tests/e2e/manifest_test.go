package e2e

import (
	"strings"
	"testing"

	"github.com/peapod/peapod/internal/testutil"
)

// TestBadManifest_9: each kind of bad manifest fails run with a message
// that names the offending field, and creates nothing: not the pod, not its
// network, not even the root's bridge on first use.
func TestBadManifest_9(t *testing.T) {
	tests := []struct {
		name     string
		manifest string
		want     []string // substrings of stderr
	}{{
		name: "malformed YAML",
		manifest: `apiVersion: v1
kind: Pod
metadata:
  name: x
spec:
  containers:
  - name: a
    image: busybox:latest
   command: [sleep, "1"]
`,
		want: []string{"yaml: line 8: did not find expected key"},
	}, {
		name: "unknown field",
		manifest: `apiVersion: v1
kind: Pod
metadata: {name: x}
spec:
  containers:
  - {name: a, image: busybox:latest, command: [sleep, "1"], bogusField: 1}
`,
		want: []string{`unknown field "spec.containers[0].bogusField"`},
	}, {
		name: "bad name",
		manifest: `apiVersion: v1
kind: Pod
metadata: {name: Bad_Name}
spec:
  containers:
  - {name: a, image: busybox:latest, command: [sleep, "1"]}
`,
		want: []string{`metadata.name: Invalid value: "Bad_Name"`},
	}, {
		name: "duplicate container name",
		manifest: `apiVersion: v1
kind: Pod
metadata: {name: x}
spec:
  containers:
  - {name: app, image: busybox:latest, command: [sleep, "1"]}
  - {name: app, image: busybox:latest, command: [sleep, "1"]}
`,
		want: []string{`spec.containers[1].name: Duplicate value: "app"`},
	}, {
		name: "duplicate port",
		manifest: `apiVersion: v1
kind: Pod
metadata: {name: x}
spec:
  containers:
  - {name: a, image: busybox:latest, command: [sleep, "1"], ports: [{containerPort: 80}]}
  - {name: b, image: busybox:latest, command: [sleep, "1"], ports: [{containerPort: 80}]}
`,
		want: []string{"spec.containers[1].ports[0].containerPort", "80"},
	}, {
		name: "no image",
		manifest: `apiVersion: v1
kind: Pod
metadata: {name: x}
spec:
  containers:
  - {name: a, command: [sleep, "1"]}
`,
		want: []string{"spec.containers[0].image: Required value"},
	}, {
		name: "missing image",
		manifest: `apiVersion: v1
kind: Pod
metadata: {name: x}
spec:
  containers:
  - {name: a, image: "127.0.0.1:1/nosuch:1.0", imagePullPolicy: IfNotPresent, command: [sleep, "1"]}
`,
		// Port 1 on loopback refuses: the pull fails without leaving the machine.
		want: []string{`spec.containers[0].image: Invalid value: "127.0.0.1:1/nosuch:1.0"`, "ErrImagePull", "connection refused"},
	}, {
		name: "missing image, pull policy Never",
		manifest: `apiVersion: v1
kind: Pod
metadata: {name: x}
spec:
  initContainers:
  - {name: i, image: "nosuch:2.0", imagePullPolicy: Never, command: [sleep, "1"]}
  containers:
  - {name: a, image: busybox:latest, command: [sleep, "1"]}
`,
		want: []string{`spec.initContainers[0].image: Invalid value: "nosuch:2.0"`, "ErrImageNeverPull", "`peapod image pull nosuch:2.0`", "`peapod image import FILE --name nosuch:2.0`"},
	}, {
		name: "bad volume reference",
		manifest: `apiVersion: v1
kind: Pod
metadata: {name: x}
spec:
  containers:
  - {name: a, image: busybox:latest, command: [sleep, "1"], volumeMounts: [{name: nope, mountPath: /x}]}
`,
		want: []string{`spec.containers[0].volumeMounts[0].name: Not found: "nope"`},
	}, {
		name: "bad probe",
		manifest: `apiVersion: v1
kind: Pod
metadata: {name: x}
spec:
  containers:
  - {name: a, image: busybox:latest, command: [sleep, "1"], livenessProbe: {periodSeconds: 5}}
`,
		want: []string{"spec.containers[0].livenessProbe", "handler"},
	}, {
		name: "bad second document",
		manifest: `apiVersion: v1
kind: Pod
metadata: {name: good}
spec:
  containers:
  - {name: a, image: busybox:latest, command: [sleep, "1"]}
---
apiVersion: v1
kind: Pod
metadata: {name: bad}
spec:
  containers:
  - {name: a, image: busybox:latest, command: [sleep, "1"], bogus: 1}
`,
		want: []string{"document 2", `unknown field "spec.containers[0].bogus"`},
	}}
	e := newEnv(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.on(t)
			// A fresh root: a bad manifest must not even set up the root's
			// network.
			before := testutil.TakeSnapshot(t, e.roots())
			out, stderr, code := e.run(tt.manifest, "run", "-d", "-f", "-")
			if code == 0 {
				t.Fatalf("run accepted the manifest; stdout: %s", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not say %q:\n%s", w, stderr)
				}
			}
			if strings.Contains(out, "created") {
				t.Errorf("run says it created something: %s", out)
			}
			e.assertNoLeak(before)
		})
	}
}
