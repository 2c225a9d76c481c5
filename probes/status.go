package probes

import (
	"time"

	"github.com/peapod/peapod/runtime/state"
)

// PodPhase is the pod's phase, as v1.PodPhase: the one the supervisor
// derives and stores.
type PodPhase = state.PodPhase

// The pod phases.
const (
	PodPending   = state.PodPending
	PodRunning   = state.PodRunning
	PodSucceeded = state.PodSucceeded
	PodFailed    = state.PodFailed
)

// ContainerState is the state of a container instance.
type ContainerState int

// The container states.
const (
	StateWaiting ContainerState = iota
	StateRunning
	StateTerminated
)

// PodStatus is the supervisor's view of the pod the workers need.
type PodStatus struct {
	// Phase is the pod's phase; workers end once it is terminal.
	Phase PodPhase
	// IP is the pod's address, the default probe target.
	IP string
	// Terminating is true once the pod is being deleted or stopped
	// (DeletionTimestamp set): liveness and startup stop, readiness goes on.
	Terminating bool
}

// ContainerStatus is the supervisor's view of one container's current instance.
type ContainerStatus struct {
	// ID is the instance's id, changing on every restart; "" before the first start.
	ID string
	// State is waiting, running or terminated.
	State ContainerState
	// StartedAt is when the running instance started; initialDelaySeconds counts from it.
	StartedAt time.Time
}

// StatusSource is where workers read status, as the kubelet's read the
// status manager's cache.
type StatusSource interface {
	// Status returns the pod's status and the named container's; ok is
	// false while the pod has no status yet.
	Status(container string) (pod PodStatus, ctr ContainerStatus, ok bool)
}
