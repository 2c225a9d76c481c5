package manifest

import (
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Validation messages of the API machinery, as the API server prints them.
const (
	subdomainMsg     = `a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`
	qualifiedNameMsg = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)

// name253 is a valid pod name of the greatest length: four labels of 62
// characters and one of 1, joined by dots.
var name253 = strings.Repeat(strings.Repeat("a", 61)+"b.", 4) + "c"

// validPod is a defaulted two-container pod that passes validation.
func validPod() *corev1.Pod {
	pod := &corev1.Pod{}
	pod.APIVersion, pod.Kind, pod.Name = "v1", "Pod", "web"
	pod.Spec = corev1.PodSpec{
		Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		Containers: []corev1.Container{
			{Name: "app", Image: "busybox:1.36", Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}},
			{Name: "sidecar", Image: "busybox:1.36"},
		},
	}
	SetDefaults(pod)
	return pod
}

func TestValidateAcceptsValidPod(t *testing.T) {
	w, errs := Validate(validPod())
	if len(errs) != 0 || len(w) != 0 {
		t.Fatalf("Validate(valid pod) = warnings %q, errors %v", w, errs)
	}
}

func TestValidate(t *testing.T) {
	probe := func(h corev1.ProbeHandler) *corev1.Probe {
		p := &corev1.Probe{ProbeHandler: h}
		defaultProbe(p)
		return p
	}
	execProbe := func() *corev1.Probe {
		return probe(corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}})
	}
	tests := []struct {
		name   string
		mutate func(p *corev1.Pod)
		want   []string
	}{
		{"name required", func(p *corev1.Pod) { p.Name = "" },
			[]string{"metadata.name: Required value: name or generateName is required"}},
		{"name not a subdomain", func(p *corev1.Pod) { p.Name = "Web_1" },
			[]string{`metadata.name: Invalid value: "Web_1": ` + subdomainMsg}},
		// The API server's pod names are DNS subdomains: up to 253
		// characters, dots allowed.
		{"dotted name", func(p *corev1.Pod) { p.Name = "web.v1.example" }, nil},
		{"name of 253 characters", func(p *corev1.Pod) { p.Name = name253 }, nil},
		{"name of 254 characters", func(p *corev1.Pod) { p.Name = name253 + "a" },
			[]string{`metadata.name: Invalid value: "` + name253 + `a": must be no more than 253 characters`}},
		{"name with an empty label", func(p *corev1.Pod) { p.Name = "web..v1" },
			[]string{`metadata.name: Invalid value: "web..v1": ` + subdomainMsg}},
		{"labels and annotations", func(p *corev1.Pod) {
			p.Labels = map[string]string{"app": "web", "example.com/tier": "front"}
			p.Annotations = map[string]string{"example.com/note": "free text: any value, any length up to the total"}
		}, nil},
		{"bad label key", func(p *corev1.Pod) { p.Labels = map[string]string{"bad key": "v"} },
			[]string{`metadata.labels: Invalid value: "bad key": ` + qualifiedNameMsg}},
		{"bad label value", func(p *corev1.Pod) { p.Labels = map[string]string{"app": "-web"} },
			[]string{`metadata.labels: Invalid value: "-web": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`}},
		{"bad annotation key", func(p *corev1.Pod) { p.Annotations = map[string]string{"-note": "v"} },
			[]string{`metadata.annotations: Invalid value: "-note": ` + qualifiedNameMsg}},
		{"annotations over 256 KiB", func(p *corev1.Pod) {
			p.Annotations = map[string]string{"big": strings.Repeat("x", 20<<20)}
		}, []string{"metadata.annotations: Too long: may not be more than 262144 bytes"}},
		{"annotations of exactly 256 KiB", func(p *corev1.Pod) {
			p.Annotations = map[string]string{"big": strings.Repeat("x", 256<<10-len("big"))}
		}, nil},
		{"namespace not a label", func(p *corev1.Pod) { p.Namespace = "a.b" },
			[]string{`metadata.namespace: Invalid value: "a.b": must not contain dots`}},
		{"containers required", func(p *corev1.Pod) { p.Spec.Containers = nil },
			[]string{"spec.containers: Required value"}},
		{"duplicate container name", func(p *corev1.Pod) { p.Spec.Containers[1].Name = "app" },
			[]string{`spec.containers[1].name: Duplicate value: "app"`}},
		{"duplicate name across init and app", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "sidecar", Image: "busybox:1.36"}}
			SetDefaults(p)
		}, []string{`spec.containers[1].name: Duplicate value: "sidecar"`}},
		{"container name not a label", func(p *corev1.Pod) { p.Spec.Containers[1].Name = "Side" },
			[]string{`spec.containers[1].name: Invalid value: "Side": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`}},
		{"image required", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" },
			[]string{"spec.containers[0].image: Required value"}},
		{"same port in two app containers", func(p *corev1.Pod) {
			p.Spec.Containers[1].Ports = []corev1.ContainerPort{{ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}
		}, []string{`spec.containers[1].ports[0].containerPort: Invalid value: 8080: port 8080/TCP is already declared by container "app": the containers of a pod share one network namespace`}},
		{"same port, other protocol", func(p *corev1.Pod) {
			p.Spec.Containers[1].Ports = []corev1.ContainerPort{{ContainerPort: 8080, Protocol: corev1.ProtocolUDP}}
		}, nil},
		{"init container port does not conflict", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox:1.36", Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}
			SetDefaults(p)
		}, nil},
		{"port out of range", func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 70000 },
			[]string{"spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"}},
		{"port protocol", func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].Protocol = "ICMP" },
			[]string{`spec.containers[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"`}},
		{"hostNetwork hostPort mismatch", func(p *corev1.Pod) {
			p.Spec.HostNetwork = true
			p.Spec.Containers[0].Ports[0].HostPort = 81
		}, []string{"spec.containers[0].ports[0].hostPort: Invalid value: 81: must match `containerPort` when `hostNetwork` is true"}},
		{"hostPort without hostNetwork is mapped", func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].HostPort = 8080 }, nil},
		{"duplicate volume name", func(p *corev1.Pod) { p.Spec.Volumes = append(p.Spec.Volumes, p.Spec.Volumes[0]) },
			[]string{`spec.volumes[1].name: Duplicate value: "data"`}},
		{"volume name not a label", func(p *corev1.Pod) {
			p.Spec.Volumes[0].Name = "Data"
			p.Spec.Containers[0].VolumeMounts = nil
		}, []string{`spec.volumes[0].name: Invalid value: "Data": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`}},
		{"mount of undeclared volume", func(p *corev1.Pod) { p.Spec.Volumes = nil },
			[]string{`spec.containers[0].volumeMounts[0].name: Not found: "data"`}},
		{"relative mountPath", func(p *corev1.Pod) { p.Spec.Containers[0].VolumeMounts[0].MountPath = "data" },
			[]string{`spec.containers[0].volumeMounts[0].mountPath: Invalid value: "data": must be an absolute path`}},
		{"duplicate mountPath", func(p *corev1.Pod) {
			c := &p.Spec.Containers[0]
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "data", MountPath: "/data/"})
		}, []string{`spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/data/": must be unique`}},
		{"absolute subPath", func(p *corev1.Pod) { p.Spec.Containers[0].VolumeMounts[0].SubPath = "/etc" },
			[]string{`spec.containers[0].volumeMounts[0].subPath: Invalid value: "/etc": must be a relative path`}},
		{"subPath climbing out", func(p *corev1.Pod) { p.Spec.Containers[0].VolumeMounts[0].SubPath = "a/../../b" },
			[]string{`spec.containers[0].volumeMounts[0].subPath: Invalid value: "a/../../b": must not contain '..'`}},
		{"mount propagation", func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeMounts[0].MountPropagation = ptr.To(corev1.MountPropagationBidirectional)
		}, []string{`spec.containers[0].volumeMounts[0].mountPropagation: Unsupported value: "Bidirectional": supported values: "None"`}},
		// recursiveReadOnly follows the API server's rules: Enabled and
		// IfPossible need readOnly and no propagation.
		{"recursiveReadOnly enabled", func(p *corev1.Pod) {
			m := &p.Spec.Containers[0].VolumeMounts[0]
			m.ReadOnly, m.RecursiveReadOnly = true, ptr.To(corev1.RecursiveReadOnlyEnabled)
		}, nil},
		{"recursiveReadOnly if possible", func(p *corev1.Pod) {
			m := &p.Spec.Containers[0].VolumeMounts[0]
			m.ReadOnly, m.RecursiveReadOnly = true, ptr.To(corev1.RecursiveReadOnlyIfPossible)
		}, nil},
		{"recursiveReadOnly disabled on a writable mount", func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeMounts[0].RecursiveReadOnly = ptr.To(corev1.RecursiveReadOnlyDisabled)
		}, nil},
		{"recursiveReadOnly on a writable mount", func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeMounts[0].RecursiveReadOnly = ptr.To(corev1.RecursiveReadOnlyIfPossible)
		}, []string{`spec.containers[0].volumeMounts[0].recursiveReadOnly: Forbidden: may only be specified when readOnly is true`}},
		{"recursiveReadOnly with propagation", func(p *corev1.Pod) {
			m := &p.Spec.Containers[0].VolumeMounts[0]
			m.ReadOnly, m.RecursiveReadOnly = true, ptr.To(corev1.RecursiveReadOnlyEnabled)
			m.MountPropagation = ptr.To(corev1.MountPropagationHostToContainer)
		}, []string{
			`spec.containers[0].volumeMounts[0].mountPropagation: Unsupported value: "HostToContainer": supported values: "None"`,
			`spec.containers[0].volumeMounts[0].recursiveReadOnly: Forbidden: may only be specified when mountPropagation is None or not specified`,
		}},
		{"recursiveReadOnly unknown", func(p *corev1.Pod) {
			m := &p.Spec.Containers[0].VolumeMounts[0]
			m.ReadOnly, m.RecursiveReadOnly = true, ptr.To(corev1.RecursiveReadOnlyMode("Always"))
		}, []string{`spec.containers[0].volumeMounts[0].recursiveReadOnly: Unsupported value: "Always": supported values: "Disabled", "Enabled", "IfPossible"`}},
		{"unsupported volume type", func(p *corev1.Pod) {
			p.Spec.Volumes[0].VolumeSource = corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "s", Path: "/x"}}
		}, []string{"spec.volumes[0].nfs: Forbidden: only emptyDir, hostPath, configMap, secret, downwardAPI and projected volumes are supported"}},
		{"configMap item path escaping", func(p *corev1.Pod) {
			p.Spec.Volumes[0].VolumeSource = corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "cm"},
				Items:                []corev1.KeyToPath{{Key: "a", Path: "x/../../etc/passwd"}, {Key: "b", Path: "/abs"}, {Key: "c", Path: "..data"}, {Key: "d", Path: "ok"}, {Key: "e", Path: "./ok"}},
			}}
		}, []string{
			`spec.volumes[0].configMap.items[0].path: Invalid value: "x/../../etc/passwd": must not contain '..'`,
			`spec.volumes[0].configMap.items[1].path: Invalid value: "/abs": must be a relative path`,
			`spec.volumes[0].configMap.items[2].path: Invalid value: "..data": must not start with '..'`,
			`spec.volumes[0].configMap.items[4].path: Duplicate value: "./ok"`,
		}},
		{"secret key and modes", func(p *corev1.Pod) {
			p.Spec.Volumes[0].VolumeSource = corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName: "s", DefaultMode: ptr.To[int32](0o4755),
				Items: []corev1.KeyToPath{{Key: "../k", Path: "k", Mode: ptr.To[int32](-1)}},
			}}
		}, []string{
			`spec.volumes[0].secret.defaultMode: Invalid value: 2541: must be a number between 0 and 0777 (inclusive)`,
			`spec.volumes[0].secret.items[0].key: Invalid value: "../k": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')`,
			`spec.volumes[0].secret.items[0].key: Invalid value: "../k": must not start with '..'`,
			`spec.volumes[0].secret.items[0].mode: Invalid value: -1: must be a number between 0 and 0777 (inclusive)`,
		}},
		{"downwardAPI field", func(p *corev1.Pod) {
			p.Spec.Volumes[0].VolumeSource = corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
				Items: []corev1.DownwardAPIVolumeFile{{Path: "node", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
			}}
		}, []string{`spec.volumes[0].downwardAPI.items[0].fieldRef.fieldPath: Unsupported value: "spec.nodeName": supported values: "metadata.name", "metadata.namespace", "metadata.uid", "metadata.labels", "metadata.annotations"`}},
		{"projected: two types in a source", func(p *corev1.Pod) {
			cm := &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}, Items: []corev1.KeyToPath{{Key: "a", Path: "f"}}}
			p.Spec.Volumes[0].VolumeSource = corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ConfigMap: cm, Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}}},
			}}}
		}, []string{`spec.volumes[0].projected.sources[0]: Forbidden: may not specify more than 1 volume type per source`}},
		{"hostPath relative", func(p *corev1.Pod) {
			p.Spec.Volumes[0].VolumeSource = corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "srv"}}
		}, []string{`spec.volumes[0].hostPath.path: Invalid value: "srv": must be an absolute path`}},
		{"emptyDir medium", func(p *corev1.Pod) { p.Spec.Volumes[0].EmptyDir.Medium = corev1.StorageMediumHugePages },
			[]string{`spec.volumes[0].emptyDir.medium: Unsupported value: "HugePages": supported values: "", "Memory"`}},
		{"probe without handler", func(p *corev1.Pod) { p.Spec.Containers[0].LivenessProbe = probe(corev1.ProbeHandler{}) },
			[]string{"spec.containers[0].livenessProbe: Required value: must specify a handler type"}},
		{"probe with two handlers", func(p *corev1.Pod) {
			p.Spec.Containers[0].ReadinessProbe = probe(corev1.ProbeHandler{
				Exec: &corev1.ExecAction{Command: []string{"true"}}, TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}})
		}, []string{"spec.containers[0].readinessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type"}},
		{"probe negative threshold", func(p *corev1.Pod) {
			p.Spec.Containers[0].ReadinessProbe = execProbe()
			p.Spec.Containers[0].ReadinessProbe.FailureThreshold = -1
		}, []string{"spec.containers[0].readinessProbe.failureThreshold: Invalid value: -1: must be greater than or equal to 0"}},
		{"liveness success threshold", func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe = execProbe()
			p.Spec.Containers[0].LivenessProbe.SuccessThreshold = 2
		}, []string{"spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"}},
		{"startup success threshold", func(p *corev1.Pod) {
			p.Spec.Containers[0].StartupProbe = execProbe()
			p.Spec.Containers[0].StartupProbe.SuccessThreshold = 3
		}, []string{"spec.containers[0].startupProbe.successThreshold: Invalid value: 3: must be 1"}},
		{"readiness success threshold may exceed 1", func(p *corev1.Pod) {
			p.Spec.Containers[0].ReadinessProbe = execProbe()
			p.Spec.Containers[0].ReadinessProbe.SuccessThreshold = 3
		}, nil},
		{"readiness grace period", func(p *corev1.Pod) {
			p.Spec.Containers[0].ReadinessProbe = execProbe()
			p.Spec.Containers[0].ReadinessProbe.TerminationGracePeriodSeconds = ptr.To[int64](5)
		}, []string{"spec.containers[0].readinessProbe.terminationGracePeriodSeconds: Invalid value: 5: must not be set for readinessProbes"}},
		{"liveness grace period zero", func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe = execProbe()
			p.Spec.Containers[0].LivenessProbe.TerminationGracePeriodSeconds = ptr.To[int64](0)
		}, []string{"spec.containers[0].livenessProbe.terminationGracePeriodSeconds: Invalid value: 0: must be greater than 0"}},
		{"exec probe without command", func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe = probe(corev1.ProbeHandler{Exec: &corev1.ExecAction{}})
		}, []string{"spec.containers[0].livenessProbe.exec.command: Required value"}},
		{"httpGet bad port name and scheme", func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe = probe(corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("no_such"), Scheme: "FTP"}})
		}, []string{
			`spec.containers[0].livenessProbe.httpGet.port: Invalid value: "no_such": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)`,
			`spec.containers[0].livenessProbe.httpGet.scheme: Unsupported value: "FTP": supported values: "HTTP", "HTTPS"`,
		}},
		{"grpc port", func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe = probe(corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 0}})
		}, []string{"spec.containers[0].livenessProbe.grpc.port: Invalid value: 0: must be between 1 and 65535, inclusive"}},
		{"probe on regular init container", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox:1.36", ReadinessProbe: execProbe()}}
			SetDefaults(p)
		}, []string{"spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without restartPolicy=Always"}},
		{"httpGet lifecycle hook", func(p *corev1.Pod) {
			p.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(80)}}}
		}, []string{"spec.containers[0].lifecycle.preStop.httpGet: Forbidden: only exec lifecycle hooks are supported"}},
		{"sleep lifecycle hook", func(p *corev1.Pod) {
			p.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 1}}}
		}, []string{"spec.containers[0].lifecycle.postStart.sleep: Forbidden: only exec lifecycle hooks are supported"}},
		{"exec hook without command", func(p *corev1.Pod) {
			p.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{}}}
		}, []string{"spec.containers[0].lifecycle.postStart.exec.command: Required value"}},
		{"restartPolicy", func(p *corev1.Pod) { p.Spec.RestartPolicy = "Sometimes" },
			[]string{`spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"`}},
		{"env name", func(p *corev1.Pod) { p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A=B", Value: "x"}} },
			[]string{`spec.containers[0].env[0].name: Invalid value: "A=B": a valid environment variable name must consist only of printable ASCII characters other than '='`}},
		{"unsupported fieldRef", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.nodeName"}}}}
		}, []string{`spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: "spec.nodeName": supported values: "metadata.name", "metadata.namespace", "metadata.uid", "status.podIP"`}},
		{"secretKeyRef without a name", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "S", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{Key: "k"}}}}
		}, []string{"spec.containers[0].env[0].valueFrom.secretKeyRef.name: Required value"}},
		{"configMapKeyRef key escaping", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "S", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "../x"}}}}
		}, []string{
			`spec.containers[0].env[0].valueFrom.configMapKeyRef.key: Invalid value: "../x": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')`,
			`spec.containers[0].env[0].valueFrom.configMapKeyRef.key: Invalid value: "../x": must not start with '..'`,
		}},
		{"two env sources", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "S", ValueFrom: &corev1.EnvVarSource{
				ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "k"},
				SecretKeyRef:    &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}, Key: "k"},
			}}}
		}, []string{`spec.containers[0].env[0].valueFrom: Invalid value: "": may not have more than one field specified at a time`}},
		{"resourceFieldRef", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "S", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}}}
		}, []string{
			"spec.containers[0].env[0].valueFrom.resourceFieldRef: Forbidden: only fieldRef, configMapKeyRef and secretKeyRef are supported",
			"spec.containers[0].env[0].valueFrom: Required value: must specify one of: `fieldRef`, `configMapKeyRef` or `secretKeyRef`",
		}},
		{"envFrom without a source", func(p *corev1.Pod) {
			p.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{Prefix: "A_"}}
		}, []string{"spec.containers[0].envFrom[0]: Invalid value: \"\": must specify one of: `configMapRef` or `secretRef`"}},
		{"envFrom bad prefix and name", func(p *corev1.Pod) {
			p.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{Prefix: "A=", SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "Bad_Name"}}}}
		}, []string{
			`spec.containers[0].envFrom[0].prefix: Invalid value: "A=": a valid environment variable name must consist only of printable ASCII characters other than '='`,
			`spec.containers[0].envFrom[0].secretRef.name: Invalid value: "Bad_Name": ` + subdomainMsg,
		}},
		{"runAsNonRoot with runAsUser 0", func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](0)}
		}, []string{"spec.containers[0].securityContext.runAsUser: Invalid value: 0: must not be 0 when `runAsNonRoot` is true"}},
		{"pod runAsNonRoot, container runAsUser 0", func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}
			p.Spec.Containers[1].SecurityContext = &corev1.SecurityContext{RunAsUser: ptr.To[int64](0)}
		}, []string{"spec.containers[1].securityContext.runAsUser: Invalid value: 0: must not be 0 when `runAsNonRoot` is true"}},
		{"pod-level runAsNonRoot with runAsUser 0", func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](0)}
		}, []string{"spec.securityContext.runAsUser: Invalid value: 0: must not be 0 when `runAsNonRoot` is true"}},
		{"unknown capability", func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN", "FLY"}, Drop: []corev1.Capability{"ALL"}}}
		}, []string{`spec.containers[0].securityContext.capabilities.add[1]: Invalid value: "FLY": unknown capability`}},
		{"privileged without escalation", func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true), AllowPrivilegeEscalation: ptr.To(false)}
		}, []string{`spec.containers[0].securityContext: Invalid value: {"privileged":true,"allowPrivilegeEscalation":false}: cannot set ` + "`allowPrivilegeEscalation` to false and `privileged` to true"}},
		{"unknown supplemental groups policy", func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{SupplementalGroupsPolicy: ptr.To[corev1.SupplementalGroupsPolicy]("Loose")}
		}, []string{`spec.securityContext.supplementalGroupsPolicy: Unsupported value: "Loose": supported values: "Merge", "Strict"`}},
		{"seccomp unknown type", func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: "Strict"}}
		}, []string{`spec.securityContext.seccompProfile.type: Unsupported value: "Strict": supported values: "Localhost", "RuntimeDefault", "Unconfined"`}},
		{"seccomp no type", func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{SeccompProfile: &corev1.SeccompProfile{LocalhostProfile: ptr.To("p.json")}}
		}, []string{
			"spec.containers[0].securityContext.seccompProfile.type: Required value: type is required when seccompProfile is set",
			`spec.containers[0].securityContext.seccompProfile.localhostProfile: Invalid value: {"type":"","localhostProfile":"p.json"}: can only be set when seccomp type is Localhost`,
		}},
		{"seccomp Localhost without a profile", func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost}}
		}, []string{"spec.securityContext.seccompProfile.localhostProfile: Required value: must be set when seccomp type is Localhost"}},
		{"seccomp Localhost escaping", func(p *corev1.Pod) {
			p.Spec.Containers[1].SecurityContext = &corev1.SecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: ptr.To("../x")}}
		}, []string{`spec.containers[1].securityContext.seccompProfile.localhostProfile: Invalid value: "../x": must not contain '..'`}},
		{"seccomp Localhost absolute", func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: ptr.To("/etc/p.json")}}
		}, []string{`spec.securityContext.seccompProfile.localhostProfile: Invalid value: "/etc/p.json": must be a relative path`}},
		{"seccomp RuntimeDefault with a localhost profile", func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault, LocalhostProfile: ptr.To("p.json")}}
		}, []string{`spec.securityContext.seccompProfile.localhostProfile: Invalid value: {"type":"RuntimeDefault","localhostProfile":"p.json"}: can only be set when seccomp type is Localhost`}},
		{"unsupported container field", func(p *corev1.Pod) { p.Spec.Containers[0].Resources.Claims = []corev1.ResourceClaim{{Name: "gpu"}} },
			[]string{"spec.containers[0].resources.claims: Forbidden: not supported by peapod"}},
		{"terminal on an init container", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox:1.36", ImagePullPolicy: corev1.PullIfNotPresent, Stdin: true, StdinOnce: true, TTY: true}}
		}, []string{"spec.initContainers[0].stdin: Forbidden: not supported by peapod",
			"spec.initContainers[0].stdinOnce: Forbidden: not supported by peapod",
			"spec.initContainers[0].tty: Forbidden: not supported by peapod"}},
		{"unsupported pod field", func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr.To[int64](30) },
			[]string{"spec.activeDeadlineSeconds: Forbidden: not supported by peapod"}},
		{"hostPID", func(p *corev1.Pod) { p.Spec.HostPID = true }, nil},
		{"hostIPC", func(p *corev1.Pod) { p.Spec.HostIPC = true }, nil},
		{"hostPID, hostIPC and hostNetwork", func(p *corev1.Pod) {
			p.Spec.HostPID, p.Spec.HostIPC, p.Spec.HostNetwork = true, true, true
			SetDefaults(p)
		}, nil},
		{"hostPID with shareProcessNamespace", func(p *corev1.Pod) {
			p.Spec.HostPID, p.Spec.ShareProcessNamespace = true, ptr.To(true)
		}, []string{"spec.shareProcessNamespace: Invalid value: true: ShareProcessNamespace and HostPID cannot both be enabled"}},
		{"hostPID with shareProcessNamespace false", func(p *corev1.Pod) {
			p.Spec.HostPID, p.Spec.ShareProcessNamespace = true, ptr.To(false)
		}, nil},
		{"hostIPC with an IPC sysctl", func(p *corev1.Pod) {
			p.Spec.HostIPC = true
			p.Spec.SecurityContext = &corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{{Name: "net.core.somaxconn", Value: "1024"}, {Name: "kernel.msgmax", Value: "1"}}}
		}, []string{`spec.securityContext.sysctls[1].name: Invalid value: "kernel.msgmax": may not be specified when 'hostIPC' is true`}},
		{"hostPID with hostUsers false", func(p *corev1.Pod) {
			p.Spec.HostPID, p.Spec.HostUsers = true, ptr.To(false)
		}, []string{"spec.hostUsers: Forbidden: user namespaces are not supported by peapod"}},
		{"sidecar init container", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox:1.36", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}}
			SetDefaults(p)
		}, []string{"spec.initContainers[0].restartPolicy: Forbidden: not supported by peapod"}},
		{"hostUsers false", func(p *corev1.Pod) { p.Spec.HostUsers = ptr.To(false) },
			[]string{"spec.hostUsers: Forbidden: user namespaces are not supported by peapod"}},
		{"dnsPolicy None without config", func(p *corev1.Pod) { p.Spec.DNSPolicy = corev1.DNSNone },
			[]string{"spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"}},
		{"too many nameservers", func(p *corev1.Pod) {
			p.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1", "1.0.0.1", "8.8.8.8", "8.8.4.4"}}
		}, []string{`spec.dnsConfig.nameservers: Invalid value: ["1.1.1.1","1.0.0.1","8.8.8.8","8.8.4.4"]: must not have more than 3 nameservers`}},
		{"hostAlias ip", func(p *corev1.Pod) {
			p.Spec.HostAliases = []corev1.HostAlias{{IP: "not-an-ip", Hostnames: []string{"db"}}}
		}, []string{`spec.hostAliases[0].ip: Invalid value: "not-an-ip": must be a valid IP address`}},
		{"negative grace period", func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](-1) },
			[]string{"spec.terminationGracePeriodSeconds: Invalid value: -1: must be greater than or equal to 0"}},
		// The API server accepts any int64 >= 0; a Duration holds up to
		// 9223372036 s (spec.Seconds saturates above).
		{"grace period beyond a Duration", func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](math.MaxInt64) }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := validPod()
			tt.mutate(pod)
			_, errs := Validate(pod)
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Validate() errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateWarnings(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(p *corev1.Pod)
		want   []string
	}{
		{"pod-level resources", func(p *corev1.Pod) {
			p.Spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}}
			p.Spec.Containers[0].ResizePolicy = []corev1.ContainerResizePolicy{{ResourceName: corev1.ResourceCPU, RestartPolicy: corev1.NotRequired}}
		}, []string{"spec.containers[0].resizePolicy: " + warnResize, "spec.resources: " + warnPodLevel}},
		{"scheduling fields", func(p *corev1.Pod) {
			p.Spec.NodeSelector = map[string]string{"disk": "ssd"}
			p.Spec.Tolerations = []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists}}
			p.Spec.ServiceAccountName = "sa"
		}, []string{
			"spec.nodeSelector: " + warnScheduling,
			"spec.serviceAccountName: " + warnScheduling,
			"spec.tolerations: " + warnScheduling,
		}},
		{"seccomp profiles are honoured", func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
			p.Spec.SecurityContext = &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: ptr.To("profiles/a.json")}}
			p.Spec.Containers[0].SecurityContext.AppArmorProfile = &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeRuntimeDefault}
		}, []string{"spec.containers[0].securityContext.appArmorProfile: " + warnAppArmor}},
		{"fsGroup", func(p *corev1.Pod) { p.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: ptr.To[int64](2000)} },
			[]string{"spec.securityContext.fsGroup: " + warnFSGroup}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := validPod()
			tt.mutate(pod)
			w, errs := Validate(pod)
			if len(errs) != 0 {
				t.Fatalf("Validate() errors = %v, want none", errs)
			}
			if diff := cmp.Diff(tt.want, w); diff != "" {
				t.Errorf("Validate() warnings mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadNamesEveryError(t *testing.T) {
	data := strings.ReplaceAll(minimalPod, "%s", "ok") + "---\n" + strings.ReplaceAll(minimalPod, "%s", "Bad") +
		"  - name: app\n    image: busybox:latest\n"
	pods, _, err := Load([]byte(data), "pods.yaml")
	if err == nil {
		t.Fatalf("Load() = %d pods, want an error", len(pods))
	}
	for _, want := range []string{
		`pods.yaml: document 2: pod "default/Bad": metadata.name: Invalid value: "Bad"`,
		`pods.yaml: document 2: pod "default/Bad": spec.containers[1].name: Duplicate value: "app"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Load() error = %v\nwant it to contain %q", err, want)
		}
	}
	if pods != nil {
		t.Errorf("Load() returned pods with an error")
	}
}
