package manifest

import (
	"testing"
)

const benchManifest = `apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: app
    image: busybox:1.36
    command: ["busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]
    ports: [{name: http, containerPort: 8080}]
    volumeMounts: [{name: www, mountPath: /www, readOnly: true}]
    readinessProbe: {httpGet: {port: http}}
  - name: sidecar
    image: busybox:1.36
    command: ["sh", "-c", "while true; do date > /www/index.html; sleep 5; done"]
    env: [{name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
    volumeMounts: [{name: www, mountPath: /www}]
  volumes: [{name: www, emptyDir: {}}]
`

func BenchmarkLoad(b *testing.B) {
	data := []byte(benchManifest)
	for b.Loop() {
		if _, _, err := Load(data, "bench.yaml"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkToSpec(b *testing.B) {
	pods, _, err := Load([]byte(benchManifest), "bench.yaml")
	if err != nil {
		b.Fatal(err)
	}
	in := testInput()
	pod := pods[0]
	for b.Loop() {
		if _, _, err := ToSpec(pod, in); err != nil {
			b.Fatal(err)
		}
	}
}
