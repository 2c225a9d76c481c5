//go:build faultinject

package pod

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// faultEnv selects the fault of a faultinject build: "OP:K:MODE" fails
// (MODE error) or SIGKILLs this process (MODE kill) right after the K-th
// step (1-based, in trace order) of operation OP (run or rm).
const faultEnv = "PEAPOD_FAULT"

func init() {
	v := os.Getenv(faultEnv)
	if v == "" {
		return
	}
	f := strings.Split(v, ":")
	k, err := strconv.Atoi(f[min(1, len(f)-1)])
	if len(f) != 3 || err != nil || k < 1 || (f[2] != "error" && f[2] != "kill") {
		fmt.Fprintf(os.Stderr, "peapod: %s=%q: want OP:K:error or OP:K:kill\n", faultEnv, v)
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
		if mode == "kill" {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
		return fmt.Errorf("injected fault after step %d (%s) of %s", k, step, op)
	}
}
