package manifest

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
)

// podWithResources loads a one-container pod whose container has the given
// resources block (YAML, indented under "resources:").
func podWithResources(t *testing.T, res string) ([]*corev1.Pod, []string, error) {
	t.Helper()
	data := strings.ReplaceAll(minimalPod, "%s", "web") + "    resources:\n" + res
	return Load([]byte(data), "pod.yaml")
}

func TestResourcesValidation(t *testing.T) {
	tests := []struct {
		name, res string
		// want are substrings of the error; none means valid.
		want []string
	}{
		{"cpu and memory", "      requests: {cpu: 250m, memory: 32Mi}\n      limits: {cpu: 500m, memory: 64Mi}\n", nil},
		{"limits only", "      limits: {cpu: '1', memory: 1Gi}\n", nil},
		{"zero limit means none", "      limits: {cpu: '0', memory: '0'}\n", nil},
		{"request above limit", "      requests: {cpu: '2'}\n      limits: {cpu: '1'}\n",
			[]string{`spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1`}},
		{"memory request above limit", "      requests: {memory: 128Mi}\n      limits: {memory: 64Mi}\n",
			[]string{`spec.containers[0].resources.requests: Invalid value: "128Mi": must be less than or equal to memory limit of 64Mi`}},
		{"negative cpu", "      limits: {cpu: -1}\n",
			[]string{`spec.containers[0].resources.limits[cpu]: Invalid value: "-1": must be greater than or equal to 0`}},
		{"negative memory request", "      requests: {memory: -5Mi}\n",
			[]string{`spec.containers[0].resources.requests[memory]: Invalid value: "-5Mi": must be greater than or equal to 0`}},
		{"one byte", "      limits: {memory: '1'}\n",
			[]string{`spec.containers[0].resources.limits[memory]: Invalid value: "1": must be at least 6Mi`}},
		{"1e30 cpu", "      limits: {cpu: 1e30}\n",
			[]string{`spec.containers[0].resources.limits[cpu]: Invalid value: "1e+30": must be at most 1M`}},
		{"1e30 memory", "      limits: {memory: 1e30}\n",
			[]string{`spec.containers[0].resources.limits[memory]: Invalid value: "1e+30": must be at most 8Ei`}},
		{"non-numeric", "      limits: {cpu: lots}\n",
			[]string{`spec.containers[0].resources.limits[cpu]: Invalid value: "lots": quantities must match the regular expression`}},
		{"init container non-numeric", "      limits: {memory: 64Mi}\n  initContainers:\n  - name: init\n    image: busybox:latest\n    resources: {requests: {memory: 12XB}}\n",
			[]string{`spec.initContainers[0].resources.requests[memory]: Invalid value: "12XB": quantities must match`}},
		{"hugepages", "      limits: {hugepages-2Mi: 4Mi, memory: 64Mi}\n",
			[]string{`spec.containers[0].resources.limits[hugepages-2Mi]: Forbidden: hugepages are not supported by peapod yet`}},
		{"unknown name", "      limits: {gpus: '1'}\n",
			[]string{`spec.containers[0].resources.limits[gpus]: Invalid value: "gpus": must be a standard resource for containers`}},
		{"claims", "      claims: [{name: gpu}]\n",
			[]string{`spec.containers[0].resources.claims: Forbidden: not supported by peapod`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := podWithResources(t, tt.res)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Load() error = %v, want none", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load() succeeded, want an error containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load() error = %v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestResourcesWarnings(t *testing.T) {
	_, w, err := podWithResources(t, "      limits: {ephemeral-storage: 1Gi, example.com/dongle: '1', memory: 64Mi}\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`pod.yaml: document 1: pod "default/web": spec.containers[0].resources.limits[ephemeral-storage]: ` + warnEphemeralStorage,
		`pod.yaml: document 1: pod "default/web": spec.containers[0].resources.limits[example.com/dongle]: ` + warnExtendedResource,
		`pod.yaml: document 1: pod "default/web": spec.containers[0].resources.requests[ephemeral-storage]: ` + warnEphemeralStorage,
		`pod.yaml: document 1: pod "default/web": spec.containers[0].resources.requests[example.com/dongle]: ` + warnExtendedResource,
	}
	// Only the resources' warnings: others (the image's pull policy) are
	// not this test's.
	var got []string
	for _, line := range w {
		if strings.Contains(line, ".resources") {
			got = append(got, line)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings mismatch (-want +got):\n%s", diff)
	}
}

func TestRequestsDefaultFromLimits(t *testing.T) {
	pods, _, err := podWithResources(t, "      requests: {memory: 16Mi}\n      limits: {cpu: 500m, memory: 64Mi}\n")
	if err != nil {
		t.Fatal(err)
	}
	req := pods[0].Spec.Containers[0].Resources.Requests
	if cpu, mem := req[corev1.ResourceCPU], req[corev1.ResourceMemory]; cpu.String() != "500m" || mem.String() != "16Mi" {
		t.Errorf("requests = cpu %s memory %s, want cpu 500m (from the limit) and memory 16Mi (kept)", cpu.String(), mem.String())
	}
}

func TestMilliCPUConversions(t *testing.T) {
	for _, tt := range []struct {
		milli  int64
		shares uint64
		quota  int64
	}{
		{0, 2, 0},
		{1, 2, 1000},
		{2, 2, 1000},
		{100, 102, 10000},
		{250, 256, 25000},
		{1000, 1024, 100000},
		{256000, 262144, 25600000},
		{1000000, 262144, 100000000},
	} {
		if got := MilliCPUToShares(tt.milli); got != tt.shares {
			t.Errorf("MilliCPUToShares(%d) = %d, want %d", tt.milli, got, tt.shares)
		}
		if got := MilliCPUToQuota(tt.milli, quotaPeriod); got != tt.quota {
			t.Errorf("MilliCPUToQuota(%d) = %d, want %d", tt.milli, got, tt.quota)
		}
	}
}

func TestResourcesToSpec(t *testing.T) {
	pod := validPod()
	pod.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox:1.36",
		Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("256Mi")}}}}
	pod.Spec.Containers[0].Resources.Limits = corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("64Mi")}
	pod.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}
	pod.Spec.Containers[1].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")}
	SetDefaults(pod)
	if _, errs := Validate(pod); len(errs) > 0 {
		t.Fatal(errs)
	}
	sp, _, err := ToSpec(pod, testInput())
	if err != nil {
		t.Fatal(err)
	}
	app, side := sp.Containers[0].OCI.Linux.Resources, sp.Containers[1].OCI.Linux.Resources
	want := specs.LinuxResources{
		CPU:    &specs.LinuxCPU{Shares: ptr.To[uint64](256), Quota: ptr.To[int64](50000), Period: ptr.To[uint64](100000)},
		Memory: &specs.LinuxMemory{Limit: ptr.To[int64](64 << 20), Swap: ptr.To[int64](64 << 20)},
	}
	if diff := cmp.Diff(want, specs.LinuxResources{CPU: app.CPU, Memory: app.Memory}); diff != "" {
		t.Errorf("app resources mismatch (-want +got):\n%s", diff)
	}
	if len(app.Devices) == 0 {
		t.Errorf("app resources lost the device rules")
	}
	// No CPU request: the minimum shares, and no quota.
	want = specs.LinuxResources{
		CPU:    &specs.LinuxCPU{Shares: ptr.To[uint64](2)},
		Memory: &specs.LinuxMemory{Limit: ptr.To[int64](32 << 20), Swap: ptr.To[int64](32 << 20)},
	}
	if diff := cmp.Diff(want, specs.LinuxResources{CPU: side.CPU, Memory: side.Memory}); diff != "" {
		t.Errorf("sidecar resources mismatch (-want +got):\n%s", diff)
	}
	// Pod: shares from the summed requests (250m + 0, the init's 2 CPUs
	// larger); no CPU quota since the sidecar has no CPU limit; memory the
	// larger of 64Mi+32Mi and the init container's 256Mi.
	want = specs.LinuxResources{
		CPU:    &specs.LinuxCPU{Shares: ptr.To[uint64](2048)},
		Memory: &specs.LinuxMemory{Limit: ptr.To[int64](256 << 20), Swap: ptr.To[int64](256 << 20)},
	}
	if diff := cmp.Diff(&want, sp.Resources); diff != "" {
		t.Errorf("pod resources mismatch (-want +got):\n%s", diff)
	}
}

func TestQOSClass(t *testing.T) {
	c := func(reqCPU, reqMem, limCPU, limMem string) corev1.Container {
		r := corev1.ResourceRequirements{Requests: corev1.ResourceList{}, Limits: corev1.ResourceList{}}
		for _, x := range []struct {
			l    corev1.ResourceList
			name corev1.ResourceName
			q    string
		}{{r.Requests, corev1.ResourceCPU, reqCPU}, {r.Requests, corev1.ResourceMemory, reqMem},
			{r.Limits, corev1.ResourceCPU, limCPU}, {r.Limits, corev1.ResourceMemory, limMem}} {
			if x.q != "" {
				x.l[x.name] = resource.MustParse(x.q)
			}
		}
		return corev1.Container{Name: "c", Resources: r}
	}
	for _, tt := range []struct {
		name string
		ctrs []corev1.Container
		want corev1.PodQOSClass
	}{
		{"nothing", []corev1.Container{c("", "", "", "")}, corev1.PodQOSBestEffort},
		{"zero only", []corev1.Container{c("0", "", "", "0")}, corev1.PodQOSBestEffort},
		{"limits only", []corev1.Container{c("", "", "1", "64Mi")}, corev1.PodQOSGuaranteed},
		{"equal", []corev1.Container{c("500m", "64Mi", "500m", "64Mi"), c("", "", "1", "1Gi")}, corev1.PodQOSGuaranteed},
		{"request below limit", []corev1.Container{c("250m", "64Mi", "500m", "64Mi")}, corev1.PodQOSBurstable},
		{"memory only", []corev1.Container{c("", "", "", "64Mi")}, corev1.PodQOSBurstable},
		{"one best-effort container", []corev1.Container{c("", "", "1", "64Mi"), c("", "", "", "")}, corev1.PodQOSBurstable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := QOSClass(&corev1.PodSpec{Containers: tt.ctrs}); got != tt.want {
				t.Errorf("QOSClass = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestPodCPURequestMilli: the pod's request is the app containers' sum, or
// the largest init container's when that is larger, as the kubelet's.
func TestPodCPURequestMilli(t *testing.T) {
	c := func(req string) corev1.Container {
		out := corev1.Container{Name: "c"}
		if req != "" {
			out.Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(req)}
		}
		return out
	}
	for _, tt := range []struct {
		name      string
		init, app []corev1.Container
		want      int64
	}{
		{"none", nil, []corev1.Container{c("")}, 0},
		{"sum of apps", nil, []corev1.Container{c("250m"), c("500m"), c("")}, 750},
		{"init smaller", []corev1.Container{c("100m")}, []corev1.Container{c("250m")}, 250},
		{"init larger", []corev1.Container{c("1"), c("200m")}, []corev1.Container{c("250m"), c("250m")}, 1000},
	} {
		if got := PodCPURequestMilli(&corev1.PodSpec{InitContainers: tt.init, Containers: tt.app}); got != tt.want {
			t.Errorf("%s: PodCPURequestMilli = %d, want %d", tt.name, got, tt.want)
		}
	}
}
