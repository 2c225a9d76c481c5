package supervisor

import (
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/spec"
	"github.com/peapod/peapod/runtime/state"
)

// update is the one door for a change of the pod's status: under mu it
// applies change, derives the phase, the ready flags and the conditions
// again, and writes status.json and events.json. change must not block.
func (s *Supervisor) update(change func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	change()
	s.updatePhaseLocked()
	s.saveLocked()
}

// updateKeepingPhase is update for the two changes the phase must not
// see yet: Stop's (with Stopping set and containers still running the
// phase would turn terminal, which ends the readiness workers before the
// containers are gone; it is derived again as each exits) and an adopting
// supervisor's restore (the ready flags would be derived before the
// prober has resumed the lost one's results).
func (s *Supervisor) updateKeepingPhase(change func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	change()
	s.saveLocked()
}

// addEvent records an event about container c (nil = the pod) and writes
// events.json only: an event changes nothing in the status.
func (s *Supervisor) addEvent(typ string, c *container, reason, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.eventLocked(typ, c, reason, msg)
	s.saveEventsLocked()
}

// saveLocked writes status and events; failures go to the supervisor log
// since the pod must keep running. Both live in the run dir, which does
// not outlive the boot (after a power cut the reboot sweep removes every
// pod of the old one), so they are not synced: an fsync per write cost a
// journal commit (1–3 ms on ext4) on every container state change and
// probe event, and bought nothing. The rename still makes each write
// atomic against a crash of the supervisor.
func (s *Supervisor) saveLocked() {
	s.status.UpdatedAt = s.now()
	if err := state.WriteJSONNoSync(layout.Run(s.pod.RunDir).Status(), &s.status); err != nil {
		fmt.Fprintln(os.Stderr, "peapod-supervisor:", err)
	}
	s.saveEventsLocked()
}

// saveEventsLocked writes the events only (a failed probe's event changes
// nothing else).
func (s *Supervisor) saveEventsLocked() {
	if err := state.WriteJSONNoSync(layout.Run(s.pod.RunDir).Events(), &s.events); err != nil {
		fmt.Fprintln(os.Stderr, "peapod-supervisor:", err)
	}
}

// eventLocked records an event about container c (nil = the pod).
func (s *Supervisor) eventLocked(typ string, c *container, reason, msg string) {
	obj := ""
	if c != nil {
		field := "containers"
		if c.isInit {
			field = "initContainers"
		}
		obj = "spec." + field + "{" + c.spec.Name + "}"
	}
	s.events.Add(typ, obj, reason, msg, s.now())
}

// updatePhaseLocked derives the pod phase as the kubelet's getPhase does,
// then the containers' ready flags and the pod's conditions:
// init containers gate Pending; a waiting container that has run before
// counts as stopped; restartPolicy decides between Running, Succeeded and
// Failed once nothing runs.
func (s *Supervisor) updatePhaseLocked() {
	s.status.Phase = s.phaseLocked()
	s.updateReadinessLocked()
}

func (s *Supervisor) phaseLocked() state.PodPhase {
	// A stopping pod is final only once none of its containers runs: while
	// one still has its grace period, the pod is not done (a terminal phase
	// would finish the supervisor — kill the reaper, and with it a shared
	// PID namespace — and cut the others' grace short).
	final := s.status.Final || (s.status.Stopping && !s.anyRunningLocked())
	for _, c := range s.inits {
		st := c.st()
		if st.State == state.StateTerminated && st.ExitCode != 0 && s.pod.RestartPolicy == spec.RestartNever {
			return state.PodFailed
		}
	}
	if !s.status.Initialized {
		if final {
			return state.PodFailed
		}
		return state.PodPending
	}
	var waiting, running, stopped, succeeded int
	for _, c := range s.apps {
		st := c.st()
		switch {
		case st.State == state.StateRunning:
			running++
		case st.State == state.StateTerminated:
			stopped++
			if st.ExitCode == 0 {
				succeeded++
			}
		case st.Last != nil:
			stopped++
			if st.Last.ExitCode == 0 {
				succeeded++
			}
		default:
			waiting++
		}
	}
	switch {
	case waiting > 0 && !final:
		return state.PodPending
	case running > 0 && !final:
		return state.PodRunning
	}
	if final {
		if succeeded == len(s.apps) {
			return state.PodSucceeded
		}
		return state.PodFailed
	}
	switch {
	case s.pod.RestartPolicy == spec.RestartAlways:
		return state.PodRunning
	case stopped == succeeded:
		return state.PodSucceeded
	case s.pod.RestartPolicy == spec.RestartNever:
		return state.PodFailed
	}
	return state.PodRunning
}

// anyRunningLocked tells whether an init or app container runs.
func (s *Supervisor) anyRunningLocked() bool {
	for _, c := range append(append([]*container(nil), s.inits...), s.apps...) {
		if c.st().State == state.StateRunning {
			return true
		}
	}
	return false
}

// setPIDNamespace points c's pid namespace entry at path (a shared pod PID
// namespace is only known once its reaper runs).
func setPIDNamespace(c *spec.Container, path string) {
	if c.OCI.Linux == nil {
		c.OCI.Linux = &specs.Linux{}
	}
	for i, ns := range c.OCI.Linux.Namespaces {
		if ns.Type == specs.PIDNamespace {
			c.OCI.Linux.Namespaces[i].Path = path
			return
		}
	}
	c.OCI.Linux.Namespaces = append(c.OCI.Linux.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace, Path: path})
}
