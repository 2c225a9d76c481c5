package supervisor

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/peapod/peapod/probes"
	"github.com/peapod/peapod/runtime/spec"
	"github.com/peapod/peapod/runtime/state"
)

// GRPCHelperName is the gRPC probe helper's file name; the supervisor looks
// for it beside its own binary unless GRPCHelperEnv names it.
const (
	GRPCHelperName = "peapod-grpc-probe"
	GRPCHelperEnv  = "PEAPOD_GRPC_PROBE"
)

// sharedTransport is the one HTTP transport of every HTTP probe of this
// supervisor: no per-probe transport or connection pool.
var sharedTransport = sync.OnceValue(func() http.RoundTripper { return probes.NewHTTPTransport() })

// newProber builds the pod's probe manager. Its workers read status
// through probeStatus and report through probeEvent; the supervisor
// consumes the result changes in watchProbes.
func (s *Supervisor) newProber() *probes.Manager {
	cfg := probes.Config{
		Pod:        s.pod,
		Status:     probeStatus{s},
		Events:     probes.EventFunc(s.probeEvent),
		ExecRunner: s.execRunner,
		Transport:  sharedTransport(),
	}
	if hasGRPCProbe(s.pod) {
		cfg.HostRunner = s.runHost
		cfg.GRPCHelper = grpcHelperPath()
	}
	return probes.NewManager(cfg)
}

// hasGRPCProbe reports whether any container declares a gRPC probe, the
// only case that needs the helper binary.
func hasGRPCProbe(p *spec.Pod) bool {
	for _, c := range p.Containers {
		for _, pr := range []*spec.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
			if pr != nil && pr.GRPC != nil {
				return true
			}
		}
	}
	return false
}

// grpcHelperPath is $PEAPOD_GRPC_PROBE, else peapod-grpc-probe beside this
// binary ("" when not found: the probe then errors on every run).
func grpcHelperPath() string {
	if p := os.Getenv(GRPCHelperEnv); p != "" {
		return p
	}
	self, err := os.Executable()
	if err != nil {
		return ""
	}
	p := filepath.Join(filepath.Dir(self), GRPCHelperName)
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
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
	pod := probes.PodStatus{Phase: probes.PodPhase(s.status.Phase), IP: s.pod.IP, Terminating: s.status.Stopping}
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
	s.mu.Lock()
	defer s.mu.Unlock()
	s.eventLocked(e.Type, s.app(e.Container), e.Reason, e.Message)
	s.saveEventsLocked()
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
	s.mu.Lock()
	c := s.app(u.Container)
	if c == nil {
		s.mu.Unlock()
		return
	}
	st := c.st()
	current := !st.StartedAt.IsZero() && instanceID(st) == u.ContainerID
	if current {
		recordProbeResult(st, u, s.now())
	}
	kill := current && st.State == state.StateRunning && !s.status.Stopping &&
		u.Result == probes.Failure && (u.Type == probes.Liveness || u.Type == probes.Startup)
	s.updatePhaseLocked()
	s.saveLocked()
	s.mu.Unlock()
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
	s.mu.Lock()
	st := c.st()
	if st.State != state.StateRunning || instanceID(st) != id || s.status.Stopping {
		s.mu.Unlock()
		return
	}
	probe := c.spec.LivenessProbe
	if t == probes.Startup {
		probe = c.spec.StartupProbe
	}
	restart := s.pod.RestartPolicy != spec.RestartNever
	grace := probes.KillGracePeriod(s.pod, probe, nil)
	c.killedByProbe = true
	ev := probes.KillEvent(t, c.spec.Name, restart)
	s.eventLocked(ev.Type, c, ev.Reason, ev.Message)
	s.saveLocked()
	s.mu.Unlock()
	s.kill(c, time.Duration(grace)*time.Second, true)
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
	cr, r := probes.PodConditions(probes.PodPhase(s.status.Phase), readiness, nil)
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
