//go:build faultinject

package pod

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// faultEnv selects the fault of a faultinject build: "OP:K:MODE" fails
// (MODE error), SIGKILLs this process (MODE kill) or stops it with SIGSTOP
// until a SIGCONT (MODE stop) right after the K-th step (1-based, in trace
// order) of operation OP (run or rm).
const faultEnv = "PEAPOD_FAULT"

// supervisorFault is passed on to the supervisor a run spawns.
const supervisorFault = "PEAPOD_SUPERVISOR_FAULT"

func init() {
	if v, ok := os.LookupEnv(supervisorFault); ok {
		supervisorFaultEnv = []string{supervisorFault + "=" + v}
	}
	v := os.Getenv(faultEnv)
	if v == "" {
		return
	}
	f := strings.Split(v, ":")
	k, err := strconv.Atoi(f[min(1, len(f)-1)])
	if len(f) != 3 || err != nil || k < 1 || (f[2] != "error" && f[2] != "kill" && f[2] != "stop") {
		fmt.Fprintf(os.Stderr, "peapod: %s=%q: want OP:K:error, OP:K:kill or OP:K:stop\n", faultEnv, v)
		os.Exit(2)
	}
	op, mode := f[0], f[2]
	var mu sync.Mutex
	n := 0
	faultAfter = func(stepOp, step string) error {
		if stepOp != op {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		n++
		if n != k {
			return nil
		}
		switch mode {
		case "kill":
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		case "stop":
			// Sent to this thread, the stop takes effect before tgkill
			// returns; sent to the process, another thread might take it
			// while this one goes on (and, say, unlocks the pod's name).
			runtime.LockOSThread()
			syscall.Tgkill(os.Getpid(), syscall.Gettid(), syscall.SIGSTOP)
			runtime.UnlockOSThread()
			return nil
		}
		return fmt.Errorf("injected fault after step %d (%s) of %s", k, step, op)
	}
}
