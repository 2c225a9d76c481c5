// Command peapod-supervisor is peapod's lean per-pod binary. It links no
// Kubernetes, YAML, gRPC, Prometheus or image packages, and no cgo (a test
// enforces it): one copy runs for every pod, every linked package's init()
// runs in every copy, and the kernel maps a binary's text and rodata in
// whole large folios, so a pod's resident memory grows with this binary's
// size. The init and exec stages live in peapod-init for that reason.
// Modes, by argv[1]:
//
//	run RUNDIR   supervise the pod whose spec is RUNDIR/spec.json
//	adopt RUNDIR replace the pod's lost supervisor, adopting its containers
//	reaper       PID 1 of a shared pod PID namespace (internal)
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"

	"github.com/peapod/peapod/cgroups"
	"github.com/peapod/peapod/namespaces"
	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/spec"
	"github.com/peapod/peapod/runtime/supervisor"

	"github.com/peapod/peapod/internal/ktrace"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: peapod-supervisor run RUNDIR (started by peapod, not by hand)")
		os.Exit(2)
	}
	switch os.Args[1] {
	case namespaces.HelperReaperArg:
		namespaces.ReaperMain()
	case "run", "adopt":
		if len(os.Args) != 3 {
			fmt.Fprintf(os.Stderr, "usage: peapod-supervisor %s RUNDIR\n", os.Args[1])
			os.Exit(2)
		}
		if err := run(os.Args[2], os.Args[1] == "adopt"); err != nil {
			fmt.Fprintln(os.Stderr, "peapod-supervisor:", err)
			os.Exit(1)
		}
	default:
		fmt.Fprintf(os.Stderr, "peapod-supervisor: unknown mode %q\n", os.Args[1])
		os.Exit(2)
	}
}

// steadyGCPercent is GOGC once the pod runs: 25 puts the minimum heap goal
// at 1 MiB (4 MiB × 25 %); the live heap is ~0.35 MiB.
const steadyGCPercent = 25

// Report is what the supervisor writes on fd 3 once the pod has started.
type Report = supervisor.Report

func run(runDir string, adopt bool) error {
	report := os.NewFile(3, "report")
	started := func(err error) {
		if report == nil {
			return
		}
		r := Report{Version: supervisor.ProtocolVersion}
		if err != nil {
			r.Error = err.Error()
		}
		// Start-up is over: from now on the supervisor's timers may be
		// batched. Set before the report, so whoever sees the pod started
		// sees the slack set.
		if err == nil {
			if serr := supervisor.SetTimerSlack(supervisor.TimerSlack); serr != nil {
				fmt.Fprintln(os.Stderr, "peapod-supervisor:", serr)
			}
		}
		json.NewEncoder(report).Encode(&r)
		report.Close()
		report = nil
		ktrace.Detach() // --debug: later lines go to the supervisor log, not the CLI's stderr
		settle()
	}
	self, err := os.Executable()
	if err != nil {
		started(err)
		return fmt.Errorf("failed to find own executable: %w", err)
	}
	helper := os.Getenv("PEAPOD_INIT")
	if helper == "" {
		helper = filepath.Join(filepath.Dir(self), "peapod-init")
	}
	// Before the spec: run spawns the supervisor first and writes the spec
	// while this process starts (see supervisor.WaitGate).
	if _, gated := os.LookupEnv(supervisor.GateEnv); gated {
		warmUp()
	}
	if err := supervisor.WaitGate(); err != nil {
		if errors.Is(err, supervisor.ErrGateClosed) {
			os.Exit(0)
		}
		started(err)
		return err
	}
	p, err := spec.Load(layout.Run(runDir).Spec())
	if err != nil {
		started(err)
		return err
	}
	cg, err := cgroups.New(p.CgroupDriver, "/sys/fs/cgroup")
	if err != nil {
		started(err)
		return err
	}
	s := supervisor.NewFromSpec(p, kernel{helper: helper, self: self, cg: cg}, cg)
	// SIGTERM to the supervisor (a host shutdown) stops the pod gracefully.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		s.Stop(p.TerminationGracePeriod())
	}()
	if adopt {
		return s.Adopt(started)
	}
	return s.Run(started)
}

// warmUp builds encoding/json's encoders for the spec's types while the
// supervisor waits at its gate. encoding/json builds them, and the field
// lists decoding uses, for a type's whole tree on its first use, encoding
// or decoding: ~0.7 ms of reflection for the OCI types, paid here while
// run still makes the network instead of before the pod's first
// container; spec.Load then takes ~0.1 ms. The same tree is built by the
// first decoding anyway, so it costs no memory of its own.
func warmUp() {
	_, _ = json.Marshal(&spec.Pod{})
}

// settle returns start-up memory to the kernel once the pod runs.
// Start-up garbage (decoding the spec, starting containers) would otherwise
// stay resident until the heap reaches GC's 4 MiB minimum, which an idle
// supervisor never does.
func settle() {
	debug.FreeOSMemory()
	// From here on a probe's garbage is collected at a 1 MiB heap instead of
	// 4 MiB: with probes a supervisor allocates a little every period, and
	// its heap would otherwise grow to the minimum before the first cycle.
	debug.SetGCPercent(steadyGCPercent)
}

// kernel implements supervisor.Runtime (and TerminalRuntime) with the
// namespaces package.
type kernel struct {
	// helper is peapod-init, executed for the init and exec stages.
	helper string
	// self is this binary, re-executed as the reaper.
	self string
	// cg finds the cgroup files an exec joins.
	cg cgroups.Driver
}

// StartContainer clones c's init stage into its cgroup where the driver
// can (the unified hierarchy), so that beforeRun's join has nothing to move.
func (k kernel) StartContainer(p *spec.Pod, c *spec.Container, stdio [3]*os.File, beforeRun func(int) error) (int, error) {
	dir, err := cgroups.CloneTarget(k.cg, c.Cgroup)
	if err != nil {
		return 0, err
	}
	if dir != nil {
		defer dir.Close()
	}
	return namespaces.StartContainerIn(k.helper, p, c, stdio, dir, beforeRun)
}

func (k kernel) StartTerminalContainer(p *spec.Pod, c *spec.Container, beforeRun func(int) error) (int, *os.File, error) {
	dir, err := cgroups.CloneTarget(k.cg, c.Cgroup)
	if err != nil {
		return 0, nil, err
	}
	if dir != nil {
		defer dir.Close()
	}
	return namespaces.StartTerminalContainerIn(k.helper, p, c, dir, beforeRun)
}

func (k kernel) StartReaper() (int, error) { return namespaces.StartReaper(k.self) }

func (k kernel) ExecProfile(target int, c *spec.Container) (namespaces.ExecProfile, error) {
	return namespaces.NewExecProfile(supervisor.ExecOptions(k.helper, target, k.cg.ProcsFiles(c.Cgroup), c, nil))
}

func (k kernel) ExecCommand(p namespaces.ExecProfile, argv []string, stdout, stderr *os.File) *exec.Cmd {
	return p.Command(namespaces.ExecRequest{Helper: k.helper, Args: argv, Stdout: stdout, Stderr: stderr})
}
