package printers

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/peapod/peapod/runtime/state"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// twoPods are a running web pod of two containers and a finished job.
func twoPods() []Pod {
	web := testPod(corev1.PodRunning, nil, []string{"app", "side"})
	web.Labels = map[string]string{"app": "web"}
	web.Spec.Containers[0].Image, web.Spec.Containers[1].Image = "nginx:1.27", "busybox:latest"
	web.Status.PodIP, web.Status.PodIPs = "10.220.0.2", []corev1.PodIP{{IP: "10.220.0.2"}}
	start := at(time.Second)
	web.Status.StartTime = &start
	web.Status.ContainerStatuses = []corev1.ContainerStatus{running("app", true), running("side", true)}
	web.Status.Conditions = []corev1.PodCondition{cond(corev1.PodReady, true)}
	job := testPod(corev1.PodSucceeded, nil, []string{"main"})
	job.Name = "job"
	job.Labels = map[string]string{"app": "batch"}
	job.Spec.Containers[0].Image = "busybox:latest"
	job.Status.ContainerStatuses = []corev1.ContainerStatus{terminated("main", "Completed", 0, 0)}
	return []Pod{{Pod: web}, {Pod: job}}
}

func render(t *testing.T, o Options, pods []Pod) string {
	t.Helper()
	o.Now = now
	p, err := New(o)
	if err != nil {
		t.Fatalf("New(%+v): %v", o, err)
	}
	var b bytes.Buffer
	if err := p.Print(&b, pods, true); err != nil {
		t.Fatalf("Print -o %s: %v", o.Output, err)
	}
	return b.String()
}

// TestTables: the get table, -A, -o wide, ps's columns, --no-headers and
// a STATUS peapod sets itself.
func TestTables(t *testing.T) {
	pods := twoPods()
	tests := []struct {
		name string
		o    Options
		want string
	}{{
		name: "get pods",
		want: "" +
			"NAME   READY   STATUS      RESTARTS   AGE\n" +
			"web    2/2     Running     0          10m\n" +
			"job    0/1     Completed   0          10m\n",
	}, {
		name: "get pods -A -o wide",
		o:    Options{Output: "wide", Namespace: true},
		want: "" +
			"NAMESPACE   NAME   READY   STATUS      RESTARTS   AGE   IP           NODE     NOMINATED NODE   READINESS GATES\n" +
			"default     web    2/2     Running     0          10m   10.220.0.2   <none>   <none>           <none>\n" +
			"default     job    0/1     Completed   0          10m   <none>       <none>   <none>           <none>\n",
	}, {
		name: "ps",
		o:    Options{Namespace: true, IP: true},
		want: "" +
			"NAMESPACE   NAME   READY   STATUS      RESTARTS   AGE   IP\n" +
			"default     web    2/2     Running     0          10m   10.220.0.2\n" +
			"default     job    0/1     Completed   0          10m   <none>\n",
	}, {
		name: "no headers",
		o:    Options{NoHeaders: true},
		want: "" +
			"web    2/2     Running     0          10m\n" +
			"job    0/1     Completed   0          10m\n",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// kubectl's table writer pads to at least 10 columns per cell.
			got := render(t, tt.o, pods)
			if norm(got) != norm(tt.want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
	stopped := []Pod{{Pod: pods[1].Pod, Status: "Stopped"}}
	if got := render(t, Options{NoHeaders: true}, stopped); !strings.Contains(got, " Stopped ") {
		t.Errorf("a STATUS override is not printed: %q", got)
	}
}

// norm collapses runs of spaces, so table tests say what is in each
// column, not the tab writer's padding (TestGolden pins that).
func norm(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		out = append(out, strings.Join(strings.Fields(l), " "))
	}
	return strings.Join(out, "\n")
}

// TestJSONAndYAMLList: several pods print as kubectl's v1 List, one named
// pod as itself; keys sort as kubectl prints unstructured objects.
func TestJSONAndYAMLList(t *testing.T) {
	pods := twoPods()
	out := render(t, Options{Output: "json"}, pods)
	var list struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Items      []corev1.Pod      `json:"items"`
		Metadata   map[string]string `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("-o json is not JSON: %v\n%s", err, out)
	}
	if list.APIVersion != "v1" || list.Kind != "List" || len(list.Items) != 2 || list.Items[1].Name != "job" {
		t.Errorf("-o json = %s", out)
	}
	if rv, ok := list.Metadata["resourceVersion"]; !ok || rv != "" {
		t.Errorf("List metadata %v, want resourceVersion \"\" as kubectl prints it", list.Metadata)
	}
	if !strings.HasPrefix(out, "{\n    \"apiVersion\": \"v1\",\n    \"items\": [\n") || !strings.HasSuffix(out, "\n}\n") {
		t.Errorf("-o json layout differs from kubectl's (4-space indent, sorted keys):\n%s", out)
	}
	y := render(t, Options{Output: "yaml"}, pods)
	if !strings.HasPrefix(y, "apiVersion: v1\nitems:\n- apiVersion: v1\n") || !strings.HasSuffix(y, "kind: List\nmetadata:\n  resourceVersion: \"\"\n") {
		t.Errorf("-o yaml is not kubectl's List:\n%s", y)
	}
	var back corev1.List
	if err := yaml.UnmarshalStrict([]byte(y), &back); err != nil || len(back.Items) != 2 {
		t.Errorf("-o yaml does not decode as a v1 List: %v", err)
	}
	one := render(t, Options{Output: "json", Single: true}, pods[:1])
	var p corev1.Pod
	if err := json.Unmarshal([]byte(one), &p); err != nil || p.Name != "web" || p.Kind != "" && p.Kind != "Pod" {
		t.Errorf("-o json of one named pod is not that pod: %v\n%s", err, one)
	}
	if strings.Contains(one, "\"List\"") {
		t.Errorf("one named pod printed as a List:\n%s", one)
	}
	if got := render(t, Options{Output: "json"}, nil); !strings.Contains(got, "\"items\": []") {
		t.Errorf("no pods: want an empty List, got\n%s", got)
	}
}

// TestJSONPath: kubectl's documented jsonpath examples, against a List
// and against one pod.
func TestJSONPath(t *testing.T) {
	pods := twoPods()
	tests := []struct {
		tmpl   string
		single bool
		want   string
	}{
		{tmpl: `{.items[*].metadata.name}`, want: "web job"},
		{tmpl: `{.items[0].metadata.name}`, want: "web"},
		{tmpl: `{range .items[*]}{.metadata.name}{"\t"}{.status.startTime}{"\n"}{end}`, want: "web\t2026-12-03T10:00:01Z\njob\t\n"},
		{tmpl: `{.items[*].spec.containers[*].image}`, want: "nginx:1.27 busybox:latest busybox:latest"},
		{tmpl: `{.items[?(@.metadata.labels.app=="batch")].metadata.name}`, want: "job"},
		{tmpl: `{.kind}`, want: "List"},
		{tmpl: `{.metadata.name} {.status.podIP}`, single: true, want: "web 10.220.0.2"},
		{tmpl: `{.status.containerStatuses[?(@.name=="side")].ready}`, single: true, want: "true"},
		{tmpl: `{.spec.containers[*].name}`, single: true, want: "app side"},
		{tmpl: `{.metadata.nothere}`, single: true, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.tmpl, func(t *testing.T) {
			in := pods
			if tt.single {
				in = pods[:1]
			}
			if got := render(t, Options{Output: "jsonpath=" + tt.tmpl, Single: tt.single}, in); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestCustomColumns: kubectl's documented custom-columns examples (the
// relaxed path forms too), <none> for a missing value, and --no-headers.
func TestCustomColumns(t *testing.T) {
	pods := twoPods()
	tests := []struct {
		spec      string
		noHeaders bool
		want      string
	}{{
		spec: "NAME:.metadata.name,RSRC:.metadata.resourceVersion",
		want: "NAME RSRC\nweb <none>\njob <none>\n",
	}, {
		spec: "NAME:metadata.name,IMAGE:{.spec.containers[*].image}",
		want: "NAME IMAGE\nweb nginx:1.27,busybox:latest\njob busybox:latest\n",
	}, {
		spec: "CONTAINER:.spec.containers[*].name,IP:{status.podIP}",
		want: "CONTAINER IP\napp,side 10.220.0.2\nmain <none>\n",
	}, {
		spec: "NAME:.metadata.name,PHASE:.status.phase", noHeaders: true,
		want: "web Running\njob Succeeded\n",
	}}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got := render(t, Options{Output: "custom-columns=" + tt.spec, NoHeaders: tt.noHeaders}, pods)
			if norm(got) != norm(tt.want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// TestName: -o name is resource/name, one a line.
func TestName(t *testing.T) {
	if got := render(t, Options{Output: "name"}, twoPods()); got != "pod/web\npod/job\n" {
		t.Errorf("-o name = %q", got)
	}
}

// TestBadOutput: a bad format or template fails before anything is
// printed, naming what is wrong.
func TestBadOutput(t *testing.T) {
	tests := []struct{ output, want string }{
		{"xml", `unable to match a printer suitable for the output format "xml"`},
		{"jsonpath=", "no template given"},
		{"jsonpath={.items[", "error parsing jsonpath"},
		{"jsonpath={.items[?(@.x==}", "unterminated filter"},
		{"custom-columns=", "no custom columns given"},
		{"custom-columns=NAME", "expected <header>:<json-path-expr>"},
		{"custom-columns=:.metadata.name", "expected <header>:<json-path-expr>"},
		{"custom-columns=A:{.x}}", "unexpected path string"},
		{"custom-columns=A:.items[", "custom-columns A"},
		{"wide=x", "takes no argument"},
	}
	for _, tt := range tests {
		t.Run(tt.output, func(t *testing.T) {
			_, err := New(Options{Output: tt.output})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New(-o %s) = %v, want an error saying %q", tt.output, err, tt.want)
			}
		})
	}
}

// TestEscapes: a label value with control characters cannot break a
// custom-columns row or move the terminal's cursor.
func TestEscapes(t *testing.T) {
	pods := twoPods()
	pods[0].Pod.Labels["app"] = "a\nb\x1b[2Jc"
	got := render(t, Options{Output: "custom-columns=APP:.metadata.labels.app", NoHeaders: true}, pods[:1])
	if got != `a\nb\x1b[2Jc`+"\n" {
		t.Errorf("escaped cell = %q", got)
	}
}

// describePod is a pod with every part describe prints.
func describePod() (*corev1.Pod, []state.Event) {
	p := twoPods()[0].Pod
	p.UID = "4a3c2f6e-1111-2222-3333-444455556666"
	p.Annotations = map[string]string{"note": "two\nlines"}
	grace := int64(30)
	p.Spec.TerminationGracePeriodSeconds = &grace
	p.Spec.Containers[0].Command = []string{"nginx", "-g", "daemon off;"}
	p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP, HostPort: 8080}}
	p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
	}
	p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
		Path: "/healthz", Port: intstr.FromInt32(80), Scheme: corev1.URISchemeHTTP}},
		TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3}
	p.Spec.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/tmp/healthy"}}},
		InitialDelaySeconds: 5, TimeoutSeconds: 1, PeriodSeconds: 5, SuccessThreshold: 1, FailureThreshold: 3}
	p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "MODE", Value: "prod"},
		{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "password"}}}}
	p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "html", MountPath: "/usr/share/nginx/html", ReadOnly: true},
		{Name: "conf", MountPath: "/etc/nginx/conf.d"}}
	p.Spec.Containers[1].Command = []string{"sh", "-c", "while true; do date > /html/index.html; sleep 1; done"}
	p.Spec.Containers[1].VolumeMounts = []corev1.VolumeMount{{Name: "html", MountPath: "/html"}}
	p.Spec.Volumes = []corev1.Volume{
		{Name: "html", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nginx-conf"}}}},
	}
	p.Status.HostIP = "192.0.2.10"
	p.Status.QOSClass = corev1.PodQOSBurstable
	p.Status.ContainerStatuses[0].ContainerID = "peapod://4a3c2f6e1111-app"
	p.Status.ContainerStatuses[0].ImageID = "sha256:0123456789abcdef"
	p.Status.ContainerStatuses[1] = restarted(p.Status.ContainerStatuses[1], 2, 8*time.Minute)
	p.Status.ContainerStatuses[1].ContainerID = "peapod://4a3c2f6e1111-side"
	p.Status.ContainerStatuses[1].ImageID = "sha256:fedcba9876543210"
	p.Status.ContainerStatuses[1].LastTerminationState.Terminated.StartedAt = at(7 * time.Minute)
	p.Status.Conditions = []corev1.PodCondition{cond(corev1.PodScheduled, true), cond(corev1.PodInitialized, true),
		cond(corev1.ContainersReady, true), cond(corev1.PodReady, true)}
	events := []state.Event{
		{Type: "Normal", Reason: "Started", Object: "spec.containers{app}", Message: "Started container app", Count: 1,
			FirstSeen: t0.Add(time.Second), LastSeen: t0.Add(time.Second)},
		{Type: "Warning", Reason: "Unhealthy", Object: "spec.containers{app}", Message: "Readiness probe failed: HTTP probe failed\nwith statuscode: 503\n",
			Count: 4, FirstSeen: t0.Add(2 * time.Second), LastSeen: t0.Add(5 * time.Minute)},
	}
	return p, events
}

// TestGolden: describe, get -o wide and ps of the same pods, byte for
// byte (go test ./internal/printers -update rewrites the files after a
// deliberate change; review the diff).
func TestGolden(t *testing.T) {
	p, events := describePod()
	var d bytes.Buffer
	if err := Describe(&d, p, events, now); err != nil {
		t.Fatal(err)
	}
	pods := append([]Pod{{Pod: p}}, twoPods()[1])
	for _, g := range []struct {
		file string
		got  string
	}{
		{"describe.golden", d.String()},
		{"get-wide.golden", render(t, Options{Output: "wide"}, pods)},
		{"ps.golden", render(t, Options{Namespace: true, IP: true}, pods)},
	} {
		path := filepath.Join("testdata", g.file)
		if *update {
			if err := os.MkdirAll("testdata", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(g.got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if g.got != string(want) {
			t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", g.file, g.got, want)
		}
	}
	for _, l := range strings.Split(d.String(), "\n") {
		if strings.HasPrefix(l, "with statuscode") || strings.HasPrefix(l, "lines") {
			t.Errorf("a message or annotation broke its line: %q", l)
		}
	}
}
