// Package supervisor is the per-pod supervisor: one small, detached process
// per pod that is the parent and subreaper of the pod's processes. It runs
// init containers in order, then the app containers; records exit codes and
// times; restarts per restartPolicy with crash-loop backoff; runs
// postStart/preStop hooks; captures logs; and serves the CLI over a unix
// socket. It links no Kubernetes, YAML, gRPC or image packages.
package supervisor

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/peapod/peapod/namespaces"
	"github.com/peapod/peapod/probes"
	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/spec"
	"github.com/peapod/peapod/runtime/state"
	"golang.org/x/sys/unix"
)

// Runtime starts processes in a pod's namespaces; namespaces/ implements it.
type Runtime interface {
	// StartContainer starts c and returns once its entrypoint was exec'd;
	// its error names the container.
	StartContainer(p *spec.Pod, c *spec.Container, stdio [3]*os.File, beforeRun func(pid int) error) (int, error)
	// StartReaper starts the PID-1 reaper of a shared PID namespace.
	StartReaper() (int, error)
	// ExecProfile makes what every exec into c's instance whose main
	// process is target shares (its user resolved in the container).
	ExecProfile(target int, c *spec.Container) (namespaces.ExecProfile, error)
	// ExecCommand prepares argv to run inside every namespace of the
	// container whose profile is p.
	ExecCommand(p namespaces.ExecProfile, argv []string, stdout, stderr *os.File) *exec.Cmd
}

// Cgroups is the part of the cgroup driver the supervisor needs.
type Cgroups interface {
	// Join moves pid into the cgroup at path.
	Join(path string, pid int) error
	// Kill SIGKILLs every process in the cgroup at path.
	Kill(path string) error
}

// Supervisor supervises one pod.
type Supervisor struct {
	// pod is the spec, loaded once.
	pod *spec.Pod
	// rt and cg are the kernel-facing dependencies.
	rt Runtime
	cg Cgroups
	// reap owns every child.
	reap *reaper
	// now is the clock (tests fake it).
	now func() time.Time
	// backoff is the crash-loop backoff of every container of the pod.
	backoff *probes.Backoff
	// prober runs the probes (nil until Run); proberStopped ends watchProbes.
	prober        *probes.Manager
	proberStopped chan struct{}
	// remote runs the HTTP and gRPC probes in peapod-prober (nil when the
	// pod has none); set before Run starts the workers.
	remote *probes.RemoteProber

	// mu guards everything below.
	mu sync.Mutex
	// status is written to layout.Run.Status on every change.
	status state.Status
	// events is written to layout.Run.Events on every change.
	events state.Events
	// inits and apps are the containers, in spec order.
	inits, apps []*container
	// done is closed once the pod has nothing left to run.
	done chan struct{}
	// doneOnce guards close(done).
	doneOnce sync.Once
	// criMu serialises the CRI mode's create, start and remove of
	// containers (crimode.go).
	criMu sync.Mutex
	// serving counts socket connections being answered; Run waits for
	// them so the answer to a stop is sent before the process exits.
	serving sync.WaitGroup
}

// container is the supervisor's handle on one container.
type container struct {
	// spec is the container's spec.
	spec *spec.Container
	// st points into Supervisor.status.
	st func() *state.ContainerStatus
	// isInit marks init containers.
	isInit bool
	// proc is the running instance's main process (zero when none).
	proc state.Proc
	// exited is closed when the running instance has been reaped.
	exited chan struct{}
	// killedByProbe makes OnFailure restart even on exit 0.
	killedByProbe bool
	// backoffKey is the container's key in Supervisor.backoff.
	backoffKey string
	// timer is the pending restart, if any.
	timer *time.Timer
	// log is the running instance's log writer.
	log *criLog
	// adopted marks a running instance taken over from a lost supervisor:
	// not our child, so its exit code cannot be known (adopt.go).
	adopted bool
	// oomBase is the cgroup's OOM kill count when the instance started.
	oomBase int64
	// hub is the running instance's attach point (attach.go).
	hub *attachHub
	// exec is the running instance's exec profile (zero until made, or
	// when making it failed: execErr says why).
	exec    namespaces.ExecProfile
	execErr error
}

// New loads the spec from runDir and prepares a supervisor.
func New(runDir string, rt Runtime, cg Cgroups) (*Supervisor, error) {
	p, err := spec.Load(layout.Run(runDir).Spec())
	if err != nil {
		return nil, err
	}
	return NewFromSpec(p, rt, cg), nil
}

// NewFromSpec prepares a supervisor of the pod p, a spec its caller
// loaded already (the supervisor's main needs it first for the cgroup
// driver: decoding it once saves a decode per start and a second copy
// held for the pod's life).
func NewFromSpec(p *spec.Pod, rt Runtime, cg Cgroups) *Supervisor {
	s := &Supervisor{pod: p, rt: rt, cg: cg, now: time.Now, done: make(chan struct{}), proberStopped: make(chan struct{})}
	s.backoff = probes.NewBackoff(seconds(p.BackoffInitialSeconds), seconds(p.BackoffMaxSeconds), nil)
	s.status = state.Status{Version: state.Version, Supervisor: state.Self(), Phase: state.PodPending}
	s.events.Version = state.Version
	for i := range p.InitContainers {
		i := i
		s.status.InitContainers = append(s.status.InitContainers, newStatus(&p.InitContainers[i]))
		s.inits = append(s.inits, &container{spec: &p.InitContainers[i], isInit: true,
			st: func() *state.ContainerStatus { return &s.status.InitContainers[i] }, backoffKey: backoffKey(p, &p.InitContainers[i])})
	}
	for i := range p.Containers {
		i := i
		s.status.Containers = append(s.status.Containers, newStatus(&p.Containers[i]))
		s.apps = append(s.apps, &container{spec: &p.Containers[i],
			st: func() *state.ContainerStatus { return &s.status.Containers[i] }, backoffKey: backoffKey(p, &p.Containers[i])})
	}
	return s
}

// seconds converts a spec's fractional seconds (0 = the kubelet default).
func seconds(v float64) time.Duration { return spec.FloatSeconds(v) }

// backoffKey is the kubelet's stable backoff key; the spec cannot change
// under a supervisor, so the container id stands in for the spec hash.
func backoffKey(p *spec.Pod, c *spec.Container) string {
	return probes.BackoffKey(p, c.Name, c.ID)
}

func newStatus(c *spec.Container) state.ContainerStatus {
	return state.ContainerStatus{Name: c.Name, ID: c.ID, Image: c.Image, ImageID: c.ImageID, State: state.StateWaiting, Reason: "ContainerCreating"}
}

// Run starts the pod and supervises it until it is final. started is
// called once: with nil when every app container's entrypoint has been
// exec'd, or with the error that kept a container from starting.
func (s *Supervisor) Run(started func(error)) error {
	return s.run(started, nil)
}

// run is Run, or Adopt when prev (the lost supervisor's last status) is set.
func (s *Supervisor) run(started func(error), prev *state.Status) error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("failed to become child subreaper: %w", err)
	}
	if s.reap == nil {
		// Tests share one: reapers in one process would steal each
		// other's children with their wait4(-1).
		s.reap = newReaper()
	}
	ln, err := s.listen()
	if err != nil {
		return err
	}
	defer ln.Close()
	prober := s.newProber(prev != nil)
	s.updateKeepingPhase(func() {
		if prev != nil {
			s.restoreLocked(prev)
		} else {
			now := s.now()
			s.status.StartTime = &now
		}
		s.prober = prober
	})
	go s.watchProbes(prober, s.proberStopped)

	switch {
	case prev != nil:
		started(s.adoptAll())
	case s.pod.ShareProcessNamespace:
		if err := s.startReaper(); err != nil {
			started(err)
			s.finish()
			return err
		}
		fallthrough
	default:
		started(s.startAll(false))
	}
	<-s.done
	ln.Close()
	answered := make(chan struct{})
	go func() { s.serving.Wait(); close(answered) }()
	select {
	case <-answered:
	case <-time.After(5 * time.Second):
		// A client that connected and never asked must not keep a
		// finished pod's supervisor alive.
	}
	return nil
}

// startAll runs init containers to completion, then starts app containers.
// adopt resumes an adopted pod that was not initialized yet: completed init
// containers are skipped and a running one is adopted.
func (s *Supervisor) startAll(adopt bool) error {
	for _, c := range s.inits {
		first := adopt
		if adopt {
			s.mu.Lock()
			st := *c.st()
			s.mu.Unlock()
			if st.State == state.StateTerminated && st.ExitCode == 0 {
				continue
			}
			adopt = false
		}
		for {
			var err error
			if first && s.wasRunning(c) {
				s.adoptInstance(c)
			} else {
				err = s.startInstance(c)
			}
			first = false
			if err == nil {
				<-c.exited
			}
			s.mu.Lock()
			st := *c.st()
			stopping := s.status.Stopping
			s.mu.Unlock()
			if stopping {
				return fmt.Errorf("pod stopped before init container %q completed", c.spec.Name)
			}
			if err == nil && st.State == state.StateTerminated && st.ExitCode == 0 {
				break
			}
			if s.pod.RestartPolicy == spec.RestartNever {
				s.update(func() {})
				s.maybeFinish()
				if err != nil {
					return err
				}
				return fmt.Errorf("init container %q failed with exit code %d", c.spec.Name, st.ExitCode)
			}
			if !s.waitBackoff(c) {
				return fmt.Errorf("pod stopped before init container %q completed", c.spec.Name)
			}
		}
	}
	s.update(func() { s.status.Initialized = true })
	var firstErr error
	for _, c := range s.apps {
		if err := s.startInstance(c); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			s.scheduleRestart(c)
		}
	}
	return firstErr
}

// waitBackoff sleeps through c's crash-loop backoff (showing
// CrashLoopBackOff), returning false if the pod is stopped meanwhile.
func (s *Supervisor) waitBackoff(c *container) bool {
	var finished time.Time
	var delay time.Duration
	s.update(func() { finished, delay = s.enterBackoffLocked(c) })
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-s.done:
			return false
		}
	}
	s.backoff.Started(c.backoffKey, finished)
	return true
}

// startInstance starts one instance of c: its log and stdio, the process
// in its cgroup (the init stage), the running status, the postStart hook.
func (s *Supervisor) startInstance(c *container) error {
	restarts, err := s.nextRestartCount(c)
	if err != nil {
		return err
	}
	startStep(c, firstStartStep)
	logPath := s.instanceLog(c, restarts)
	lg, pipes, err := s.openInstanceIO(c, logPath, restarts)
	if err != nil {
		return s.failStart(c, reasonCreateContainerError, fmt.Errorf("failed to start container %q: %w", c.spec.Name, err))
	}
	startStep(c, "open io")
	oomBase := s.oomKills(c)
	pid, wait, err := s.spawn(c, lg, pipes)
	if err != nil {
		// The runtime's error names the container already.
		return s.failStart(c, reasonRunContainerError, err)
	}
	startStep(c, "spawn")
	prof, profErr := s.makeExecProfile(c, pid)
	startStep(c, "exec profile")
	var exited chan struct{}
	s.update(func() {
		c.exec, c.execErr = prof, profErr
		exited = s.recordStartedLocked(c, pid, restarts, logPath, lg, oomBase)
		c.hub = pipes.hub
	})
	startStep(c, "record started")
	if !s.pod.CRI {
		// The kubelet owns a CRI container's log files.
		pruneLogs(c.spec.LogPath, restarts)
	}
	go s.watch(c, wait, exited, pipes)
	startStep(c, "watch")
	s.runPostStart(c)
	startStep(c, "post start")
	return nil
}

// nextRestartCount is the restart count c's next instance will have (the
// kubelet's count of started instances but the first); it fails once the
// pod is stopping.
func (s *Supervisor) nextRestartCount(c *container) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status.Stopping {
		return 0, fmt.Errorf("pod is stopping")
	}
	st := c.st()
	restarts := st.RestartCount
	if st.State == state.StateTerminated || (st.State == state.StateWaiting && st.Last != nil) {
		restarts++
	}
	return restarts, nil
}

// openInstanceIO opens the log of c's instance number restarts and its
// stdio FIFOs.
func (s *Supervisor) openInstanceIO(c *container, logPath string, restarts int) (*criLog, *stdio, error) {
	lg, err := openCRILog(logPath)
	if err != nil {
		return nil, nil, err
	}
	lg.onLoss = func(loss logLoss, recovered bool) { s.logLoss(c, loss, recovered) }
	if s.pod.CRI {
		lg.maxSize = 0 // the kubelet rotates, then asks for a reopen
	}
	pipes, err := newInstanceStdio(c.spec, fifoPaths(s.pod.RunDir, c.spec.ID, restarts))
	if err != nil {
		lg.close()
		return nil, nil, err
	}
	return lg, pipes, nil
}

// spawn starts c's process in its cgroup and copies its output into lg;
// on failure it releases lg and pipes and empties the cgroup.
func (s *Supervisor) spawn(c *container, lg *criLog, pipes *stdio) (int, <-chan unix.WaitStatus, error) {
	pid, wait, err := s.reap.start(func() (int, error) {
		join := func(pid int) error {
			if err := s.cg.Join(c.spec.Cgroup, pid); err != nil {
				return err
			}
			return setOOMScoreAdj(c.spec, pid)
		}
		if c.spec.TTY() {
			return s.startTerminal(c, pipes, join)
		}
		return s.rt.StartContainer(s.pod, c.spec, pipes.child(), join)
	})
	pipes.closeChild()
	if err != nil {
		pipes.closeParent()
		pipes.remove()
		pipes.hub.end()
		lg.close()
		s.cg.Kill(c.spec.Cgroup)
		return 0, nil, err
	}
	pipes.copyOutput(lg)
	return pid, wait, nil
}

// recordStartedLocked records c's new instance as running (the previous
// one becomes Last; oomBase is its cgroup's OOM kill count before the
// start) and returns the channel watch closes when it exits.
func (s *Supervisor) recordStartedLocked(c *container, pid, restarts int, logPath string, lg *criLog, oomBase int64) chan struct{} {
	prev := *c.st()
	st := c.st()
	if prev.State == state.StateTerminated || (prev.State == state.StateWaiting && prev.Last != nil) {
		st.RestartCount = restarts
		if prev.State == state.StateTerminated {
			st.Last = terminatedOf(prev)
		}
	}
	st.State, st.Reason, st.Message = state.StateRunning, "", ""
	st.StartedAt, st.FinishedAt = s.now(), time.Time{}
	st.ExitCode, st.Signal = 0, 0
	st.Proc = state.ProcOf(pid)
	st.LogPath = logPath
	st.Probes = nil
	c.proc, c.log, c.killedByProbe, c.adopted, c.oomBase = st.Proc, lg, false, false, oomBase
	c.exited = make(chan struct{})
	if !c.isInit && s.prober != nil {
		// A no-op after the first instance: workers outlive restarts and
		// notice the new instance themselves.
		s.prober.AddContainer(c.spec)
	}
	s.eventLocked("Normal", c, "Started", "Started container "+c.spec.Name)
	return c.exited
}

// runPostStart runs c's postStart hook, if any; a failed hook kills the
// instance (the restart policy then applies), as the kubelet's.
func (s *Supervisor) runPostStart(c *container) {
	if len(c.spec.PostStart) == 0 {
		return
	}
	out, code, err := s.execHook(c, c.spec.PostStart, 0)
	if err == nil && code == 0 {
		return
	}
	msg := fmt.Sprintf("PostStartHook failed: exit code %d: %s", code, out)
	if err != nil {
		msg = "PostStartHook failed: " + err.Error()
	}
	s.addEvent("Warning", c, "FailedPostStartHook", msg)
	s.kill(c, 0, false)
}

// failStart records a container that could not be created or started;
// err names the container (the caller adds only what the callee does not
// know, so a message never says it twice).
func (s *Supervisor) failStart(c *container, reason string, err error) error {
	s.update(func() {
		st := c.st()
		if st.State == state.StateTerminated {
			st.Last = terminatedOf(*st)
		}
		st.State, st.Reason, st.Message = state.StateWaiting, reason, err.Error()
		s.eventLocked("Warning", c, "Failed", "Error: "+err.Error())
	})
	return err
}

// startFailed reports a container waiting because its last start failed.
func startFailed(st *state.ContainerStatus) bool {
	return st.State == state.StateWaiting && (st.Reason == reasonCreateContainerError || st.Reason == reasonRunContainerError)
}

// Reasons of a failed start, as the kubelet's.
const (
	reasonCreateContainerError = "CreateContainerError"
	reasonRunContainerError    = "RunContainerError"
)

func terminatedOf(st state.ContainerStatus) *state.Terminated {
	return &state.Terminated{ExitCode: st.ExitCode, Signal: st.Signal, Reason: st.Reason,
		Message: st.Message, StartedAt: st.StartedAt, FinishedAt: st.FinishedAt}
}

// outputDrainMax bounds how long an exit waits for the instance's output
// to reach its log.
const outputDrainMax = 2 * time.Second

// watch waits for an instance to exit, records it and applies the policy.
func (s *Supervisor) watch(c *container, wait <-chan unix.WaitStatus, exited chan struct{}, pipes *stdio) {
	ws := <-wait
	// Leftovers (a daemon that double-forked, siblings in a shared PID
	// namespace) die with the instance: the cgroup is the container.
	s.cg.Kill(c.spec.Cgroup)
	finished := s.now()
	if pipes != nil {
		// The output is in the log before the exit is recorded: whoever
		// saw the container terminated (peapod logs after the pod
		// Succeeded, a kubelet after ContainerStatus) reads all of it.
		pipes.waitOutput(outputDrainMax)
	}
	s.dropExecProfile(c)
	var restart bool
	var lg *criLog
	s.update(func() {
		restart = s.recordExitLocked(c, ws, finished)
		c.exec, c.execErr = namespaces.ExecProfile{}, nil
		lg = c.log
	})
	// The pipes reach EOF once every writer is gone; the log closes after.
	// (This instance's log: a restart may have set c.log by then.)
	go func() {
		if pipes != nil {
			pipes.waitCopied()
		}
		lg.close()
	}()
	close(exited)
	if restart {
		s.scheduleRestart(c)
		return
	}
	s.maybeFinish()
}

// recordExitLocked records the exit of c's instance at finished (an
// adopted one's status is unknowable) and reports whether the restart
// policy restarts it.
func (s *Supervisor) recordExitLocked(c *container, ws unix.WaitStatus, finished time.Time) bool {
	code, sig := exitCode(ws)
	st := c.st()
	st.State, st.ExitCode, st.Signal = state.StateTerminated, code, sig
	st.Reason = "Completed"
	if code != 0 {
		st.Reason = "Error"
	}
	if s.oomKilledSince(c, c.oomBase) {
		st.Reason = reasonOOMKilled
	}
	st.Message = ""
	if c.adopted {
		code = lostExitCode
		st.ExitCode, st.Signal, st.Reason, st.Message = code, 0, reasonLost, messageLost
	}
	st.FinishedAt = finished
	st.Proc = state.Proc{}
	c.proc = state.Proc{}
	// In CRI mode the kubelet decides what runs again.
	return !c.isInit && !s.pod.CRI && !s.status.Stopping && probes.ShouldRestart(s.pod.RestartPolicy, code, c.killedByProbe)
}

// scheduleRestart restarts c at exactly FinishedAt + backoff (the kubelet
// gets there on its next pod sync, up to 15 s later).
func (s *Supervisor) scheduleRestart(c *container) {
	s.update(func() {
		if s.status.Stopping {
			return
		}
		finished, delay := s.enterBackoffLocked(c)
		c.timer = time.AfterFunc(delay, func() {
			s.backoff.Started(c.backoffKey, finished)
			if err := s.startInstance(c); err != nil {
				s.scheduleRestart(c)
			}
		})
	})
}

// enterBackoffLocked returns the exit time c's backoff counts from and how
// long to wait from now; when that is not zero it shows CrashLoopBackOff
// and raises a BackOff event, as the kubelet does for a skipped start. A
// container that failed to start (it did not exit) counts from now. It is
// a change for update.
func (s *Supervisor) enterBackoffLocked(c *container) (time.Time, time.Duration) {
	st := c.st()
	now := s.now()
	finished := st.FinishedAt
	if st.State != state.StateTerminated || finished.IsZero() {
		finished = now
	}
	delay := s.backoff.RestartAt(c.backoffKey, finished).Sub(now)
	if delay <= 0 {
		return finished, 0
	}
	if st.State == state.StateTerminated {
		st.Last = terminatedOf(*st)
	}
	// A container that could not even start keeps showing why
	// (CreateContainerError/RunContainerError with the error), as the
	// kubelet reports a failed start; one that ran and exited shows
	// CrashLoopBackOff. Both wait out the same backoff.
	if !startFailed(st) {
		msg := probes.CrashLoopBackOffMessage(s.backoff.Delay(c.backoffKey, finished), c.spec.Name, s.pod)
		st.State, st.Reason, st.Message = state.StateWaiting, probes.ReasonCrashLoopBackOff, msg
	}
	ev := probes.BackOffEvent(c.spec.Name, s.pod)
	s.eventLocked(ev.Type, c, ev.Reason, ev.Message)
	return finished, delay
}

// kill stops c's running instance as the kubelet's killContainer: the
// preStop hook (when grace > 0, bounded by it), the stop signal, the rest
// of the grace period, then SIGKILL to the whole cgroup. A probe kill
// (floor) waits at least probes.MinimumGracePeriodSeconds after the hook.
func (s *Supervisor) kill(c *container, grace time.Duration, floor bool) {
	s.mu.Lock()
	proc, exited := c.proc, c.exited
	s.mu.Unlock()
	if proc.PID == 0 || exited == nil {
		return
	}
	start := time.Now()
	if len(c.spec.PreStop) > 0 && grace > 0 {
		if out, code, err := s.execHook(c, c.spec.PreStop, grace); err != nil || code != 0 {
			s.addEvent("Warning", c, "FailedPreStopHook", fmt.Sprintf("PreStopHook failed: exit code %d: %s %v", code, out, err))
		}
	}
	wait := grace - time.Since(start)
	if floor {
		wait = spec.Seconds(probes.GraceAfterPreStop(int64(grace/time.Second), time.Since(start)))
	}
	sig := syscall.SIGTERM
	if c.spec.StopSignal > 0 {
		sig = syscall.Signal(c.spec.StopSignal)
	}
	if wait > 0 && signalUntilCaught(proc, sig, exited, wait) {
		return
	}
	// The grace period is over (or there was none): SIGKILL the whole
	// cgroup, so processes that left the main process's tree die too.
	proc.Signal(syscall.SIGKILL)
	s.cg.Kill(c.spec.Cgroup)
	<-exited
}

// Stop is final: restarts cease, every container is killed with the grace
// period, the reaper goes, and the supervisor finishes.
func (s *Supervisor) Stop(grace time.Duration) {
	// Batching wake-ups is for a pod that runs: stopping polls the cgroups
	// in short sleeps (v1 has no event for frozen or empty), which the
	// timer slack would stretch to TimerSlack each.
	if err := SetTimerSlack(namespaces.WorkloadTimerSlack); err != nil {
		fmt.Fprintln(os.Stderr, "peapod-supervisor:", err)
	}
	all := append(append([]*container{}, s.inits...), s.apps...)
	var prober *probes.Manager
	s.updateKeepingPhase(func() {
		s.status.Stopping = true
		for _, c := range all {
			if c.timer != nil {
				c.timer.Stop()
			}
			if c.proc.PID != 0 {
				s.eventLocked("Normal", c, "Killing", "Stopping container "+c.spec.Name)
			}
		}
		prober = s.prober
	})
	if prober != nil {
		// syncTerminatingPod: a shutting-down app is not killed for its
		// health, while readiness goes on until the containers are gone.
		prober.StopLivenessAndStartup()
	}
	var wg sync.WaitGroup
	for _, c := range all {
		wg.Add(1)
		go func(c *container) {
			defer wg.Done()
			s.kill(c, grace, false)
		}(c)
	}
	wg.Wait()
	s.finish()
}

// maybeFinish finishes the pod when nothing runs and nothing will restart.
func (s *Supervisor) maybeFinish() {
	s.mu.Lock()
	phase := s.status.Phase
	s.mu.Unlock()
	if phase.Terminal() {
		s.finish()
	}
}

// finish kills the reaper, writes the final status and releases Run.
func (s *Supervisor) finish() {
	s.doneOnce.Do(func() {
		s.mu.Lock()
		prober := s.prober
		s.mu.Unlock()
		if prober != nil {
			// Not under mu: the workers read status under it while they end.
			prober.Stop()
		}
		if s.remote != nil {
			// Its stdin closes, so the helper exits and the reaper reaps it.
			s.remote.Close()
		}
		close(s.proberStopped)
		s.update(func() {
			s.status.Reaper.Signal(syscall.SIGKILL)
			s.status.Final = true
		})
		close(s.done)
	})
}

// startReaper starts the shared PID namespace's PID 1 and points every
// container's pid namespace at it.
func (s *Supervisor) startReaper() error {
	pid, wait, err := s.reap.start(s.rt.StartReaper)
	if err != nil {
		return fmt.Errorf("failed to start the pod's reaper: %w", err)
	}
	go func() { <-wait }()
	s.update(func() { s.status.Reaper = state.ProcOf(pid) })
	path := fmt.Sprintf("/proc/%d/ns/pid", pid)
	for _, c := range append(append([]*container{}, s.inits...), s.apps...) {
		setPIDNamespace(c.spec, path)
	}
	return nil
}
