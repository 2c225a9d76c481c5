package main

import (
	"os"
	"testing"
)

// TestTraceOut: PEAPOD_TRACE turns the sandbox steps' timing on (stderr),
// as for `peapod run` and `rm`; unset, nothing is traced.
func TestTraceOut(t *testing.T) {
	t.Setenv("PEAPOD_TRACE", "")
	if w := traceOut(); w != nil {
		t.Errorf("traceOut() without PEAPOD_TRACE = %v, want nil", w)
	}
	t.Setenv("PEAPOD_TRACE", "1")
	if w := traceOut(); w != os.Stderr {
		t.Errorf("traceOut() with PEAPOD_TRACE=1 = %v, want os.Stderr", w)
	}
}
