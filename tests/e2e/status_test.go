package e2e

import (
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestStatus_11: `get -o json` is a v1.Pod (decoded strictly by env.get)
// whose status carries every field the issue lists, for a running, a
// Succeeded and a Failed pod.
func TestStatus_11(t *testing.T) {
	e := newEnv(t)
	// Timestamps have second precision.
	start := time.Now().Truncate(time.Second)

	running := newPod("running", ctr("a", "sleep", "1000"), ctr("b", "sleep", "1001"))
	succeeded := newPod("succeeded", ctr("a", "true"))
	succeeded.Spec.RestartPolicy = corev1.RestartPolicyNever
	failed := newPod("failed", shell("a", "exit 3"))
	failed.Spec.RestartPolicy = corev1.RestartPolicyNever
	for _, p := range []*corev1.Pod{running, succeeded, failed} {
		e.runPod(podJSON(p))
	}

	tests := []struct {
		pod        *corev1.Pod
		phase      corev1.PodPhase
		ready      corev1.ConditionStatus
		exitCode   int32  // of terminated containers
		reason     string // of terminated containers
		terminated bool
	}{
		{pod: running, phase: corev1.PodRunning, ready: corev1.ConditionTrue},
		{pod: succeeded, phase: corev1.PodSucceeded, ready: corev1.ConditionFalse, terminated: true, reason: "Completed"},
		{pod: failed, phase: corev1.PodFailed, ready: corev1.ConditionFalse, terminated: true, exitCode: 3, reason: "Error"},
	}
	for _, tt := range tests {
		t.Run(tt.pod.Name, func(t *testing.T) {
			e := e.on(t)
			got := e.waitPod(tt.pod.Name, waitTimeout, func(p *corev1.Pod) (bool, string) {
				return p.Status.Phase == tt.phase && condition(p, corev1.PodReady) == tt.ready,
					"phase " + string(p.Status.Phase) + ", Ready " + string(condition(p, corev1.PodReady))
			})
			v := e.inspect(tt.pod.Name)
			st := got.Status
			if got.Name != tt.pod.Name || got.Namespace != "default" || string(got.UID) != v.UID || v.UID == "" {
				t.Errorf("metadata name=%q namespace=%q uid=%q, want %q, default, inspect's uid %q", got.Name, got.Namespace, got.UID, tt.pod.Name, v.UID)
			}
			wantConds := map[corev1.PodConditionType]corev1.ConditionStatus{
				corev1.PodScheduled:    corev1.ConditionTrue,
				corev1.PodInitialized:  corev1.ConditionTrue,
				corev1.ContainersReady: tt.ready,
				corev1.PodReady:        tt.ready,
			}
			if len(st.Conditions) != len(wantConds) {
				t.Errorf("conditions %+v, want exactly %v", st.Conditions, wantConds)
			}
			for typ, want := range wantConds {
				if c := condition(got, typ); c != want {
					t.Errorf("condition %s = %q, want %q", typ, c, want)
				}
			}
			ip, err := netip.ParseAddr(st.PodIP)
			if err != nil || !e.subnet.Contains(ip) || st.PodIP != v.IP {
				t.Errorf("podIP %q, want inspect's %q inside %s", st.PodIP, v.IP, e.subnet)
			}
			if len(st.PodIPs) != 1 || st.PodIPs[0].IP != st.PodIP {
				t.Errorf("podIPs %v, want [%s]", st.PodIPs, st.PodIP)
			}
			if st.StartTime == nil || st.StartTime.Time.Before(start) || st.StartTime.Time.After(time.Now()) {
				t.Errorf("startTime %v, want a time since the test started at %v", st.StartTime, start)
			}
			if len(st.ContainerStatuses) != len(tt.pod.Spec.Containers) {
				t.Fatalf("%d container statuses, want %d", len(st.ContainerStatuses), len(tt.pod.Spec.Containers))
			}
			for i, c := range tt.pod.Spec.Containers {
				cs := st.ContainerStatuses[i]
				if cs.Name != c.Name {
					t.Errorf("containerStatuses[%d] is %q, want %q (spec order)", i, cs.Name, c.Name)
				}
				checkContainerStatus(t, cs, v.container(t, c.Name), e.imageID, st.StartTime, tt.terminated, tt.exitCode, tt.reason)
			}
		})
	}
}

// checkContainerStatus asserts one container's status fields.
func checkContainerStatus(t *testing.T, cs corev1.ContainerStatus, ic inspectContainer, imageID string, podStart *metav1.Time, terminated bool, exitCode int32, reason string) {
	t.Helper()
	wantID := "peapod://" + ic.ID
	if ic.ID == "" || cs.ContainerID != wantID {
		t.Errorf("container %s: containerID %q, want %q (inspect's id)", cs.Name, cs.ContainerID, wantID)
	}
	if cs.Image != "busybox:latest" || cs.ImageID != imageID {
		t.Errorf("container %s: image %q imageID %q, want busybox:latest %s", cs.Name, cs.Image, cs.ImageID, imageID)
	}
	if cs.RestartCount != 0 || cs.LastTerminationState != (corev1.ContainerState{}) {
		t.Errorf("container %s: restartCount %d lastState %+v, want 0 and empty", cs.Name, cs.RestartCount, cs.LastTerminationState)
	}
	started := cs.Started != nil && *cs.Started
	if !terminated {
		r := cs.State.Running
		if r == nil || r.StartedAt.IsZero() || cs.State.Waiting != nil || cs.State.Terminated != nil {
			t.Errorf("container %s: state %+v, want running with startedAt", cs.Name, cs.State)
		} else if podStart != nil && r.StartedAt.Before(podStart) {
			t.Errorf("container %s: startedAt %v before the pod's startTime %v", cs.Name, r.StartedAt, podStart)
		}
		if !cs.Ready || !started {
			t.Errorf("container %s: ready=%v started=%v, want both true", cs.Name, cs.Ready, started)
		}
		if ic.PID == 0 || ic.State != "running" {
			t.Errorf("container %s: inspect pid %d state %q, want a running pid", cs.Name, ic.PID, ic.State)
		}
		return
	}
	term := cs.State.Terminated
	if term == nil || cs.State.Running != nil || cs.State.Waiting != nil {
		t.Fatalf("container %s: state %+v, want terminated", cs.Name, cs.State)
	}
	if term.ExitCode != exitCode || term.Reason != reason {
		t.Errorf("container %s: terminated with exit code %d reason %q, want %d %q", cs.Name, term.ExitCode, term.Reason, exitCode, reason)
	}
	if term.StartedAt.IsZero() || term.FinishedAt.IsZero() || term.FinishedAt.Before(&term.StartedAt) {
		t.Errorf("container %s: startedAt %v finishedAt %v, want both, in order", cs.Name, term.StartedAt, term.FinishedAt)
	}
	if term.ContainerID != cs.ContainerID {
		t.Errorf("container %s: terminated.containerID %q, want %q", cs.Name, term.ContainerID, cs.ContainerID)
	}
	if cs.Ready || started {
		t.Errorf("container %s: ready=%v started=%v after it terminated, want both false", cs.Name, cs.Ready, started)
	}
	if ic.PID != 0 {
		t.Errorf("container %s: inspect pid %d after it terminated, want 0", cs.Name, ic.PID)
	}
}
