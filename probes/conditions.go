package probes

import (
	"fmt"
	"strings"
)

// Pod condition types, statuses and reasons (pkg/kubelet/status/generate.go).
const (
	ConditionContainersReady = "ContainersReady"
	ConditionReady           = "Ready"
	ConditionTrue            = "True"
	ConditionFalse           = "False"

	ReasonUnknownContainerStatuses = "UnknownContainerStatuses"
	ReasonPodCompleted             = "PodCompleted"
	ReasonPodFailed                = "PodFailed"
	ReasonContainersNotReady       = "ContainersNotReady"
	ReasonReadinessGatesNotReady   = "ReadinessGatesNotReady"
)

// Condition is a pod condition without its timestamps.
type Condition struct {
	// Type is ConditionContainersReady or ConditionReady.
	Type string
	// Status is ConditionTrue or ConditionFalse.
	Status string
	// Reason and Message explain a False status.
	Reason  string
	Message string
}

// ContainerReadiness is one container's entry for the conditions, in spec order.
type ContainerReadiness struct {
	// Name is the container's name.
	Name string
	// Known is false when the container has no status yet.
	Known bool
	// Ready is the container's ready flag.
	Ready bool
}

// ReadinessGate is one of the pod's readiness gates with its condition.
type ReadinessGate struct {
	// ConditionType is the gate's condition type.
	ConditionType string
	// Status is the condition's status; "" when the condition does not exist.
	Status string
}

// PodConditions returns the pod's ContainersReady and Ready conditions as
// the kubelet generates them. containers lists the app containers (and
// restartable init containers) in spec order; nil means no status at all.
func PodConditions(phase PodPhase, containers []ContainerReadiness, gates []ReadinessGate) (containersReady, ready Condition) {
	containersReady = containersReadyCondition(phase, containers)
	if containersReady.Status != ConditionTrue {
		return containersReady, Condition{Type: ConditionReady, Status: containersReady.Status, Reason: containersReady.Reason, Message: containersReady.Message}
	}
	var msgs []string
	for _, g := range gates {
		switch g.Status {
		case "":
			msgs = append(msgs, fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", g.ConditionType))
		case ConditionTrue:
		default:
			msgs = append(msgs, fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but %v", g.ConditionType, g.Status))
		}
	}
	if len(msgs) > 0 {
		return containersReady, Condition{Type: ConditionReady, Status: ConditionFalse, Reason: ReasonReadinessGatesNotReady, Message: strings.Join(msgs, ", ")}
	}
	return containersReady, Condition{Type: ConditionReady, Status: ConditionTrue}
}

// containersReadyCondition is GenerateContainersReadyCondition.
func containersReadyCondition(phase PodPhase, containers []ContainerReadiness) Condition {
	if containers == nil {
		return Condition{Type: ConditionContainersReady, Status: ConditionFalse, Reason: ReasonUnknownContainerStatuses}
	}
	var unknown, unready []string
	for _, c := range containers {
		switch {
		case !c.Known:
			unknown = append(unknown, c.Name)
		case !c.Ready:
			unready = append(unready, c.Name)
		}
	}
	if phase == PodSucceeded && len(unknown) == 0 {
		return Condition{Type: ConditionContainersReady, Status: ConditionFalse, Reason: ReasonPodCompleted}
	}
	if phase == PodFailed {
		return Condition{Type: ConditionContainersReady, Status: ConditionFalse, Reason: ReasonPodFailed}
	}
	var msgs []string
	if len(unknown) > 0 {
		msgs = append(msgs, fmt.Sprintf("containers with unknown status: %s", unknown))
	}
	if len(unready) > 0 {
		msgs = append(msgs, fmt.Sprintf("containers with unready status: %s", unready))
	}
	if len(msgs) > 0 {
		return Condition{Type: ConditionContainersReady, Status: ConditionFalse, Reason: ReasonContainersNotReady, Message: strings.Join(msgs, ", ")}
	}
	return Condition{Type: ConditionContainersReady, Status: ConditionTrue}
}
