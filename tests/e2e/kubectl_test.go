package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// labeled sets a pod's labels.
func labeled(p *corev1.Pod, kv ...string) *corev1.Pod {
	p.Labels = map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		p.Labels[kv[i]] = kv[i+1]
	}
	return p
}

// normalise replaces what changes between runs in CLI output: ages
// ("5s", "2m3s"), dates, pod IPs, container and image IDs, and runs of
// spaces (the tab writer's padding depends on the ages' widths).
func normalise(s string) string {
	for _, r := range []struct{ re, with string }{
		{`[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}`, "DATE"},
		{`peapod://[0-9a-f]+-[a-z0-9-]+`, "peapod://ID"},
		{`sha256:[0-9a-f]{64}`, "sha256:IMAGE"},
		{`\b10\.224\.\d+\.\d+\b`, "IP"},
		{`(^|[ (])(\d+[smhdy])+\b`, "${1}AGE"},
		{` +`, " "},
	} {
		s = regexp.MustCompile(r.re).ReplaceAllString(s, r.with)
	}
	return s
}

// TestGetAndPs_13: get pods and ps list as kubectl get pods does: READY
// and STATUS by kubectl's rules (a running and a finished container is
// NotReady, not Completed), RESTARTS with the last restart's age, -o
// wide, -A, --no-headers, -l, -o name/json/yaml/jsonpath/custom-columns,
// one named pod as an object, a missing one an error, and a stopped pod
// without the address it released.
func TestGetAndPs_13(t *testing.T) {
	e := newEnv(t)
	web := labeled(newPod("web", ctr("app", "sleep", "1000"), ctr("side", "sleep", "1001")), "app", "web", "tier", "front")
	half := labeled(newPod("half", ctr("app", "sleep", "1000"), ctr("once", "true")), "app", "batch")
	half.Spec.RestartPolicy = corev1.RestartPolicyNever
	crash := labeled(newPod("crash", shell("app", "exit 1")), "app", "batch")
	other := newPod("other", ctr("app", "sleep", "1000"))
	other.Namespace = "team"
	for _, p := range []*corev1.Pod{web, half, crash} {
		e.runPod(podJSON(p))
	}
	if out, stderr, code := e.run(podJSON(other), "run", "-d", "-f", "-"); code != 0 {
		t.Fatalf("run of pod team/other: exit %d\n%s%s", code, out, stderr)
	}
	var iv inspectView
	if err := json.Unmarshal([]byte(e.mustRun("-n", "team", "inspect", "other")), &iv); err != nil {
		t.Fatal(err)
	}
	e.remember(&iv)
	e.waitPod("web", waitTimeout, func(p *corev1.Pod) (bool, string) {
		return condition(p, corev1.PodReady) == corev1.ConditionTrue, "not ready"
	})
	e.waitPod("half", waitTimeout, func(p *corev1.Pod) (bool, string) {
		cs := p.Status.ContainerStatuses
		return len(cs) == 2 && cs[1].State.Terminated != nil, "once has not finished"
	})
	e.waitPod("crash", waitTimeout, func(p *corev1.Pod) (bool, string) {
		cs := p.Status.ContainerStatuses
		return len(cs) == 1 && cs[0].RestartCount >= 1 && cs[0].State.Waiting != nil, "not restarted and waiting"
	})

	out := e.mustRun("get", "pods")
	want := "NAME READY STATUS RESTARTS AGE\n" +
		"crash 0/1 CrashLoopBackOff 1 (AGE ago) AGE\n" +
		"half 1/2 NotReady 0 AGE\n" +
		"web 2/2 Running 0 AGE\n"
	if got := normalise(out); got != want {
		t.Errorf("get pods:\n%s\nnormalised:\n%s\nwant:\n%s", out, got, want)
	}
	out = e.mustRun("get", "pods", "-o", "wide", "-A")
	want = "NAMESPACE NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES\n" +
		"default crash 0/1 CrashLoopBackOff 1 (AGE ago) AGE IP <none> <none> <none>\n" +
		"default half 1/2 NotReady 0 AGE IP <none> <none> <none>\n" +
		"default web 2/2 Running 0 AGE IP <none> <none> <none>\n" +
		"team other 1/1 Running 0 AGE IP <none> <none> <none>\n"
	if got := normalise(out); got != want {
		t.Errorf("get pods -o wide -A:\n%s\nnormalised:\n%s\nwant:\n%s", out, got, want)
	}
	if got := normalise(e.mustRun("ps", "-l", "app=batch", "--no-headers")); got != "default crash 0/1 CrashLoopBackOff 1 (AGE ago) AGE IP\ndefault half 1/2 NotReady 0 AGE IP\n" {
		t.Errorf("ps -l app=batch --no-headers:\n%s", got)
	}
	if got := e.mustRun("get", "pods", "-l", "app in (web,batch),tier!=front", "-o", "name"); got != "pod/crash\npod/half\n" {
		t.Errorf("get -l 'app in (web,batch),tier!=front' -o name = %q", got)
	}
	if got := e.mustRun("get", "pods", "-A", "-o", "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}{\"\\n\"}{end}"); got != "default/crash\ndefault/half\ndefault/web\nteam/other\n" {
		t.Errorf("jsonpath range = %q", got)
	}
	ip := e.ipOf("web")
	if got := e.mustRun("get", "pod", "web", "-o", "jsonpath={.status.podIP}"); got != ip {
		t.Errorf("get pod web -o jsonpath={.status.podIP} = %q, want %q", got, ip)
	}
	if got := normalise(e.mustRun("get", "pods", "-l", "app=web", "-o", "custom-columns=NAME:.metadata.name,IMAGES:.spec.containers[*].image,IP:status.podIP")); got != "NAME IMAGES IP\nweb busybox:latest,busybox:latest IP\n" {
		t.Errorf("custom-columns:\n%s", got)
	}
	var list struct {
		Kind  string       `json:"kind"`
		Items []corev1.Pod `json:"items"`
	}
	if err := json.Unmarshal([]byte(e.mustRun("get", "pods", "-o", "json")), &list); err != nil || list.Kind != "List" || len(list.Items) != 3 {
		t.Errorf("get pods -o json: kind %q, %d items, err %v; want a List of 3", list.Kind, len(list.Items), err)
	}
	if y := e.mustRun("get", "pod", "web", "-o", "yaml"); !strings.HasPrefix(y, "apiVersion: v1\n") || !strings.Contains(y, "\nkind: Pod\n") {
		t.Errorf("get pod web -o yaml is not the pod:\n%s", y)
	}
	// The resource word may be left out, as before.
	if got := e.get("web"); got.Name != "web" {
		t.Errorf("get web -o json named %q", got.Name)
	}

	_, stderr, code := e.run("", "get", "pod", "web", "nosuch")
	if code != 1 || !strings.Contains(stderr, `pod "nosuch" in namespace "default"`) {
		t.Errorf("get pod web nosuch: exit %d, stderr %q; want 1 naming nosuch", code, stderr)
	}
	for _, bad := range [][]string{
		{"get", "pods", "-o", "xml"},
		{"get", "pods", "-o", "jsonpath={.items[?(@.x==}"},
		{"get", "pods", "-l", "app=("},
		{"get", "pods", "web", "-l", "app=web"},
		{"get", "pods", "web", "-A"},
		{"get"},
	} {
		if out, stderr, code := e.run("", bad...); code != 1 || stderr == "" || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 1, an error and no output", bad, code, out, stderr)
		}
	}
	if out, stderr, code := e.run("", "-n", "empty", "get", "pods"); code != 0 || out != "" || stderr != "No resources found in empty namespace.\n" {
		t.Errorf("get pods in an empty namespace: exit %d, stdout %q, stderr %q", code, out, stderr)
	}

	// Stop releases the address: no IP shown.
	_, stderr = e.mustRunErr("stop", "-l", "app=web", "--grace-period", "5")
	if !strings.Contains(stderr, "pod/web: waiting up to 5s for its containers to exit gracefully") {
		t.Errorf("stop --grace-period 5 did not say how long it waits: %q", stderr)
	}
	if got := normalise(e.mustRun("ps", "-l", "app=web")); got != "NAMESPACE NAME READY STATUS RESTARTS AGE IP\ndefault web 0/2 Stopped 0 AGE <none>\n" {
		t.Errorf("ps of a stopped pod:\n%s", got)
	}
	if got := e.get("web"); got.Status.PodIP != "" {
		t.Errorf("a stopped pod's podIP is %q, want none", got.Status.PodIP)
	}
	if got := e.mustRun("rm", "-l", "app=batch", "-f"); got != "pod/crash removed\npod/half removed\n" {
		t.Errorf("rm -l app=batch -f = %q", got)
	}
}

// mustRunErr is mustRun returning stderr too.
func (e *env) mustRunErr(args ...string) (string, string) {
	e.t.Helper()
	out, stderr, code := e.run("", args...)
	if code != 0 {
		e.t.Fatalf("peapod %s: exit code %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, stderr)
	}
	return out, stderr
}

// TestDescribe_13: describe prints kubectl's human view of a real pod:
// compared, ages, dates and IDs normalised, with a golden text.
func TestDescribe_13(t *testing.T) {
	e := newEnv(t)
	p := labeled(newPod("desc", ctr("app", "sleep", "1000")), "app", "desc")
	p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{
		Command: []string{"sh", "-c", "echo first; echo second; exit 1"}}}, PeriodSeconds: 1}
	p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "MODE", Value: "test"}}
	p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}
	p.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	e.runPod(podJSON(p))
	e.waitEvents("desc", "Unhealthy")
	out := e.mustRun("describe", "pod", "desc")
	// The probe's failures repeat, and the count grows between two
	// describes: "AGE" for one failure, "AGE (x2 over AGE)" for more.
	repeats := regexp.MustCompile(`AGE( \(x\d+ over AGE\))? peapod spec\.containers\{app\}: Readiness`)
	norm := func(s string) string {
		return repeats.ReplaceAllString(normalise(s), "AGE (xN over AGE) peapod spec.containers{app}: Readiness")
	}
	got := norm(out)
	want := `Name: desc
Namespace: default
Node: <none>
Start Time: DATE
Labels: app=desc
Annotations: <none>
Status: Running
IP: IP
IPs:
 IP: IP
Containers:
 app:
 Container ID: peapod://ID
 Image: busybox:latest
 Image ID: sha256:IMAGE
 Port: <none>
 Host Port: <none>
 Command:
 sleep
 1000
 State: Running
 Started: DATE
 Ready: False
 Restart Count: 0
 Readiness: exec [sh -c echo first; echo second; exit 1] delay=0s timeout=1s period=1s successThreshold=1 failureThreshold=3
 Environment:
 MODE: test
 Mounts:
 /scratch from scratch (rw)
Conditions:
 Type Status
 PodScheduled True 
 Initialized True 
 ContainersReady False 
 Ready False 
Volumes:
 scratch:
 Type: EmptyDir (a temporary directory that shares a pod's lifetime)
 Medium: 
 SizeLimit: <unset>
QoS Class: BestEffort
Node-Selectors: <none>
Tolerations: <none>
Events:
 Type Reason Age From Message
 ---- ------ ---- ---- -------
 Normal Started AGE peapod spec.containers{app}: Started container app
 Warning Unhealthy AGE (xN over AGE) peapod spec.containers{app}: Readiness probe failed: first\nsecond
`
	if got != want {
		t.Errorf("describe pod desc:\n%s\nnormalised:\n%s\nwant:\n%s", out, got, want)
	}
	// events rows stay one line each: the probe's output is escaped.
	ev := e.mustRun("events", "desc")
	for _, l := range strings.Split(strings.TrimSpace(ev), "\n")[1:] {
		if !strings.HasPrefix(l, strings.Fields(l)[0]) || !regexp.MustCompile(`^\S+.*(Normal|Warning)`).MatchString(l) {
			t.Errorf("events row %q is not a whole row:\n%s", l, ev)
		}
	}
	if !strings.Contains(ev, `Readiness probe failed: first\nsecond`) {
		t.Errorf("events do not escape the probe's newline:\n%s", ev)
	}
	if got := e.mustRun("describe", "-l", "app=desc"); norm(got) != norm(out) {
		t.Errorf("describe -l app=desc differs from describe desc:\n%s\nthen:\n%s", out, got)
	}
	if _, stderr, code := e.run("", "describe", "nosuch"); code != 1 || !strings.Contains(stderr, "nosuch") {
		t.Errorf("describe nosuch: exit %d, stderr %q", code, stderr)
	}
}

// TestApplyDelete_13: apply creates what is missing, leaves an identical
// pod alone (same uid), replaces a changed one (new uid), and says so
// per pod in kubectl's words; a bad document changes nothing; delete
// takes -f, names, -l and --all.
func TestApplyDelete_13(t *testing.T) {
	e := newEnv(t)
	dir := shortTempDir(t)
	file := dir + "/pods.yaml"
	// sleep, PID 1 of its container, ignores SIGTERM: no grace period
	// to wait through when apply replaces it.
	zero := int64(0)
	a := labeled(newPod("a", ctr("c", "sleep", "1000")), "app", "x")
	a.Spec.TerminationGracePeriodSeconds = &zero
	b := labeled(newPod("b", ctr("c", "sleep", "1000")), "app", "y")
	write := func(pods ...*corev1.Pod) {
		var docs []string
		for _, p := range pods {
			docs = append(docs, podJSON(p))
		}
		if err := os.WriteFile(file, []byte(strings.Join(docs, "\n---\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(a)
	if got := e.mustRun("apply", "-f", file); got != "pod/a created\n" {
		t.Errorf("first apply = %q", got)
	}
	uidA := e.get("a").UID
	write(a, b)
	if got := e.mustRun("apply", "-f", file); got != "pod/a unchanged\npod/b created\n" {
		t.Errorf("second apply = %q", got)
	}
	if uid := e.get("a").UID; uid != uidA {
		t.Errorf("unchanged pod a was replaced: uid %s, was %s", uid, uidA)
	}
	uidB := e.get("b").UID
	a2 := a.DeepCopy()
	a2.Spec.Containers[0].Command = []string{"sleep", "2000"}
	write(a2, b)
	if got := e.mustRun("apply", "-f", file); got != "pod/a configured\npod/b unchanged\n" {
		t.Errorf("third apply = %q", got)
	}
	got := e.get("a")
	if got.UID == uidA || got.Spec.Containers[0].Command[1] != "2000" {
		t.Errorf("configured pod a: uid %s (was %s), command %v; want a new pod running sleep 2000", got.UID, uidA, got.Spec.Containers[0].Command)
	}
	if e.get("b").UID != uidB {
		t.Errorf("unchanged pod b was replaced")
	}
	// A bad document: nothing changes, exit 1.
	bad := a2.DeepCopy()
	bad.Spec.Containers[0].Image = ""
	write(bad, labeled(newPod("c", ctr("c", "sleep", "1")), "app", "z"))
	if out, stderr, code := e.run("", "apply", "-f", file); code != 1 || out != "" || !strings.Contains(stderr, "image") {
		t.Errorf("apply of an invalid manifest: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if _, _, code := e.run("", "get", "pod", "c"); code != 1 {
		t.Errorf("apply of an invalid manifest created pod c")
	}
	if got := e.get("a"); got.Spec.Containers[0].Image != "busybox:latest" {
		t.Errorf("apply of an invalid manifest changed pod a")
	}

	write(a2)
	if got := e.mustRun("delete", "-f", file); got != "pod \"a\" deleted\n" {
		t.Errorf("delete -f = %q", got)
	}
	if _, stderr, code := e.run("", "delete", "pod", "a"); code != 1 || !strings.Contains(stderr, `pods "a" not found`) {
		t.Errorf("delete of a deleted pod: exit %d, stderr %q", code, stderr)
	}
	if _, _, code := e.run("", "delete", "pod", "a", "--ignore-not-found"); code != 0 {
		t.Errorf("delete --ignore-not-found of a missing pod: exit %d", code)
	}
	e.runPod(podJSON(labeled(newPod("d", ctr("c", "sleep", "1000")), "app", "y")))
	if got := e.mustRun("delete", "-l", "app=y", "--force", "--grace-period=0"); got != "pod \"b\" deleted\npod \"d\" deleted\n" {
		t.Errorf("delete -l app=y = %q", got)
	}
	e.runPod(podJSON(newPod("e", ctr("c", "sleep", "1000"))))
	if got := e.mustRun("delete", "--all", "--grace-period=0"); got != "pod \"e\" deleted\n" {
		t.Errorf("delete --all = %q", got)
	}
	for _, bad := range [][]string{{"delete"}, {"delete", "x", "--all"}, {"delete", "x", "--force"}} {
		if _, stderr, code := e.run("", bad...); code != 1 || stderr == "" {
			t.Errorf("%v: exit %d stderr %q, want 1 and an error", bad, code, stderr)
		}
	}
	if out := e.mustRun("get", "pods", "-A", "-o", "name"); out != "" {
		t.Errorf("pods left after delete --all: %q", out)
	}
}

// lines reads a running command's stdout line by line.
func lines(t *testing.T, cmd *exec.Cmd) <-chan string {
	t.Helper()
	r, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan string, 100)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}

// awaitLine waits for a line matching re.
func awaitLine(t *testing.T, ch <-chan string, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	timeout := time.After(waitTimeout)
	var seen []string
	for {
		select {
		case l, ok := <-ch:
			if !ok {
				t.Fatalf("output ended before a line matching %q; saw %q", re, seen)
			}
			if rx.MatchString(l) {
				return l
			}
			seen = append(seen, l)
		case <-timeout:
			t.Fatalf("no line matching %q after %v; saw %q", re, waitTimeout, seen)
		}
	}
}

// TestWatch_13: get -w prints a pod again as it changes, events -w each
// new event, and logs -f follows a container across its restart; none
// polls (they wait on inotify), so they see changes made after they
// started.
func TestWatch_13(t *testing.T) {
	// Restarts in half a second, not the kubelet's 10 s back-off.
	e := newEnv(t, withFlags("--backoff-initial", "0.5", "--backoff-max", "0.5"))
	watch := exec.Command(e.bin, e.args("get", "pods", "-w")...)
	wl := lines(t, watch)
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { watch.Process.Kill(); watch.Wait() })
	p := newPod("w", shell("c", "echo run-$(cat /proc/uptime | cut -d' ' -f1); sleep 0.5; exit 1"))
	p.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	e.runPod(podJSON(p))
	awaitLine(t, wl, `^NAME +READY +STATUS`)
	awaitLine(t, wl, `^w +\S+ +(Running|Error|CrashLoopBackOff)`)
	awaitLine(t, wl, `^w +0/1 +(Error|CrashLoopBackOff) +[1-9]`)

	logs := exec.Command(e.bin, e.args("logs", "w", "-f", "--timestamps")...)
	ll := lines(t, logs)
	if err := logs.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logs.Process.Kill(); logs.Wait() })
	first := awaitLine(t, ll, ` run-`)
	// A later instance's line (a restart), while logs -f still runs.
	next := awaitLine(t, ll, ` run-`)
	if next == first {
		t.Errorf("logs -f printed the same line twice: %q", next)
	}

	ev := exec.Command(e.bin, e.args("events", "w", "-w")...)
	el := lines(t, ev)
	if err := ev.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Process.Kill(); ev.Wait() })
	awaitLine(t, el, `^LAST SEEN`)
	// Each further restart repeats BackOff or Started: a new count.
	awaitLine(t, el, `\(x\d+ over`)
}

// TestLogsSelectors_13: logs --all-containers, --prefix, -l and --since.
func TestLogsSelectors_13(t *testing.T) {
	e := newEnv(t)
	p := labeled(newPod("lg", shell("a", "echo from-a; sleep 1000"), shell("b", "echo from-b; sleep 1000")), "app", "lg")
	p.Spec.InitContainers = []corev1.Container{shell("init", "echo from-init")}
	e.runPod(podJSON(p))
	e.waitLog("lg", "b", "from-b")
	e.waitLog("lg", "a", "from-a")
	if got := e.mustRun("logs", "lg", "--all-containers", "--prefix"); got != "[pod/lg/init] from-init\n[pod/lg/a] from-a\n[pod/lg/b] from-b\n" {
		t.Errorf("logs --all-containers --prefix = %q", got)
	}
	if got := e.mustRun("logs", "-l", "app=lg", "--prefix"); got != "[pod/lg/a] from-a\n" {
		t.Errorf("logs -l app=lg --prefix = %q", got)
	}
	if got := e.mustRun("logs", "lg", "-c", "b", "--since", "1h"); got != "from-b\n" {
		t.Errorf("logs --since 1h = %q", got)
	}
	time.Sleep(1100 * time.Millisecond) // the only way to age a log line
	if got := e.mustRun("logs", "lg", "-c", "b", "--since", "1s"); got != "" {
		t.Errorf("logs --since 1s printed a line older than that: %q", got)
	}
	for _, bad := range [][]string{
		{"logs", "lg", "-c", "a", "--all-containers"},
		{"logs", "lg", "-c", "a", "--since", "-5s"},
		{"logs", "lg", "-c", "a", "--tail", "-2"},
		{"logs", "lg", "-l", "app=lg"},
		{"logs"},
	} {
		if out, stderr, code := e.run("", bad...); code != 1 || out != "" || stderr == "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 1 and an error", bad, code, out, stderr)
		}
	}
	// A selector that matches nothing is no error for rm and stop, as for
	// kubectl delete -l.
	if out, stderr, code := e.run("", "rm", "-f", "-l", "app=none"); code != 0 || out != "" || !strings.Contains(stderr, "No resources found") {
		t.Errorf("rm -l matching nothing: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
}

// TestApplyRace_13: applies of one manifest at once, to create and then
// to replace a pod, all succeed and leave one pod with the manifest's
// spec and nothing else behind.
func TestApplyRace_13(t *testing.T) {
	e := newEnv(t)
	dir := shortTempDir(t)
	file := dir + "/pod.yaml"
	// The root's apply lock outlives the applies, as the root's lock does.
	if err := os.WriteFile(file, []byte(podJSON(newPod("warm", ctr("c", "true")))), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustRun("apply", "-f", file)
	e.mustRun("delete", "-f", file, "--force", "--grace-period=0")
	before := e.snapshot()
	zero := int64(0)
	p := newPod("race", ctr("c", "sleep", "1000"))
	p.Spec.TerminationGracePeriodSeconds = &zero
	for _, cmd := range []string{"1000", "2000"} {
		p.Spec.Containers[0].Command[1] = cmd
		if err := os.WriteFile(file, []byte(podJSON(p)), 0o644); err != nil {
			t.Fatal(err)
		}
		const n = 3
		outs := make([]string, n)
		errs := parallel(n, func(i int) error {
			out, stderr, code, err := e.runNoFail("", "apply", "-f", file)
			if err != nil {
				return err
			}
			if code != 0 {
				return fmt.Errorf("apply %d: exit %d: %s", i, code, stderr)
			}
			outs[i] = out
			return nil
		})
		for _, err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		for _, out := range outs {
			if !regexp.MustCompile(`^pod/race (created|unchanged|configured)\n$`).MatchString(out) {
				t.Errorf("apply printed %q", out)
			}
		}
		got := e.get("race")
		if got.Spec.Containers[0].Command[1] != cmd {
			t.Errorf("after concurrent applies the pod runs %v, want sleep %s", got.Spec.Containers[0].Command, cmd)
		}
		if names := e.mustRun("get", "pods", "-o", "name"); names != "pod/race\n" {
			t.Errorf("pods after concurrent applies: %q", names)
		}
		e.inspect("race")
	}
	e.mustRun("delete", "pod", "race")
	e.assertNoLeak(before)
}

// TestLogsFollowRotation_13: logs -f, started before the container
// writes 25 MB, prints every line once and in order although the
// supervisor rotates the log (at 10 MiB) several times meanwhile. (A
// follower that does not reopen the log after a rotation stalls here at
// the first one.)
func TestLogsFollowRotation_13(t *testing.T) {
	e := newEnv(t)
	const lines = 250000
	script := fmt.Sprintf(`echo ready; while [ ! -e /tmp/go ]; do sleep 0.1; done; yes "$(printf '%%090d' 0)" | head -n %d | awk '{print NR " " $0}'; echo END; sleep 1000`, lines)
	e.runPod(podJSON(newPod("big", shell("c", script))))
	follow := exec.Command(e.bin, e.args("logs", "big", "-f")...)
	ch := make(chan string, 1024)
	r, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { follow.Process.Kill(); follow.Wait() })
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	awaitLine(t, ch, `^ready$`)
	e.mustExec("big", "c", "touch", "/tmp/go")
	next := 1
	timeout := time.After(30 * time.Second)
	for done := false; !done; {
		select {
		case l, ok := <-ch:
			if !ok {
				t.Fatalf("logs -f ended after line %d", next-1)
			}
			if l == "END" {
				done = true
				break
			}
			n, _, _ := strings.Cut(l, " ")
			if n != fmt.Sprint(next) {
				t.Fatalf("logs -f printed line %q after line %d: a line lost or repeated across rotation", n, next-1)
			}
			next++
		case <-timeout:
			t.Fatalf("logs -f printed %d of %d lines in 30 s", next-1, lines)
		}
	}
	if next-1 != lines {
		t.Errorf("logs -f printed %d lines before END, want %d", next-1, lines)
	}
	rotated, _ := filepath.Glob(filepath.Join(e.root, "pods", "*", "logs", "c", "0.log.*"))
	if len(rotated) < 2 {
		t.Errorf("the log was rotated into %d files, want at least 2 for the test to mean anything", len(rotated))
	}
}
