package probes

import (
	"context"
	"time"
)

// ProbeType names one of the three probe kinds of a container.
type ProbeType int

// The probe kinds, in the order the kubelet creates their workers.
const (
	Startup ProbeType = iota
	Readiness
	Liveness
)

// String returns the name the kubelet prints in events and metric labels.
func (t ProbeType) String() string {
	switch t {
	case Startup:
		return "Startup"
	case Readiness:
		return "Readiness"
	case Liveness:
		return "Liveness"
	}
	return "UNKNOWN"
}

// Outcome is what one protocol handler run says (pkg/probe.Result).
type Outcome int

// Handler outcomes. Warning counts as success but raises a ProbeWarning event.
const (
	OutcomeSuccess Outcome = iota
	OutcomeWarning
	OutcomeFailure
	OutcomeUnknown
)

// String returns the pkg/probe spelling of the outcome.
func (o Outcome) String() string {
	switch o {
	case OutcomeSuccess:
		return "success"
	case OutcomeWarning:
		return "warning"
	case OutcomeFailure:
		return "failure"
	}
	return "unknown"
}

// Handler runs one protocol probe against a container. A network failure is
// an outcome (OutcomeFailure plus a message); a non-nil error means the
// probe could not be run at all (bad port, unbuildable request, broken exec
// runtime) and leaves the cached state unchanged.
type Handler interface {
	Probe(ctx context.Context, podIP string) (Outcome, string, error)
}

// Runner runs argv and returns its output (stdout followed by stderr) and
// exit code. It enforces timeout itself: on expiry it kills and reaps the
// process (and its children) and returns an error wrapping ErrExecTimeout.
// Any other error means the command could not be run.
type Runner func(ctx context.Context, argv []string, timeout time.Duration) (output []byte, exitCode int, err error)
