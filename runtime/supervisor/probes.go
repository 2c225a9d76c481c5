package supervisor

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/peapod/peapod/probes"
	"github.com/peapod/peapod/runtime/spec"
	"github.com/peapod/peapod/runtime/state"
)

// ProberName is the probe helper's file name; the supervisor looks for it
// beside its own binary unless ProberEnv names it.
const (
	ProberName = "peapod-prober"
	ProberEnv  = "PEAPOD_PROBER"
)

// newProber builds the pod's probe manager. Its workers read status
// through probeStatus and report through probeEvent; the supervisor
// consumes the result changes in watchProbes. A pod with an HTTP or gRPC
// probe gets a RemoteProber, which starts peapod-prober on the first probe
// that needs it.
func (s *Supervisor) newProber(adopted bool) *probes.Manager {
	cfg := probes.Config{
		Pod:        s.pod,
		Status:     probeStatus{s},
		Events:     probes.EventFunc(s.probeEvent),
		ExecRunner: s.execRunner,
		// With the supervisors' timer slack, network probes on a shared
		// grid cost one wake-up per period for the whole machine.
		AlignNetworkProbes: true,
		Adopted:            adopted,
	}
	if needsProber(s.pod) {
		s.remote = probes.NewRemoteProber(s.startProber)
		cfg.Remote = s.remote
	}
	return probes.NewManager(cfg)
}

// needsProber reports whether any container declares an HTTP or gRPC
// probe, the kinds that may need the helper process: HTTPS and gRPC always,
// plain HTTP only when a redirect leads to https (plain HTTP itself runs in
// the supervisor). The RemoteProber starts the process on the first probe
// that needs it, so an http-only pod never runs one.
func needsProber(p *spec.Pod) bool {
	for _, c := range p.Containers {
		for _, pr := range []*spec.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
			if pr != nil && (pr.HTTPGet != nil || pr.GRPC != nil) {
				return true
			}
		}
	}
	return false
}

// proberPath is $PEAPOD_PROBER, else peapod-prober beside this binary.
func proberPath() (string, error) {
	if p := os.Getenv(ProberEnv); p != "" {
		return p, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("failed to find own executable: %w", err)
	}
	return filepath.Join(filepath.Dir(self), ProberName), nil
}

// startProber starts peapod-prober in the supervisor's namespaces (the
// host network, as the kubelet's HTTP and gRPC probes), registered with
// the reaper, its stdin and stdout on two pipes. It exits when its stdin
// closes: on RemoteProber.Close, or when the supervisor dies (the pipes
// are close-on-exec, so no container holds them open).
func (s *Supervisor) startProber() (io.WriteCloser, io.ReadCloser, error) {
	path, err := proberPath()
	if err != nil {
		return nil, nil, err
	}
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("failed to create the prober's request pipe: %w", err)
	}
	resR, resW, err := os.Pipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		return nil, nil, fmt.Errorf("failed to create the prober's response pipe: %w", err)
	}
	// An empty environment but GOMAXPROCS: the node's proxy variables must
	// not reach a probe, and one pod's probes need one P.
	attr := &os.ProcAttr{Env: []string{"GOMAXPROCS=1"}, Files: []*os.File{reqR, resW, os.Stderr}}
	var proc *os.Process
	_, wait, err := s.reap.start(func() (int, error) {
		p, err := os.StartProcess(path, []string{path}, attr)
		if err != nil {
			return 0, err
		}
		proc = p
		return p.Pid, nil
	})
	reqR.Close()
	resW.Close()
	if err != nil {
		reqW.Close()
		resR.Close()
		return nil, nil, fmt.Errorf("failed to start %q: %w", path, err)
	}
	// The client notices the death by EOF; the reaper collects the status
	// (never os.Process.Wait, which would race its wait4(-1)).
	go func() { <-wait }()
	return &proberPipe{File: reqW, proc: proc}, resR, nil
}

// proberPipe is the prober's request pipe; closing it also kills the
// process, in case it is wedged and no longer reads its stdin.
type proberPipe struct {
	// File is the write end of the request pipe.
	*os.File
	// proc is the prober. Go signals it through a pidfd on this kernel, so
	// a kill after the reaper collected it cannot hit a reused pid.
	proc *os.Process
}

// Close closes the pipe and kills the process.
func (p *proberPipe) Close() error {
	err := p.File.Close()
	p.proc.Kill()
	p.proc.Release()
	return err
}

// execRunner is the exec probes' runner for container c.
func (s *Supervisor) execRunner(sc *spec.Container) probes.Runner {
	c := s.app(sc.Name)
	return func(ctx context.Context, argv []string, timeout time.Duration) ([]byte, int, error) {
		return s.execIn(ctx, c, argv, timeout)
	}
}

// app returns the app container named name (nil if none).
func (s *Supervisor) app(name string) *container {
	for _, c := range s.apps {
		if c.spec.Name == name {
			return c
		}
	}
	return nil
}

// instanceID names a container's current (or last) instance for the
// probes: the container id is stable across restarts, the count is not.
func instanceID(st *state.ContainerStatus) string {
	return st.ID + "/" + strconv.Itoa(st.RestartCount)
}

// probeStatus is the probes' StatusSource: the supervisor's own status,
// read under its mutex.
type probeStatus struct {
	// s is the supervisor.
	s *Supervisor
}

// Status implements probes.StatusSource.
func (p probeStatus) Status(name string) (probes.PodStatus, probes.ContainerStatus, bool) {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.app(name)
	if c == nil {
		return probes.PodStatus{}, probes.ContainerStatus{}, false
	}
	pod := probes.PodStatus{Phase: s.status.Phase, IP: s.pod.IP, Terminating: s.status.Stopping}
	return pod, probeContainerStatus(c.st()), true
}

// probeContainerStatus is the probes' view of a container's status.
func probeContainerStatus(st *state.ContainerStatus) probes.ContainerStatus {
	cs := probes.ContainerStatus{StartedAt: st.StartedAt}
	switch {
	case st.State == state.StateRunning:
		cs.State = probes.StateRunning
	case st.State == state.StateTerminated:
		cs.State = probes.StateTerminated
	default:
		cs.State = probes.StateWaiting
	}
	if !st.StartedAt.IsZero() {
		cs.ID = instanceID(st)
	}
	return cs
}

// probeEvent records an Unhealthy or ProbeWarning event. Only events.json
// is rewritten: a probe never writes the status.
func (s *Supervisor) probeEvent(e probes.Event) {
	s.addEvent(e.Type, s.app(e.Container), e.Reason, e.Message)
}

// watchProbes applies the probes' result changes until the manager stops.
func (s *Supervisor) watchProbes(m *probes.Manager, stopped <-chan struct{}) {
	for {
		select {
		case u := <-m.Updates():
			s.probeUpdate(u)
		case <-stopped:
			return
		}
	}
}

// probeUpdate records a published result, recomputes ready/started and the
// pod conditions, and kills the running instance on a liveness or startup
// failure, as the kubelet's next pod sync does.
func (s *Supervisor) probeUpdate(u probes.Update) {
	c := s.app(u.Container)
	if c == nil {
		return
	}
	var kill bool
	s.update(func() {
		st := c.st()
		current := !st.StartedAt.IsZero() && instanceID(st) == u.ContainerID
		if current {
			recordProbeResult(st, u, s.now())
		}
		kill = current && st.State == state.StateRunning && !s.status.Stopping &&
			u.Result == probes.Failure && (u.Type == probes.Liveness || u.Type == probes.Startup)
	})
	if kill {
		go s.probeKill(c, u.Type, u.ContainerID)
	}
}

// recordProbeResult stores a result and, when it changed, its transition time.
func recordProbeResult(st *state.ContainerStatus, u probes.Update, now time.Time) {
	typ, res := u.Type.String(), u.Result.String()
	for i := range st.Probes {
		if st.Probes[i].Type == typ {
			if st.Probes[i].Result != res {
				st.Probes[i] = state.ProbeResult{Type: typ, Result: res, LastTransitionTime: now}
			}
			return
		}
	}
	st.Probes = append(st.Probes, state.ProbeResult{Type: typ, Result: res, LastTransitionTime: now})
}

// probeKill kills instance id of c after its liveness or startup probe
// failed: a Killing event, then preStop, the stop signal and the probe's
// (or pod's) grace period of at least 2 s, then SIGKILL; watch applies the
// restart policy with killedByProbe.
func (s *Supervisor) probeKill(c *container, t probes.ProbeType, id string) {
	probe := c.spec.LivenessProbe
	if t == probes.Startup {
		probe = c.spec.StartupProbe
	}
	restart := s.pod.RestartPolicy != spec.RestartNever
	grace := probes.KillGracePeriod(s.pod, probe, nil)
	current := false
	s.update(func() {
		st := c.st()
		if st.State != state.StateRunning || instanceID(st) != id || s.status.Stopping {
			return // the instance exited or the pod stops meanwhile
		}
		current = true
		c.killedByProbe = true
		ev := probes.KillEvent(t, c.spec.Name, restart)
		s.eventLocked(ev.Type, c, ev.Reason, ev.Message)
	})
	if current {
		s.kill(c, spec.Seconds(grace), true)
	}
}

// updateReadinessLocked sets every app container's started and ready flags
// from the probe results (UpdatePodStatus) and the pod's ContainersReady
// and Ready conditions, keeping a condition's transition time while its
// status holds.
func (s *Supervisor) updateReadinessLocked() {
	readiness := make([]probes.ContainerReadiness, 0, len(s.apps))
	for _, c := range s.apps {
		st := c.st()
		started, ready := false, false
		if s.prober != nil {
			started, ready = s.prober.ContainerStatus(c.spec.Name, probeContainerStatus(st))
		}
		st.Ready = ready
		st.Started = nil
		if st.State == state.StateRunning {
			st.Started = &started
		}
		readiness = append(readiness, probes.ContainerReadiness{Name: c.spec.Name, Known: true, Ready: ready})
	}
	cr, r := probes.PodConditions(s.status.Phase, readiness, nil)
	s.status.Conditions = []state.Condition{
		s.conditionLocked(cr),
		s.conditionLocked(r),
	}
}

// conditionLocked turns a probes condition into a stored one, keeping the
// previous transition time while the status is unchanged.
func (s *Supervisor) conditionLocked(c probes.Condition) state.Condition {
	out := state.Condition{Type: c.Type, Status: c.Status, Reason: c.Reason, Message: c.Message, LastTransitionTime: s.now()}
	for _, prev := range s.status.Conditions {
		if prev.Type == c.Type && prev.Status == c.Status {
			out.LastTransitionTime = prev.LastTransitionTime
		}
	}
	return out
}
