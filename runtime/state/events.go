package state

import "time"

// MaxEvents caps the events kept per pod, so a pod failing forever does not
// fill the disk: aggregation keeps repeats in one entry, and past the cap
// the oldest entry is dropped.
const MaxEvents = 100

// Event is one aggregated pod event, like a v1.Event.
type Event struct {
	// Type is Normal or Warning.
	Type string `json:"type"`
	// Reason is a CamelCase reason (Created, Started, Killing, BackOff, Unhealthy…).
	Reason string `json:"reason"`
	// Object is the field path of the object, e.g. "spec.containers{app}" or "" for the pod.
	Object string `json:"object,omitempty"`
	// Message is the human text.
	Message string `json:"message"`
	// Count is how many times (Object, Reason, Message) happened.
	Count int `json:"count"`
	// FirstSeen and LastSeen bound those occurrences.
	FirstSeen time.Time `json:"firstSeen"`
	LastSeen  time.Time `json:"lastSeen"`
}

// Events is an aggregated, capped event list.
type Events struct {
	// Version is Version.
	Version string `json:"version"`
	// Items, oldest first.
	Items []Event `json:"items"`
}

// Add records an event, aggregating by (object, reason, message).
func (e *Events) Add(typ, object, reason, message string, now time.Time) {
	for i := range e.Items {
		it := &e.Items[i]
		if it.Object == object && it.Reason == reason && it.Message == message {
			it.Count++
			it.LastSeen = now
			return
		}
	}
	e.Items = append(e.Items, Event{Type: typ, Reason: reason, Object: object, Message: message, Count: 1, FirstSeen: now, LastSeen: now})
	if len(e.Items) > MaxEvents {
		e.Items = append(e.Items[:0], e.Items[len(e.Items)-MaxEvents:]...)
	}
}
