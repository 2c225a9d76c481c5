//go:build faultinject

package supervisor

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// faultEnv selects the fault of a faultinject build: "trace" prints every
// step of every container start to stderr (the supervisor's log) as
// "fault-step: start CONTAINER K STEP"; "start:CONTAINER:N:K:kill" also
// SIGKILLs the supervisor right after step K (1-based) of the N-th start
// (1-based; a restart is a start) of CONTAINER. The CLI of a faultinject
// build passes it on to the supervisor it spawns (never to an adopting
// one).
const faultEnv = "PEAPOD_SUPERVISOR_FAULT"

func init() {
	v := os.Getenv(faultEnv)
	if v == "" {
		return
	}
	var (
		ctr     string
		n, k    int
		killing bool
	)
	if v != "trace" {
		f := strings.Split(v, ":")
		var errN, errK error
		if len(f) == 5 {
			n, errN = strconv.Atoi(f[2])
			k, errK = strconv.Atoi(f[3])
		}
		if len(f) != 5 || f[0] != "start" || f[4] != "kill" || errN != nil || errK != nil || n < 1 || k < 1 {
			fmt.Fprintf(os.Stderr, "peapod-supervisor: %s=%q: want trace or start:CONTAINER:N:K:kill\n", faultEnv, v)
			os.Exit(2)
		}
		ctr, killing = f[1], true
	}
	var mu sync.Mutex
	starts := map[string]int{} // per container: the start under way
	step := map[string]int{}   // per container: steps done in it
	faultAfter = func(container, name string) {
		mu.Lock()
		defer mu.Unlock()
		if name == firstStartStep {
			starts[container]++
			step[container] = 0
		}
		step[container]++
		fmt.Fprintf(os.Stderr, "fault-step: start %s %d %s\n", container, step[container], name)
		if killing && container == ctr && starts[container] == n && step[container] == k {
			fmt.Fprintf(os.Stderr, "fault: killing the supervisor (pid %d) after step %d (%s) of start %d of %s\n", os.Getpid(), k, name, n, container)
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
}
