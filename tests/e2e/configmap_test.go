package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigMapFiles_13: run takes several -f, as `podman kube play` does:
// a ConfigMap and a Secret in files of their own beside the pod's file are
// accepted; a Secret whose key would leave its volume directory fails the
// whole run, naming the key and file but never the value, and creates
// nothing.
func TestConfigMapFiles_13(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cm := write("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {greeting: hello}\n")
	badSecret := write("secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: sec}\nstringData: {../escape: hunter2}\n")
	pod := write("pod.yaml", `apiVersion: v1
kind: Pod
metadata: {name: cfgpod}
spec:
  containers:
  - {name: a, image: busybox:latest, command: [sleep, "3600"]}
`)

	out, stderr, code := e.run("", "run", "-d", "-f", cm, "-f", badSecret, "-f", pod)
	if code != 1 {
		t.Fatalf("run with a bad Secret: exit code %d, want 1\nstdout: %s\nstderr: %s", code, out, stderr)
	}
	want := badSecret + `: document 1: Secret "default/sec": data[../escape]: Invalid value: "../escape": must not start with '..'`
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr does not say %q:\n%s", want, stderr)
	}
	if strings.Contains(stderr+out, "hunter2") {
		t.Errorf("run printed the secret's value:\n%s%s", out, stderr)
	}
	if strings.Contains(out, "created") {
		t.Errorf("run says it created something: %s", out)
	}
	e.assertNoLeak(before)

	out = e.mustRun("run", "-d", "-f", cm, "-f", pod)
	if out != "pod/cfgpod created\n" {
		t.Errorf("run -f cm.yaml -f pod.yaml printed %q", out)
	}
	e.mustRun("rm", "-f", "cfgpod")
	e.assertNoLeak(before)
}
