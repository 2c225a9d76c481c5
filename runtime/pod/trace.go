package pod

import (
	"fmt"
	"io"
	"time"
)

// tracer prints how long each step of an operation took, for people who
// want to see where a pod's start or removal time goes (PEAPOD_TRACE=1).
type tracer struct {
	// w receives the lines; nil disables the tracer.
	w io.Writer
	// op names the operation.
	op string
	// start and last are the operation's start and the previous step's end.
	start, last time.Time
}

func newTracer(w io.Writer, op string) *tracer {
	now := time.Now()
	return &tracer{w: w, op: op, start: now, last: now}
}

// step records that the named step just finished.
func (t *tracer) step(name string) {
	if t.w == nil {
		return
	}
	now := time.Now()
	fmt.Fprintf(t.w, "trace: %s: %-26s %7.2f ms\n", t.op, name, float64(now.Sub(t.last).Microseconds())/1000)
	t.last = now
}

// done prints the total.
func (t *tracer) done() {
	if t.w == nil {
		return
	}
	fmt.Fprintf(t.w, "trace: %s: %-26s %7.2f ms\n", t.op, "total", float64(time.Since(t.start).Microseconds())/1000)
}
