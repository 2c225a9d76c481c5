package manifest

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestResize(t *testing.T) {
	q := func(s string) *resource.Quantity { v := resource.MustParse(s); return &v }
	list := func(kv ...string) corev1.ResourceList {
		l := corev1.ResourceList{}
		for i := 0; i < len(kv); i += 2 {
			l[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
		}
		return l
	}
	ctr := func(name string, req, lim corev1.ResourceList) corev1.Container {
		return corev1.Container{Name: name, Image: "busybox", Resources: corev1.ResourceRequirements{Requests: req, Limits: lim}}
	}
	pod := func(cs ...corev1.Container) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"}, Spec: corev1.PodSpec{Containers: cs}}
	}
	guaranteed := pod(ctr("a", list("cpu", "500m", "memory", "64Mi"), list("cpu", "500m", "memory", "64Mi")))
	burstable := pod(ctr("a", list("cpu", "100m"), list("cpu", "500m", "memory", "64Mi")), ctr("b", nil, nil))
	bestEffort := pod(ctr("a", nil, nil))
	withInit := pod(ctr("a", nil, nil))
	withInit.Spec.InitContainers = []corev1.Container{ctr("init", nil, nil)}
	for _, tt := range []struct {
		name          string
		pod           *corev1.Pod
		container     string
		cpu, mem      *resource.Quantity
		wantErr       string
		wantReqCPU    string
		wantQuota     int64
		wantMem       int64
		wantPodMem    int64
		wantPodShares uint64
	}{
		{name: "guaranteed requests follow", pod: guaranteed, container: "a", cpu: q("1"), mem: q("128Mi"),
			wantReqCPU: "1", wantQuota: 100000, wantMem: 128 << 20, wantPodMem: 128 << 20, wantPodShares: 1024},
		{name: "burstable keeps its request", pod: burstable, container: "a", mem: q("32Mi"),
			wantReqCPU: "100m", wantQuota: 50000, wantMem: 32 << 20, wantPodShares: 102},
		{name: "burstable container gains a limit", pod: burstable, container: "b", cpu: q("200m"),
			wantReqCPU: "200m", wantQuota: 20000, wantPodShares: 307}, // shares of the summed 300m,
		{name: "limit below request", pod: burstable, container: "a", cpu: q("50m"), wantErr: "must be less than or equal to cpu limit"},
		{name: "qos change", pod: bestEffort, container: "a", mem: q("64Mi"), wantErr: "QoS class from BestEffort to Burstable"},
		{name: "guaranteed loses nothing", pod: guaranteed, container: "a", cpu: q("250m"),
			wantReqCPU: "250m", wantQuota: 25000, wantMem: 64 << 20, wantPodMem: 64 << 20, wantPodShares: 256},
		{name: "init container", pod: withInit, container: "init", cpu: q("1"), wantErr: "is an init container"},
		{name: "unknown container", pod: guaranteed, container: "zz", cpu: q("1"), wantErr: `has no container "zz"`},
		{name: "nothing", pod: guaranteed, container: "a", wantErr: "nothing to resize"},
		{name: "too small", pod: burstable, container: "a", mem: q("1k"), wantErr: "spec.containers[0].resources.limits[memory]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			orig := tt.pod.DeepCopy()
			r, err := Resize(tt.pod, tt.container, tt.cpu, tt.mem)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Resize error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !equalPods(orig, tt.pod) {
				t.Error("Resize modified its input pod")
			}
			var c corev1.Container
			for _, x := range r.Pod.Spec.Containers {
				if x.Name == tt.container {
					c = x
				}
			}
			if got := c.Resources.Requests.Cpu().String(); got != tt.wantReqCPU {
				t.Errorf("cpu request %s, want %s", got, tt.wantReqCPU)
			}
			var quota, mem int64
			if r.Container.CPU.Quota != nil {
				quota = *r.Container.CPU.Quota
			}
			if r.Container.Memory != nil {
				mem = *r.Container.Memory.Limit
			}
			if quota != tt.wantQuota || mem != tt.wantMem {
				t.Errorf("container quota %d memory %d, want %d %d", quota, mem, tt.wantQuota, tt.wantMem)
			}
			var podMem int64
			if r.PodLevel.Memory != nil {
				podMem = *r.PodLevel.Memory.Limit
			}
			if podMem != tt.wantPodMem || *r.PodLevel.CPU.Shares != tt.wantPodShares {
				t.Errorf("pod memory %d shares %d, want %d %d", podMem, *r.PodLevel.CPU.Shares, tt.wantPodMem, tt.wantPodShares)
			}
		})
	}
}

func equalPods(a, b *corev1.Pod) bool {
	return a.Spec.Containers[0].Resources.Limits.Cpu().Equal(*b.Spec.Containers[0].Resources.Limits.Cpu()) &&
		a.Spec.Containers[0].Resources.Limits.Memory().Equal(*b.Spec.Containers[0].Resources.Limits.Memory())
}
