package printers

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var (
	t0  = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	now = t0.Add(10 * time.Minute)
)

func at(d time.Duration) metav1.Time { return metav1.NewTime(t0.Add(d)) }

func running(name string, ready bool) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, Ready: ready, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: at(0)}}}
}

func terminated(name, reason string, code, signal int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		Reason: reason, ExitCode: code, Signal: signal, StartedAt: at(0), FinishedAt: at(time.Minute)}}}
}

func waiting(name, reason string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}}
}

// restarted gives cs n restarts, the last ending at finished.
func restarted(cs corev1.ContainerStatus, n int32, finished time.Duration) corev1.ContainerStatus {
	cs.RestartCount = n
	cs.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", FinishedAt: at(finished)}
	return cs
}

func cond(t corev1.PodConditionType, ok bool) corev1.PodCondition {
	s := corev1.ConditionFalse
	if ok {
		s = corev1.ConditionTrue
	}
	return corev1.PodCondition{Type: t, Status: s}
}

// testPod is a pod of the named containers (and init containers).
func testPod(phase corev1.PodPhase, inits, ctrs []string) *corev1.Pod {
	p := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", CreationTimestamp: at(0)},
		Status: corev1.PodStatus{Phase: phase}}
	for _, n := range inits {
		p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: n})
	}
	for _, n := range ctrs {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: n})
	}
	return p
}

// TestPodRow: READY, STATUS and RESTARTS as kubectl's pod printer
// computes them, case by case.
func TestPodRow(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	tests := []struct {
		name                    string
		pod                     func() *corev1.Pod
		ready, status, restarts string
	}{{
		name: "running and ready",
		pod: func() *corev1.Pod {
			p := testPod(corev1.PodRunning, nil, []string{"a", "b"})
			p.Status.ContainerStatuses = []corev1.ContainerStatus{running("a", true), running("b", true)}
			p.Status.Conditions = []corev1.PodCondition{cond(corev1.PodInitialized, true), cond(corev1.PodReady, true)}
			return p
		},
		ready: "2/2", status: "Running", restarts: "0",
	}, {
		// The case: one container runs, the other finished.
		name: "a running and a completed container is NotReady",
		pod: func() *corev1.Pod {
			p := testPod(corev1.PodRunning, nil, []string{"a", "b"})
			p.Status.ContainerStatuses = []corev1.ContainerStatus{running("a", true), terminated("b", "Completed", 0, 0)}
			p.Status.Conditions = []corev1.PodCondition{cond(corev1.PodInitialized, true), cond(corev1.PodReady, false)}
			return p
		},
		ready: "1/2", status: "NotReady", restarts: "0",
	}, {
		name: "completed while the pod is Ready reads Running",
		pod: func() *corev1.Pod {
			p := testPod(corev1.PodRunning, nil, []string{"a", "b"})
			p.Status.ContainerStatuses = []corev1.ContainerStatus{running("a", true), terminated("b", "Completed", 0, 0)}
			p.Status.Conditions = []corev1.PodCondition{cond(corev1.PodReady, true)}
			return p
		},
		ready: "1/2", status: "Running", restarts: "0",
	}, {
		name: "succeeded",
		pod: func() *corev1.Pod {
			p := testPod(corev1.PodSucceeded, nil, []string{"a"})
			p.Status.ContainerStatuses = []corev1.ContainerStatus{terminated("a", "Completed", 0, 0)}
			return p
		},
		ready: "0/1", status: "Completed", restarts: "0",
	}, {
		name: "failed",
		pod: func() *corev1.Pod {
			p := testPod(corev1.PodFailed, nil, []string{"a"})
			p.Status.ContainerStatuses = []corev1.ContainerStatus{terminated("a", "Error", 3, 0)}
			return p
		},
		ready: "0/1", status: "Error", restarts: "0",
	}, {
		name: "crash loop with the last restart's age",
		pod: func() *corev1.Pod {
			p := testPod(corev1.PodRunning, nil, []string{"a", "b"})
			p.Status.ContainerStatuses = []corev1.ContainerStatus{running("a", true), restarted(waiting("b", "CrashLoopBackOff"), 3, 7*time.Minute)}
			return p
		},
		ready: "1/2", status: "CrashLoopBackOff", restarts: "3 (3m ago)",
	}, {
		name: "the first container in spec order decides",
		pod: func() *corev1.Pod {
			p := testPod(corev1.PodRunning, nil, []string{"a", "b"})
			p.Status.ContainerStatuses = []corev1.ContainerStatus{waiting("a", "CreateContainerConfigError"), waiting("b", "CrashLoopBackOff")}
			return p
		},
		ready: "0/2", status: "CreateContainerConfigError", restarts: "0",
	}, {
		name: "terminated without a reason: exit code",
		pod: func() *corev1.Pod {
			p := testPod(corev1.PodFailed, nil, []string{"a"})
			p.Status.ContainerStatuses = []corev1.ContainerStatus{terminated("a", "", 2, 0)}
			return p
		},
		ready: "0/1", status: "ExitCode:2", restarts: "0",
	}, {
		name: "terminated without a reason: signal",
		pod: func() *corev1.Pod {
			p := testPod(corev1.PodFailed, nil, []string{"a"})
			p.Status.ContainerStatuses = []corev1.ContainerStatus{terminated("a", "", 137, 9)}
			return p
		},
		ready: "0/1", status: "Signal:9", restarts: "0",
	}, {
		name: "first init container running",
		pod: func() *corev1.Pod {
			p := testPod(corev1.PodPending, []string{"i1", "i2"}, []string{"a"})
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{running("i1", false), waiting("i2", "PodInitializing")}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{waiting("a", "PodInitializing")}
			p.Status.Conditions = []corev1.PodCondition{cond(corev1.PodInitialized, false)}
			return p
		},
		ready: "0/1", status: "Init:0/2", restarts: "0",
	}, {
		name: "second init container running",
		pod: func() *corev1.Pod {
			p := testPod(corev1.PodPending, []string{"i1", "i2"}, []string{"a"})
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{terminated("i1", "Completed", 0, 0), running("i2", false)}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{waiting("a", "PodInitializing")}
			return p
		},
		ready: "0/1", status: "Init:1/2", restarts: "0",
	}, {
		name: "init container crash loop counts init restarts",
		pod: func() *corev1.Pod {
			p := testPod(corev1.PodPending, []string{"i1"}, []string{"a"})
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{restarted(waiting("i1", "CrashLoopBackOff"), 4, 9*time.Minute)}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{waiting("a", "PodInitializing")}
			return p
		},
		ready: "0/1", status: "Init:CrashLoopBackOff", restarts: "4 (60s ago)",
	}, {
		name: "init container failed",
		pod: func() *corev1.Pod {
			p := testPod(corev1.PodFailed, []string{"i1"}, []string{"a"})
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{terminated("i1", "Error", 1, 0)}
			return p
		},
		ready: "0/1", status: "Init:Error", restarts: "0",
	}, {
		name: "init container failed without a reason",
		pod: func() *corev1.Pod {
			p := testPod(corev1.PodFailed, []string{"i1"}, []string{"a"})
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{terminated("i1", "", 5, 0)}
			return p
		},
		ready: "0/1", status: "Init:ExitCode:5", restarts: "0",
	}, {
		name: "a started sidecar counts in READY and the total",
		pod: func() *corev1.Pod {
			p := testPod(corev1.PodRunning, []string{"side"}, []string{"a"})
			p.Spec.InitContainers[0].RestartPolicy = &always
			started := true
			side := restarted(running("side", true), 2, 8*time.Minute)
			side.Started = &started
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{side}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{running("a", true)}
			p.Status.Conditions = []corev1.PodCondition{cond(corev1.PodInitialized, true), cond(corev1.PodReady, true)}
			return p
		},
		ready: "2/2", status: "Running", restarts: "2 (2m ago)",
	}, {
		name: "terminating",
		pod: func() *corev1.Pod {
			p := testPod(corev1.PodRunning, nil, []string{"a"})
			p.Status.ContainerStatuses = []corev1.ContainerStatus{running("a", true)}
			d := at(time.Minute)
			p.DeletionTimestamp = &d
			return p
		},
		ready: "1/1", status: "Terminating", restarts: "0",
	}, {
		name:  "pending without statuses",
		pod:   func() *corev1.Pod { return testPod(corev1.PodPending, nil, []string{"a"}) },
		ready: "0/1", status: "Pending", restarts: "0",
	}, {
		name: "status reason replaces the phase",
		pod: func() *corev1.Pod {
			p := testPod(corev1.PodFailed, nil, []string{"a"})
			p.Status.Reason = "Evicted"
			return p
		},
		ready: "0/1", status: "Evicted", restarts: "0",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := PodRow(tt.pod(), now)
			if r.Ready != tt.ready || r.Status != tt.status || r.Restarts != tt.restarts {
				t.Errorf("READY %q STATUS %q RESTARTS %q, want %q %q %q", r.Ready, r.Status, r.Restarts, tt.ready, tt.status, tt.restarts)
			}
			if r.Age != "10m" {
				t.Errorf("AGE %q, want 10m", r.Age)
			}
		})
	}
}

// TestPodRowWide: the -o wide columns.
func TestPodRowWide(t *testing.T) {
	p := testPod(corev1.PodRunning, nil, []string{"a"})
	r := PodRow(p, now)
	if r.IP != "<none>" || r.Node != "<none>" || r.NominatedNode != "<none>" || r.ReadinessGates != "<none>" {
		t.Errorf("empty wide columns %+v, want <none> each", r)
	}
	p.Status.PodIP, p.Status.PodIPs = "10.0.0.2", []corev1.PodIP{{IP: "10.0.0.2"}}
	p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "x"}, {ConditionType: "y"}}
	p.Status.Conditions = []corev1.PodCondition{{Type: "x", Status: corev1.ConditionTrue}, {Type: "y", Status: corev1.ConditionFalse}}
	r = PodRow(p, now)
	if r.IP != "10.0.0.2" || r.ReadinessGates != "1/2" {
		t.Errorf("IP %q READINESS GATES %q, want 10.0.0.2 1/2", r.IP, r.ReadinessGates)
	}
	if got := PodRow(&corev1.Pod{}, now).Age; got != "<unknown>" {
		t.Errorf("AGE of a pod without a creation time = %q, want <unknown>", got)
	}
}
