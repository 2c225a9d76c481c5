package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/peapod/peapod/runtime/layout"
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

// TestConfigMapSecretEnv_13: env[].valueFrom.configMapKeyRef/secretKeyRef
// and envFrom (with a prefix) reach the container as the kubelet sets them;
// an optional missing Secret is skipped; a key such as "1st.key" is a
// variable name under the relaxed validation of Kubernetes 1.34+. The Secret's value never appears in
// `get -o json` or events, and it is stored with the pod mode 0600. A
// missing ConfigMap fails run with the kubelet's CreateContainerConfigError
// message and creates nothing.
func TestConfigMapSecretEnv_13(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	const objects = `apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {MODE: fast, LEVEL: "3", 1st.key: one}
---
apiVersion: v1
kind: Secret
metadata: {name: sec}
stringData: {password: pa55-w0rd-e2e}
---
`
	const pod = `apiVersion: v1
kind: Pod
metadata: {name: envpod}
spec:
  containers:
  - name: a
    image: busybox:latest
    command: [sleep, "3600"]
    envFrom:
    - configMapRef: {name: cfg}
      prefix: CFG_
    - secretRef: {name: absent, optional: true}
    env:
    - {name: PW, valueFrom: {secretKeyRef: {name: sec, key: password}}}
    - {name: MODE, valueFrom: {configMapKeyRef: {name: cfg, key: MODE}}}
    - {name: ECHO, value: "level-$(CFG_LEVEL)"}
`
	out, stderr, code := e.run(strings.Replace(pod, "name: cfg}\n      prefix", "name: nope}\n      prefix", 1), "run", "-d", "-f", "-")
	if code != 1 || !strings.Contains(stderr, `<stdin>: document 1: pod default/envpod: container "a": CreateContainerConfigError: configmap "nope" not found`) {
		t.Fatalf("run with a missing ConfigMap: exit code %d\nstdout: %s\nstderr: %s", code, out, stderr)
	}
	e.assertNoLeak(before)

	out, stderr, code = e.run(objects+pod, "run", "-d", "-f", "-")
	if code != 0 {
		t.Fatalf("run: exit code %d\nstdout: %s\nstderr: %s", code, out, stderr)
	}
	env := e.mustExec("envpod", "a", "env")
	for _, want := range []string{"CFG_MODE=fast\n", "CFG_LEVEL=3\n", "PW=pa55-w0rd-e2e\n", "MODE=fast\n", "ECHO=level-3\n", "CFG_1st.key=one\n"} {
		if !strings.Contains(env, want) {
			t.Errorf("container env lacks %q:\n%s", want, env)
		}
	}
	for _, args := range [][]string{{"get", "envpod", "-o", "json"}, {"events", "envpod"}, {"ps"}} {
		if out := e.mustRun(args...); strings.Contains(out, "pa55-w0rd-e2e") {
			t.Errorf("peapod %s shows the secret's value:\n%s", strings.Join(args, " "), out)
		}
	}
	uid := string(e.get("envpod").UID)
	fi, err := os.Stat(layout.Pod(e.dirs().PodDir(uid)).Sources())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("stored sources mode = %v, want 0600", fi.Mode().Perm())
	}
	e.mustRun("rm", "-f", "envpod")
	e.assertNoLeak(before)
}

// TestConfigMapSecretVolumes_13: configMap, secret, downwardAPI and
// projected volumes hold the files the kubelet writes, read-only in the
// container; a secret volume is a tmpfs and its 0400 file is unreadable to
// another user of the pod; a missing ConfigMap fails run with the kubelet's
// FailedMount message and creates nothing.
func TestConfigMapSecretVolumes_13(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	const objects = `apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {app.conf: "port=80", other: o}
binaryData: {blob: AAE=}
---
apiVersion: v1
kind: Secret
metadata: {name: sec}
stringData: {token: t0ken-e2e-value}
---
`
	const pod = `apiVersion: v1
kind: Pod
metadata: {name: volpod, labels: {app: web}}
spec:
  containers:
  - name: a
    image: busybox:latest
    command: [sleep, "3600"]
    volumeMounts:
    - {name: cfg, mountPath: /etc/cfg}
    - {name: sec, mountPath: /etc/sec}
    - {name: meta, mountPath: /etc/meta}
    - {name: all, mountPath: /etc/all}
  - name: other
    image: busybox:latest
    command: [sleep, "3600"]
    securityContext: {runAsUser: 1000}
    volumeMounts:
    - {name: sec, mountPath: /etc/sec}
  volumes:
  - name: cfg
    configMap:
      name: cfg
      items: [{key: app.conf, path: conf/app.conf, mode: 0600}]
  - name: sec
    secret: {secretName: sec, defaultMode: 0400}
  - name: meta
    downwardAPI:
      items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}, {path: name, fieldRef: {fieldPath: metadata.name}}]
  - name: all
    projected:
      sources:
      - configMap: {name: cfg}
      - secret: {name: absent, optional: true}
`
	// Without the objects: the first volume's ConfigMap is missing.
	out, stderr, code := e.run(pod, "run", "-d", "-f", "-")
	want := `pod default/volpod: MountVolume.SetUp failed for volume "cfg" : configmap "cfg" not found`
	if code != 1 || !strings.Contains(stderr, want) {
		t.Fatalf("run with a missing ConfigMap: exit code %d, want 1 and %q\nstdout: %s\nstderr: %s", code, want, out, stderr)
	}
	e.assertNoLeak(before)

	e.runPod(objects + pod)
	got := e.mustExec("volpod", "a", "sh", "-c",
		`cd /etc && for f in cfg/conf/app.conf sec/token meta/name meta/labels all/app.conf all/other; do echo "$f $(stat -c %a $f) $(cat $f)"; done; ls all`)
	wantOut := "cfg/conf/app.conf 600 port=80\nsec/token 400 t0ken-e2e-value\nmeta/name 644 volpod\nmeta/labels 644 app=\"web\"\n" +
		"all/app.conf 644 port=80\nall/other 644 o\napp.conf\nblob\nother\n"
	if got != wantOut {
		t.Errorf("volume files:\n%s\nwant:\n%s", got, wantOut)
	}
	if _, stderr, code := e.exec("volpod", "a", "sh", "-c", "echo x > /etc/cfg/new"); code == 0 {
		t.Error("a configMap volume is writable in the container")
	} else if !strings.Contains(stderr, "Read-only file system") {
		t.Errorf("writing a configMap volume: %s", stderr)
	}
	if out, _, code := e.exec("volpod", "other", "cat", "/etc/sec/token"); code == 0 {
		t.Errorf("uid 1000 read the 0400 secret file: %q", out)
	}
	if fs := e.mustExec("volpod", "a", "stat", "-f", "-c", "%T", "/etc/sec"); fs != "tmpfs\n" {
		t.Errorf("secret volume file system = %q, want tmpfs", fs)
	}
	for _, args := range [][]string{{"get", "volpod", "-o", "json"}, {"events", "volpod"}, {"logs", "volpod", "-c", "a"}} {
		if out := e.mustRun(args...); strings.Contains(out, "t0ken-e2e-value") {
			t.Errorf("peapod %s shows the secret's value:\n%s", strings.Join(args, " "), out)
		}
	}
	e.mustRun("rm", "-f", "volpod")
	e.assertNoLeak(before)
}
