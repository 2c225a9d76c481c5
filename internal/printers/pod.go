// Package printers prints pods as kubectl does: the `get pods` table
// (READY, STATUS and RESTARTS computed as kubectl's pod printer computes
// them), -o json|yaml|name|jsonpath|custom-columns, and `describe pod`.
// It works on v1.Pod values only, so every rule is table-tested without a
// running pod.
package printers

import (
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
)

// Pod is one pod to print: the v1.Pod and, when set, a STATUS that
// replaces the computed one (peapod's own states kubectl has no word for:
// Creating, Stopped, SupervisorLost…).
type Pod struct {
	// Pod is the pod as `get -o json` prints it.
	Pod *corev1.Pod
	// Status, when not empty, is the STATUS column.
	Status string
}

// Row is the `get pods` columns of one pod.
type Row struct {
	// Name, Ready ("1/2"), Status, Restarts ("3 (2m ago)") and Age as
	// kubectl prints them.
	Name, Ready, Status, Restarts, Age string
	// IP, Node, NominatedNode and ReadinessGates are the -o wide columns.
	IP, Node, NominatedNode, ReadinessGates string
}

// Since is kubectl's age of a timestamp: "<unknown>" for none.
func Since(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

// PodRow computes the columns of a pod as kubectl's pod printer does:
// STATUS starts from the phase (or status.reason); the first init
// container that has not completed decides it while the pod initializes
// (Init:N/M, Init:<reason>, Init:ExitCode:N); afterwards the app
// containers' waiting or terminated reasons do, the first container in
// spec order winning, and a pod that would read Completed while a
// container still runs reads Running if the pod is Ready, else NotReady.
// READY counts ready running app containers (and started restartable
// init containers, which count in the total). RESTARTS sums restarts,
// with the age of the latest termination; while initializing it counts
// the init containers' restarts.
func PodRow(p *corev1.Pod, now time.Time) Row {
	restarts, sidecarRestarts := 0, 0
	total, ready := len(p.Spec.Containers), 0
	var lastRestart, lastSidecarRestart metav1.Time
	reason := string(p.Status.Phase)
	if p.Status.Reason != "" {
		reason = p.Status.Reason
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Reason == corev1.PodReasonSchedulingGated {
			reason = corev1.PodReasonSchedulingGated
		}
	}
	sidecars := map[string]bool{}
	for _, c := range p.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecars[c.Name] = true
			total++
		}
	}
	later := func(cur *metav1.Time, cs corev1.ContainerStatus) {
		if t := cs.LastTerminationState.Terminated; t != nil && cur.Before(&t.FinishedAt) {
			*cur = t.FinishedAt
		}
	}
	initializing := false
	for i, c := range p.Status.InitContainerStatuses {
		restarts += int(c.RestartCount)
		later(&lastRestart, c)
		if sidecars[c.Name] {
			sidecarRestarts += int(c.RestartCount)
			later(&lastSidecarRestart, c)
		}
		t := c.State.Terminated
		switch {
		case t != nil && t.ExitCode == 0:
			continue
		case sidecars[c.Name] && c.Started != nil && *c.Started:
			if c.Ready {
				ready++
			}
			continue
		case t != nil:
			switch {
			case t.Reason != "":
				reason = "Init:" + t.Reason
			case t.Signal != 0:
				reason = fmt.Sprintf("Init:Signal:%d", t.Signal)
			default:
				reason = fmt.Sprintf("Init:ExitCode:%d", t.ExitCode)
			}
		case c.State.Waiting != nil && c.State.Waiting.Reason != "" && c.State.Waiting.Reason != "PodInitializing":
			reason = "Init:" + c.State.Waiting.Reason
		default:
			reason = fmt.Sprintf("Init:%d/%d", i, len(p.Spec.InitContainers))
		}
		initializing = true
		break
	}
	if !initializing || conditionTrue(p, corev1.PodInitialized) {
		restarts, lastRestart = sidecarRestarts, lastSidecarRestart
		hasRunning := false
		for i := len(p.Status.ContainerStatuses) - 1; i >= 0; i-- {
			c := p.Status.ContainerStatuses[i]
			restarts += int(c.RestartCount)
			later(&lastRestart, c)
			t := c.State.Terminated
			switch {
			case c.State.Waiting != nil && c.State.Waiting.Reason != "":
				reason = c.State.Waiting.Reason
			case t != nil && t.Reason != "":
				reason = t.Reason
			case t != nil && t.Signal != 0:
				reason = fmt.Sprintf("Signal:%d", t.Signal)
			case t != nil:
				reason = fmt.Sprintf("ExitCode:%d", t.ExitCode)
			case c.Ready && c.State.Running != nil:
				hasRunning = true
				ready++
			}
		}
		if reason == "Completed" && hasRunning {
			reason = "NotReady"
			if conditionTrue(p, corev1.PodReady) {
				reason = "Running"
			}
		}
	}
	if p.DeletionTimestamp != nil {
		if p.Status.Reason == "NodeLost" {
			reason = "Unknown"
		} else if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			reason = "Terminating"
		}
	}
	r := Row{Name: p.Name, Ready: fmt.Sprintf("%d/%d", ready, total), Status: reason,
		Restarts: strconv.Itoa(restarts), Age: Since(p.CreationTimestamp, now)}
	if restarts != 0 && !lastRestart.IsZero() {
		r.Restarts = fmt.Sprintf("%d (%s ago)", restarts, Since(lastRestart, now))
	}
	r.IP, r.Node, r.NominatedNode, r.ReadinessGates = "<none>", "<none>", "<none>", "<none>"
	if len(p.Status.PodIPs) > 0 {
		r.IP = p.Status.PodIPs[0].IP
	} else if p.Status.PodIP != "" {
		r.IP = p.Status.PodIP
	}
	if p.Spec.NodeName != "" {
		r.Node = p.Spec.NodeName
	}
	if p.Status.NominatedNodeName != "" {
		r.NominatedNode = p.Status.NominatedNodeName
	}
	if n := len(p.Spec.ReadinessGates); n > 0 {
		met := 0
		for _, g := range p.Spec.ReadinessGates {
			for _, c := range p.Status.Conditions {
				if c.Type == g.ConditionType && c.Status == corev1.ConditionTrue {
					met++
					break
				}
			}
		}
		r.ReadinessGates = fmt.Sprintf("%d/%d", met, n)
	}
	return r
}

func conditionTrue(p *corev1.Pod, t corev1.PodConditionType) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
