package supervisor

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// GateEnv names the descriptor a supervisor spawned by run waits on before
// it reads its spec: run starts the supervisor first and makes the pod's
// sandbox, network and spec while the supervisor's exec and Go runtime
// start-up happen, then opens the gate by writing GateOpen.
const GateEnv = "PEAPOD_SUPERVISOR_GATE"

// GateOpen is the byte that opens the gate.
const GateOpen byte = 'g'

// ErrGateClosed is returned by WaitGate when run closed the gate without
// opening it: it failed or was killed before the spec existed, and its
// rollback (or gc) removes the pod. The supervisor has nothing to do.
var ErrGateClosed = errors.New("run closed the start gate: nothing to supervise")

// WaitGate waits at the gate named by GateEnv, if any. It returns nil once
// the gate opens (or without a gate), ErrGateClosed if it closes first.
func WaitGate() error {
	v, ok := os.LookupEnv(GateEnv)
	if !ok {
		return nil
	}
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return fmt.Errorf("bad %s=%q: want a descriptor number above 2", GateEnv, v)
	}
	f := os.NewFile(uintptr(fd), "gate")
	defer f.Close()
	var b [1]byte
	n, err := f.Read(b[:])
	switch {
	case n == 1 && b[0] == GateOpen:
		return nil
	case n == 1:
		return fmt.Errorf("start gate: unexpected byte %q", b[0])
	case err == nil || errors.Is(err, io.EOF):
		return ErrGateClosed
	default:
		return fmt.Errorf("start gate: %w", err)
	}
}
