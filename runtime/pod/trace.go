package pod

import (
	"fmt"
	"io"
	"time"
)

// faultAfter, when set, is called after every step of run and rm with the
// operation and the step's name; an error it returns fails the operation
// there, as a real failure of that step would. Only a binary built with
// the faultinject tag sets it (fault_inject.go), from PEAPOD_FAULT, so
// the tests can fail or kill run and rm after each step in turn; in every
// other build it stays nil.
var faultAfter func(op, step string) error

// supervisorFaultEnv is what a faultinject build passes on to the
// supervisor it spawns for a run (PEAPOD_SUPERVISOR_FAULT, see
// runtime/supervisor/fault_inject.go); nil in every other build. An
// adopting supervisor never gets it, so adoption runs unfaulted.
var supervisorFaultEnv []string

// tracer prints how long each step of an operation took, for people who
// want to see where a pod's start or removal time goes (PEAPOD_TRACE=1).
// Its steps are also the points where faults are injected in tests, so a
// step added here is covered by the fault-injection test at once.
type tracer struct {
	// w receives the lines; nil disables the printing.
	w io.Writer
	// op is the operation (run, rm, gc) and subject its pod.
	op, subject string
	// start and last are the operation's start and the previous step's end.
	start, last time.Time
}

func newTracer(w io.Writer, op, subject string) *tracer {
	now := time.Now()
	return &tracer{w: w, op: op, subject: subject, start: now, last: now}
}

// step records that the named step just finished; an error is an
// injected fault (see faultAfter).
func (t *tracer) step(name string) error {
	if t.w != nil {
		now := time.Now()
		fmt.Fprintf(t.w, "trace: %s %s: %-26s %7.2f ms\n", t.op, t.subject, name, float64(now.Sub(t.last).Microseconds())/1000)
		t.last = now
	}
	if faultAfter != nil {
		return faultAfter(t.op, name)
	}
	return nil
}

// done prints the total.
func (t *tracer) done() {
	if t.w == nil {
		return
	}
	fmt.Fprintf(t.w, "trace: %s %s: %-26s %7.2f ms\n", t.op, t.subject, "total", float64(time.Since(t.start).Microseconds())/1000)
}
