package supervisor

import (
	"context"
	"encoding/json"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/peapod/peapod/probes"
	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/spec"
	"github.com/peapod/peapod/runtime/state"
)

// newTestSupervisor writes p as a spec into a temp run dir and loads it,
// with the clock and backoff on fc. No process is started.
func newTestSupervisor(t *testing.T, p spec.Pod, fc *probes.FakeClock) *Supervisor {
	t.Helper()
	p.Version, p.RunDir = spec.Version, t.TempDir()
	b, err := json.Marshal(&p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(layout.Run(p.RunDir).Spec(), b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := New(p.RunDir, nil, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.now = fc.Now
	s.backoff = probes.NewBackoff(seconds(p.BackoffInitialSeconds), seconds(p.BackoffMaxSeconds), fc)
	return s
}

// TestCrashLoopBackoffSequence drives exits on a fake clock: restarts at
// FinishedAt + 0, 1, 2, 4, 8, 8 s with CrashLoopBackOff and the kubelet's
// message between, and back to 0 after a run longer than 10 minutes.
func TestCrashLoopBackoffSequence(t *testing.T) {
	fc := probes.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := newTestSupervisor(t, spec.Pod{UID: "u1", Name: "p", Namespace: "ns", RestartPolicy: spec.RestartAlways,
		BackoffInitialSeconds: 1, BackoffMaxSeconds: 8, Containers: []spec.Container{{Name: "c", ID: "u1-c"}}}, fc)
	c := s.apps[0]
	exit := func(ranFor time.Duration) (time.Time, time.Duration) {
		st := c.st()
		st.State, st.StartedAt = state.StateRunning, fc.Now()
		fc.Step(ranFor)
		st.State, st.FinishedAt = state.StateTerminated, fc.Now()
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.enterBackoffLocked(c)
	}
	for i, want := range []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second} {
		finished, delay := exit(100 * time.Millisecond)
		if delay != want {
			t.Fatalf("exit %d: delay %v, want %v", i, delay, want)
		}
		st := c.st()
		if want > 0 {
			msg := probes.CrashLoopBackOffMessage(want, "c", s.pod)
			if st.State != state.StateWaiting || st.Reason != "CrashLoopBackOff" || st.Message != msg || st.Last == nil {
				t.Errorf("exit %d: state %s/%s %q last=%v, want waiting CrashLoopBackOff %q", i, st.State, st.Reason, st.Message, st.Last, msg)
			}
		} else if st.State != state.StateTerminated {
			t.Errorf("exit %d: state %s, want terminated (restart at once)", i, st.State)
		}
		fc.Step(delay)
		s.backoff.Started(c.backoffKey, finished)
	}
	if _, delay := exit(probes.BackoffResetAfter + time.Second); delay != 0 {
		t.Errorf("after a run of more than 10 minutes: delay %v, want 0", delay)
	}
	if n := countEvents(s, "BackOff"); n != 5 {
		t.Errorf("BackOff events counted %d, want 5 (one per backoff)", n)
	}
}

func countEvents(s *Supervisor, reason string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.events.Items {
		if e.Reason == reason {
			n += e.Count
		}
	}
	return n
}

// TestReadinessDrivesStatus runs a real probe manager with a fake exec
// runner on a fake clock: readiness results set ready, the conditions with
// the kubelet's reason, message and transition time, and the persisted
// probe results; a stale instance's update is ignored.
func TestReadinessDrivesStatus(t *testing.T) {
	fc := probes.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	probe := &spec.Probe{Exec: []string{"check"}, PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 1}
	s := newTestSupervisor(t, spec.Pod{UID: "u2", Name: "p", Namespace: "ns", RestartPolicy: spec.RestartAlways,
		Containers: []spec.Container{{Name: "app", ID: "u2-app", ReadinessProbe: probe}}}, fc)
	var code atomic.Int32
	var runs atomic.Int32
	runner := func(ctx context.Context, argv []string, timeout time.Duration) ([]byte, int, error) {
		runs.Add(1)
		return []byte("not yet"), int(code.Load()), nil
	}
	m := probes.NewManager(probes.Config{Pod: s.pod, Status: probeStatus{s}, Events: probes.EventFunc(s.probeEvent), Clock: fc,
		ExecRunner: func(*spec.Container) probes.Runner { return runner }})
	s.mu.Lock()
	s.status.Initialized = true
	st := s.apps[0].st()
	st.State, st.StartedAt = state.StateRunning, fc.Now()
	s.prober = m
	s.updatePhaseLocked()
	s.mu.Unlock()
	t.Cleanup(m.Stop)
	m.AddContainer(&s.pod.Containers[0])

	// The test set the status up before the worker existed, when the
	// container counted as ready (no readiness probe known): wait for the
	// first success itself, not for Ready.
	applyUntil(t, s, m, probes.Success)
	if !readyOf(s) {
		t.Fatal("not ready after the first success")
	}
	readyAt := fc.Now()
	cond := conditionOf(s, probes.ConditionReady)
	if cond.Status != "True" || !cond.LastTransitionTime.Equal(readyAt) {
		t.Errorf("Ready condition %+v, want True since %v", cond, readyAt)
	}

	code.Store(1)
	fc.Step(time.Second)
	applyUntil(t, s, m, probes.Failure)
	if readyOf(s) {
		t.Fatal("ready after a failure")
	}
	cr := conditionOf(s, probes.ConditionContainersReady)
	if cr.Status != "False" || cr.Reason != "ContainersNotReady" || cr.Message != "containers with unready status: [app]" ||
		!cr.LastTransitionTime.Equal(fc.Now()) {
		t.Errorf("ContainersReady %+v, want False/ContainersNotReady/[app] since %v", cr, fc.Now())
	}
	onDisk, err := state.ReadStatus(layout.Run(s.pod.RunDir).Status())
	if err != nil {
		t.Fatal(err)
	}
	if pr := onDisk.Containers[0].Probes; len(pr) != 1 || pr[0].Type != "Readiness" || pr[0].Result != "Failure" || !pr[0].LastTransitionTime.Equal(fc.Now()) {
		t.Errorf("persisted probes %+v, want Readiness Failure since %v", pr, fc.Now())
	}
	if n := countEvents(s, probes.ReasonUnhealthy); n < 1 {
		t.Errorf("no Unhealthy event after a failed probe")
	}

	// An update for an instance that is no longer current changes nothing.
	s.probeUpdate(probes.Update{Type: probes.Readiness, Container: "app", ContainerID: "u2-app/7", Result: probes.Success})
	s.mu.Lock()
	ready := s.apps[0].st().Ready
	s.mu.Unlock()
	if ready {
		t.Errorf("a stale instance's Success made the container ready")
	}
}

// applyUntil applies the manager's result updates in order, as
// watchProbes does, up to the first with result want: the test waits for
// the probe's update itself, not for a poll to notice its effect.
func applyUntil(t *testing.T, s *Supervisor, m *probes.Manager, want probes.Result) {
	t.Helper()
	// Not a timing expectation: it turns a missing update (a bug) into a
	// failure naming it, long before go test's -timeout.
	const failSafe = time.Minute
	deadline := time.After(failSafe)
	for {
		select {
		case u := <-m.Updates():
			s.probeUpdate(u)
			if u.Result == want {
				return
			}
		case <-deadline:
			t.Fatalf("no %v update (waited %v)", want, failSafe)
		}
	}
}

// readyOf returns the first app container's ready flag.
func readyOf(s *Supervisor) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apps[0].st().Ready
}

func conditionOf(s *Supervisor, typ string) state.Condition {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.status.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return state.Condition{}
}
