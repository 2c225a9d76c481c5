package supervisor

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/spec"
	"github.com/peapod/peapod/runtime/state"
	"golang.org/x/sys/unix"
)

// CRI mode (spec.Pod.CRI): the kubelet owns the lifecycle of the pod's
// containers, so the supervisor starts none by itself and acts on single
// containers when the CRI server asks. These operations are new within
// protocol v1 (an optional field and new op names): an older supervisor
// answers them "unknown op", and it never runs a CRI pod anyway.
const (
	// OpCRICreate adds Request.Container, created (not started).
	OpCRICreate = "cri-create"
	// OpCRIStart starts the created container Request.ContainerID once.
	OpCRIStart = "cri-start"
	// OpCRIStop stops it (signal, grace period, SIGKILL); a container that
	// does not run, or is unknown, is stopped already.
	OpCRIStop = "cri-stop"
	// OpCRIRemove kills it at once if it runs and forgets it; an unknown
	// container is removed already.
	OpCRIRemove = "cri-remove"
	// OpCRIReopenLog reopens a running container's log file (the kubelet
	// renamed it to rotate it).
	OpCRIReopenLog = "cri-reopen-log"
	// OpCRIUpdate records Request.CRIResources as the resources of
	// container Request.ContainerID in spec.json (the caller rewrote its
	// cgroup), so its status and an adopting supervisor show them.
	OpCRIUpdate = "cri-update"
)

// ReasonCreated is the waiting reason of a CRI container created and not
// started yet.
const ReasonCreated = "ContainerCreated"

// ErrContainerNotFound is wrapped by a call's error when the supervisor
// does not know the container it was asked about.
var ErrContainerNotFound = errors.New("container not found")

// isCRIOp reports whether op is one of the cri-* operations.
func isCRIOp(op string) bool {
	switch op {
	case OpCRICreate, OpCRIStart, OpCRIStop, OpCRIRemove, OpCRIReopenLog, OpCRIUpdate:
		return true
	}
	return false
}

// notFoundPrefix starts the error of a request about an unknown
// container; the client turns it back into ErrContainerNotFound.
const notFoundPrefix = "container not found: "

// answerError is the client's error for a supervisor's error answer msg
// on the socket at path: a not-found answer wraps ErrContainerNotFound.
func answerError(path, msg string) error {
	if strings.HasPrefix(msg, notFoundPrefix) {
		return fmt.Errorf("supervisor at %q: %s: %w", path, msg, ErrContainerNotFound)
	}
	return fmt.Errorf("supervisor at %q: %s", path, msg)
}

// serveCRI answers a cri-* request; "" is success.
func (s *Supervisor) serveCRI(req *Request) string {
	if !s.pod.CRI {
		return fmt.Sprintf("%s: pod %s/%s is not in CRI mode", req.Op, s.pod.Namespace, s.pod.Name)
	}
	var err error
	switch req.Op {
	case OpCRICreate:
		err = s.criCreate(req.CRIContainer)
	case OpCRIStart:
		err = s.criStart(req.ContainerID)
	case OpCRIStop:
		var grace int64
		if req.GracePeriodSeconds != nil {
			grace = *req.GracePeriodSeconds
		}
		err = s.criStop(req.ContainerID, grace)
	case OpCRIRemove:
		err = s.criRemove(req.ContainerID)
	case OpCRIReopenLog:
		err = s.criReopenLog(req.ContainerID)
	case OpCRIUpdate:
		err = s.criUpdate(req.ContainerID, req.CRIResources)
	}
	if errors.Is(err, ErrContainerNotFound) {
		return notFoundPrefix + req.ContainerID
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// findLocked returns the app container with that id, or nil.
func (s *Supervisor) findLocked(id string) *container {
	for _, c := range s.apps {
		if c.spec.ID == id {
			return c
		}
	}
	return nil
}

// criCreate adds c as a created container: in memory, in status.json and
// in spec.json (so an adopting supervisor knows it).
func (s *Supervisor) criCreate(c *spec.Container) error {
	if c == nil || c.ID == "" || c.Name == "" || c.OCI.Process == nil || c.OCI.Root == nil {
		return fmt.Errorf("%s: the request holds no complete container", OpCRICreate)
	}
	s.criMu.Lock()
	defer s.criMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status.Stopping || s.status.Final {
		return fmt.Errorf("cannot create container %q: pod %s/%s is stopping", c.Name, s.pod.Namespace, s.pod.Name)
	}
	for _, o := range s.apps {
		if o.spec.ID == c.ID || o.spec.Name == c.Name {
			return fmt.Errorf("cannot create container %q (id %s): the pod has a container of that name or id", c.Name, c.ID)
		}
	}
	cs := new(spec.Container)
	*cs = *c
	if s.pod.ShareProcessNamespace && s.status.Reaper.PID != 0 {
		setPIDNamespace(cs, fmt.Sprintf("/proc/%d/ns/pid", s.status.Reaper.PID))
	}
	st := newStatus(cs)
	st.Reason = ReasonCreated
	s.status.Containers = append(s.status.Containers, st)
	ctr := &container{spec: cs, backoffKey: backoffKey(s.pod, cs)}
	s.apps = append(s.apps, ctr)
	s.reindexLocked()
	if err := s.saveSpecLocked(); err != nil {
		s.apps = s.apps[:len(s.apps)-1]
		s.status.Containers = s.status.Containers[:len(s.status.Containers)-1]
		s.reindexLocked()
		return err
	}
	s.eventLocked("Normal", ctr, "Created", "Created container "+cs.Name)
	s.updatePhaseLocked()
	s.saveLocked()
	return nil
}

// criStart starts a created container; it runs once.
func (s *Supervisor) criStart(id string) error {
	s.criMu.Lock()
	defer s.criMu.Unlock()
	s.mu.Lock()
	c := s.findLocked(id)
	var st state.ContainerStatus
	if c != nil {
		st = *c.st()
	}
	s.mu.Unlock()
	if c == nil {
		return ErrContainerNotFound
	}
	if st.State != state.StateWaiting || st.Reason != ReasonCreated {
		return fmt.Errorf("container %q is %s (%s): only a created container can be started", c.spec.Name, st.State, st.Reason)
	}
	return s.startInstance(c)
}

// criStop stops a running container: its stop signal, the grace period,
// then SIGKILL to its cgroup.
func (s *Supervisor) criStop(id string, grace int64) error {
	s.mu.Lock()
	c := s.findLocked(id)
	if c != nil && c.proc.PID != 0 {
		s.eventLocked("Normal", c, "Killing", "Stopping container "+c.spec.Name)
		s.saveEventsLocked()
	}
	s.mu.Unlock()
	if c == nil {
		return nil
	}
	s.kill(c, spec.Seconds(grace), false)
	return nil
}

// criRemove kills a container that still runs and forgets it.
func (s *Supervisor) criRemove(id string) error {
	s.criMu.Lock()
	defer s.criMu.Unlock()
	s.mu.Lock()
	c := s.findLocked(id)
	s.mu.Unlock()
	if c == nil {
		return nil
	}
	s.kill(c, 0, false)
	s.mu.Lock()
	defer s.mu.Unlock()
	st := *c.st()
	for i, o := range s.apps {
		if o == c {
			s.apps = append(s.apps[:i:i], s.apps[i+1:]...)
			s.status.Containers = append(s.status.Containers[:i:i], s.status.Containers[i+1:]...)
			break
		}
	}
	s.reindexLocked()
	// Its st must not point at another container's status now.
	c.st = func() *state.ContainerStatus { return &st }
	for _, p := range fifoPaths(s.pod.RunDir, c.spec.ID, st.RestartCount) {
		os.Remove(p)
	}
	err := s.saveSpecLocked()
	s.updatePhaseLocked()
	s.saveLocked()
	return err
}

// criReopenLog reopens a running container's log at its path.
func (s *Supervisor) criReopenLog(id string) error {
	s.mu.Lock()
	c := s.findLocked(id)
	var lg *criLog
	running := false
	if c != nil {
		lg, running = c.log, c.st().State == state.StateRunning
	}
	s.mu.Unlock()
	switch {
	case c == nil:
		return ErrContainerNotFound
	case !running || lg == nil:
		return fmt.Errorf("container %q is not running", c.spec.Name)
	}
	return lg.reopen()
}

// criUpdate records r as the resources of container id.
func (s *Supervisor) criUpdate(id string, r *specs.LinuxResources) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.findLocked(id)
	if c == nil {
		return ErrContainerNotFound
	}
	if c.spec.OCI.Linux == nil {
		c.spec.OCI.Linux = &specs.Linux{}
	}
	c.spec.OCI.Linux.Resources = r
	return s.saveSpecLocked()
}

// reindexLocked points each app container at its status entry again
// after the list changed.
func (s *Supervisor) reindexLocked() {
	for i, c := range s.apps {
		c.st = func() *state.ContainerStatus { return &s.status.Containers[i] }
	}
}

// saveSpecLocked writes the spec with the containers the pod has now.
func (s *Supervisor) saveSpecLocked() error {
	p := *s.pod
	p.Containers = make([]spec.Container, 0, len(s.apps))
	for _, c := range s.apps {
		p.Containers = append(p.Containers, *c.spec)
	}
	// The run dir does not outlive the boot: not synced (see saveLocked).
	if err := state.WriteJSONNoSync(layout.Run(s.pod.RunDir).Spec(), &p); err != nil {
		return fmt.Errorf("failed to save the spec of pod %s/%s: %w", s.pod.Namespace, s.pod.Name, err)
	}
	return nil
}

// instanceLog is the log file of c's instance number restarts: a CRI
// container's is the path the kubelet named, as is.
func (s *Supervisor) instanceLog(c *container, restarts int) string {
	if s.pod.CRI {
		return c.spec.LogPath
	}
	return instanceLogPath(c.spec.LogPath, restarts)
}

// reopen closes the log file and opens its path again (after the kubelet
// renamed it), so the next entry lands in a new file.
func (l *criLog) reopen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("log %q is closed", l.path)
	}
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("failed to reopen log %q: %w", l.path, err)
	}
	if l.f != nil {
		l.f.Close()
	}
	l.f, l.size = f, 0
	if fi, err := f.Stat(); err == nil {
		l.size = fi.Size()
	}
	return nil
}

// setOOMScoreAdj gives a starting container's process the spec's
// oom_score_adj (inherited across its execve). Without CAP_SYS_RESOURCE
// the kernel refuses a value below the writer's own (EACCES), so a lower
// one is clamped to the supervisor's, as containerd's
// restrict_oom_score_adj does.
func setOOMScoreAdj(c *spec.Container, pid int) error {
	if c.OCI.Process == nil || c.OCI.Process.OOMScoreAdj == nil {
		return nil
	}
	want := *c.OCI.Process.OOMScoreAdj
	if b, err := os.ReadFile("/proc/self/oom_score_adj"); err == nil {
		if own, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && want < own {
			want = own
		}
	}
	path := fmt.Sprintf("/proc/%d/oom_score_adj", pid)
	if err := os.WriteFile(path, []byte(strconv.Itoa(want)), 0); err != nil {
		return fmt.Errorf("failed to set oom_score_adj %d of container %q: %w", want, c.Name, err)
	}
	return nil
}

// KillTree kills a command started beside a container's workload and
// everything it started, leaves first (see killTree), and returns once
// wait has delivered the command's own exit: the CRI server's ExecSync
// past its timeout.
func KillTree(cmd *os.Process, wait <-chan unix.WaitStatus) { killTree(cmd, wait) }
