package probes

import "fmt"

// Event types, as v1.EventTypeNormal and v1.EventTypeWarning.
const (
	EventNormal  = "Normal"
	EventWarning = "Warning"
)

// Event reasons, as pkg/kubelet/events.
const (
	ReasonUnhealthy    = "Unhealthy"
	ReasonProbeWarning = "ProbeWarning"
	ReasonKilling      = "Killing"
	ReasonBackOff      = "BackOff"
)

// Event is one event about a container; the supervisor aggregates and stores them.
type Event struct {
	// Container is the container the event is about.
	Container string
	// Type is EventNormal or EventWarning.
	Type string
	// Reason is one of the Reason constants.
	Reason string
	// Message is the kubelet's text.
	Message string
}

// EventSink receives the events the probes raise. It must not block for long:
// it is called from the probe workers.
type EventSink interface {
	Emit(Event)
}

// EventFunc adapts a function to EventSink.
type EventFunc func(Event)

// Emit calls f.
func (f EventFunc) Emit(e Event) { f(e) }

// KillMessage is the message of the Killing event of a probe kill
// (computePodActions): "Container c failed liveness probe", with
// ", will be restarted" when the restart policy is not Never.
func KillMessage(t ProbeType, container string, restart bool) string {
	kind := "liveness"
	if t == Startup {
		kind = "startup"
	}
	msg := fmt.Sprintf("Container %s failed %s probe", container, kind)
	if restart {
		msg += ", will be restarted"
	}
	return msg
}

// KillEvent is the Normal Killing event of a probe kill.
func KillEvent(t ProbeType, container string, restart bool) Event {
	return Event{Container: container, Type: EventNormal, Reason: ReasonKilling, Message: KillMessage(t, container, restart)}
}
