package pod

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/peapod/peapod/runtime/state"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func testRecord(t *testing.T) *state.Record {
	t.Helper()
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "u1"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}, {Name: "side"}}}}
	raw, err := json.Marshal(&p)
	if err != nil {
		t.Fatal(err)
	}
	return &state.Record{Version: state.Version, UID: "u1", Name: "web", Namespace: "default",
		Phase: state.PhaseCreated, Manifest: raw, IP: "10.220.0.7", CreatedAt: time.Unix(1000, 0)}
}

func TestKubePodStatus(t *testing.T) {
	started := time.Unix(2000, 0).UTC()
	yes := true
	v := &View{Record: testRecord(t), Phase: "Running", Status: &state.Status{
		Version: state.Version, Phase: "Running", Initialized: true, StartTime: &started,
		Containers: []state.ContainerStatus{
			{Name: "app", ID: "u1-app", Image: "busybox:latest", ImageID: "sha256:abc", State: state.StateRunning,
				StartedAt: started, Ready: true, Started: &yes, RestartCount: 1,
				Last: &state.Terminated{ExitCode: 137, Signal: 9, Reason: "Error", StartedAt: started, FinishedAt: started}},
			{Name: "side", ID: "u1-side", State: state.StateWaiting, Reason: "ContainerCreating"},
		},
	}}
	p, err := v.KubePod()
	if err != nil {
		t.Fatal(err)
	}
	st := p.Status
	if st.QOSClass != corev1.PodQOSBestEffort {
		t.Errorf("qosClass = %q, want BestEffort (no resources)", st.QOSClass)
	}
	if st.Phase != corev1.PodRunning || st.PodIP != "10.220.0.7" || len(st.PodIPs) != 1 || st.StartTime == nil || !st.StartTime.Time.Equal(started) {
		t.Errorf("pod status = %+v", st)
	}
	app := st.ContainerStatuses[0]
	if app.State.Running == nil || !app.Ready || app.RestartCount != 1 || app.ContainerID != "peapod://u1-app" ||
		app.ImageID != "sha256:abc" || app.LastTerminationState.Terminated == nil || app.LastTerminationState.Terminated.ExitCode != 137 {
		t.Errorf("app status = %+v", app)
	}
	side := st.ContainerStatuses[1]
	if side.State.Waiting == nil || side.State.Waiting.Reason != "ContainerCreating" || side.Ready {
		t.Errorf("side status = %+v", side)
	}
	conds := map[corev1.PodConditionType]corev1.PodCondition{}
	for _, c := range st.Conditions {
		conds[c.Type] = c
	}
	if conds[corev1.PodScheduled].Status != corev1.ConditionTrue || conds[corev1.PodInitialized].Status != corev1.ConditionTrue {
		t.Errorf("conditions = %+v", st.Conditions)
	}
	ready := conds[corev1.PodReady]
	if ready.Status != corev1.ConditionFalse || ready.Reason != "ContainersNotReady" || ready.Message != "containers with unready status: [side]" {
		t.Errorf("Ready condition = %+v", ready)
	}
}

func TestHostPorts(t *testing.T) {
	p := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{
		{Name: "a", Ports: []corev1.ContainerPort{{ContainerPort: 80, HostPort: 8080, Protocol: corev1.ProtocolTCP, HostIP: "127.0.0.1"}, {ContainerPort: 81}}},
		{Name: "b", Ports: []corev1.ContainerPort{{ContainerPort: 53, HostPort: 5353, Protocol: corev1.ProtocolUDP}}},
	}}}
	got := hostPorts(p)
	if len(got) != 2 || got[0].HostPort != 8080 || got[0].ContainerPort != 80 || got[0].HostIP.String() != "127.0.0.1" ||
		got[1].Protocol != "UDP" || got[1].HostIP.IsValid() {
		t.Fatalf("hostPorts = %+v", got)
	}
}

// TestKubePodStoppedHasNoIP: stop released the pod's address, which
// another pod may hold now: get and ps show none.
func TestKubePodStoppedHasNoIP(t *testing.T) {
	rec := testRecord(t)
	rec.Phase = state.PhaseStopped
	p, err := (&View{Record: rec, Phase: state.PodFailed}).KubePod()
	if err != nil {
		t.Fatal(err)
	}
	if p.Status.PodIP != "" || len(p.Status.PodIPs) != 0 {
		t.Errorf("stopped pod: podIP %q podIPs %v, want none", p.Status.PodIP, p.Status.PodIPs)
	}
}
