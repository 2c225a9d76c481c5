package supervisor

import (
	"errors"
	"fmt"
	"os"

	"github.com/peapod/peapod/probes"
	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/state"
	"golang.org/x/sys/unix"
)

// A container that ran while no supervisor watched it, and exited, is
// reported as the kubelet reports a container it cannot find: its exit
// status went to whoever reaped it (the supervisor was its parent), so
// the code is unknowable.
const (
	reasonLost   = "ContainerStatusUnknown"
	lostExitCode = 137
	// messageLost is the kubelet's text (status_manager.go) verbatim, so
	// tools that recognise it recognise ours.
	messageLost = "The container could not be located when the pod was terminated"
)

// ReasonSupervisorLost is the event an adopting supervisor records.
const ReasonSupervisorLost = "SupervisorLost"

// Adopt replaces a lost supervisor (killed, OOM-killed, crashed) of a pod
// that is not final: it continues from the lost one's last status —
// restart counts, probe results, events — and takes over the containers
// that still run. They were the lost supervisor's children and have been
// reparented, so they are watched through pidfds (an exit is known, its
// code is not: ContainerStatusUnknown, 137), their output is read on from
// their stdio FIFOs into the same log files, and their probes resume from
// the last published results. A container that exited meanwhile is
// recorded the same way and restarted per restartPolicy. started is
// called once the containers are adopted (a pod still initializing goes
// on in the background).
func (s *Supervisor) Adopt(started func(error)) error {
	prev, err := state.ReadStatus(layout.Run(s.pod.RunDir).Status())
	switch {
	case err != nil:
		err = fmt.Errorf("cannot adopt pod %s/%s: %w", s.pod.Namespace, s.pod.Name, err)
	case prev.Final:
		err = fmt.Errorf("cannot adopt pod %s/%s: it is finished", s.pod.Namespace, s.pod.Name)
	case prev.Supervisor.Alive():
		err = fmt.Errorf("cannot adopt pod %s/%s: its supervisor (pid %d) runs", s.pod.Namespace, s.pod.Name, prev.Supervisor.PID)
	}
	if err != nil {
		started(err)
		return err
	}
	return s.run(started, prev)
}

// restoreLocked continues from the lost supervisor's status and events.
func (s *Supervisor) restoreLocked(prev *state.Status) {
	self := s.status.Supervisor
	inits, apps := s.status.InitContainers, s.status.Containers
	s.status = *prev
	s.status.Version, s.status.Supervisor, s.status.Final = state.Version, self, false
	s.status.InitContainers = restoreContainers(inits, prev.InitContainers)
	s.status.Containers = restoreContainers(apps, prev.Containers)
	var ev state.Events
	if err := state.ReadJSON(layout.Run(s.pod.RunDir).Events(), &ev); err == nil {
		s.events.Items = ev.Items
	}
	s.eventLocked("Warning", nil, ReasonSupervisorLost, fmt.Sprintf(
		"Supervisor (pid %d) was lost; supervisor (pid %d) adopted the pod's containers", prev.Supervisor.PID, self.PID))
}

// restoreContainers keeps, for each container of the spec (fresh, in spec
// order), its previous status when there is one by that name.
func restoreContainers(fresh, prev []state.ContainerStatus) []state.ContainerStatus {
	out := append([]state.ContainerStatus{}, fresh...)
	for i := range out {
		for _, p := range prev {
			if p.Name == out[i].Name {
				out[i] = p
			}
		}
	}
	return out
}

// adoptAll takes over the pod's reaper and containers.
func (s *Supervisor) adoptAll() error {
	s.mu.Lock()
	stopping, initialized, reaper := s.status.Stopping, s.status.Initialized, s.status.Reaper
	s.mu.Unlock()
	if s.pod.ShareProcessNamespace {
		// The reaper, like the containers, was reparented; it is only
		// signalled (through its pid and start time), never waited for.
		if reaper.Alive() {
			path := fmt.Sprintf("/proc/%d/ns/pid", reaper.PID)
			for _, c := range append(append([]*container{}, s.inits...), s.apps...) {
				setPIDNamespace(c.spec, path)
			}
		} else if !stopping {
			// Its PID namespace, and every container in it, died with it.
			if err := s.startReaper(); err != nil {
				return err
			}
		}
	}
	for _, c := range append(append([]*container{}, s.inits...), s.apps...) {
		if !s.wasRunning(c) {
			// The lost supervisor may have died between starting an
			// instance and recording it: nothing may run in a cgroup the
			// status calls empty, or a restart would run a second one.
			s.cg.Kill(c.spec.Cgroup)
		}
	}
	if !initialized && !stopping {
		go s.startAll(true)
		return nil
	}
	for _, c := range s.apps {
		s.mu.Lock()
		st := *c.st()
		s.mu.Unlock()
		switch {
		case st.State == state.StateRunning:
			s.adoptInstance(c)
		case stopping:
		case s.pod.CRI:
			// The kubelet decides what runs again.
		case st.State == state.StateTerminated:
			if probes.ShouldRestart(s.pod.RestartPolicy, st.ExitCode, false) {
				s.scheduleRestart(c)
			}
		default:
			// Waiting: in a crash-loop backoff (its timer died with the
			// lost supervisor, and so did the backoff's memory), after a
			// failed start, or never started.
			s.scheduleRestart(c)
		}
	}
	if stopping {
		// The lost supervisor was stopping the pod: finish that.
		go s.Stop(0)
		return nil
	}
	s.maybeFinish()
	return nil
}

// wasRunning reports whether c's status says an instance runs.
func (s *Supervisor) wasRunning(c *container) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return c.st().State == state.StateRunning
}

// adoptInstance takes over c's instance that the status says runs. If its
// process is gone (or the pid now names another process), it is recorded
// as exited with an unknown status and the restart policy applies, as for
// any exit (watch).
func (s *Supervisor) adoptInstance(c *container) {
	s.mu.Lock()
	st := c.st()
	proc, restarts := st.Proc, st.RestartCount
	logPath := st.LogPath
	if logPath == "" {
		logPath = instanceLogPath(c.spec.LogPath, restarts)
	}
	seeds := append([]state.ProbeResult{}, st.Probes...)
	id := instanceID(st)
	s.mu.Unlock()

	wait := make(chan unix.WaitStatus, 1)
	paths := fifoPaths(s.pod.RunDir, c.spec.ID, restarts)
	var pipes *stdio
	var lg *criLog
	pidfd, err := openPidfd(proc)
	alive := err == nil
	if !alive {
		wait <- 0 // its status is unknowable: watch records it as lost
		proc = state.Proc{}
		for _, p := range paths {
			os.Remove(p)
		}
	} else {
		lg, pipes = s.adoptLog(c, logPath, paths)
		go func() {
			awaitExit(pidfd)
			wait <- 0
		}()
	}
	if alive && !c.isInit && s.prober != nil {
		// Seeded before the workers start, so they keep the results.
		for _, r := range seeds {
			t, okT := probes.ParseProbeType(r.Type)
			res, okR := probes.ParseResult(r.Result)
			if okT && okR {
				s.prober.Resume(t, c.spec.Name, id, res)
			}
		}
		s.prober.AddContainer(c.spec)
	}
	// An instance of an older supervisor may have no profile file.
	prof, profErr := s.makeExecProfile(c, proc.PID)
	var exited chan struct{}
	s.update(func() {
		c.exec, c.execErr = prof, profErr
		c.proc, c.log, c.killedByProbe, c.adopted = proc, lg, false, true
		c.hub = nil
		if pipes != nil {
			c.hub = pipes.hub
		}
		c.exited = make(chan struct{})
		exited = c.exited
	})
	go s.watch(c, wait, exited, pipes)
}

// adoptLog reopens a running instance's log and its stdio FIFOs and
// copies on. Without its FIFOs (started by a peapod that used plain
// pipes, which died with their reader) the output is lost, and an event
// says so.
func (s *Supervisor) adoptLog(c *container, logPath string, paths [2]string) (*criLog, *stdio) {
	lg, err := openCRILog(logPath)
	if err == nil {
		lg.onLoss = func(loss logLoss, recovered bool) { s.logLoss(c, loss, recovered) }
	}
	if c.spec.TTY() {
		// The pty master lived in the lost supervisor only: the kernel hung
		// the terminal up when it died (SIGHUP to the container's session,
		// as a closed terminal window does), and no path reopens it.
		s.addEvent("Warning", c, ReasonTerminalLost, fmt.Sprintf(
			"The terminal of container %s was hung up with its supervisor; its output is no longer logged and it cannot be attached until it restarts", c.spec.Name))
		hub := newAttachHub(c.spec)
		hub.gone = "its terminal was hung up when its supervisor was lost; attach works again once the container restarts"
		return lg, &stdio{hub: hub}
	}
	pipes, perr := adoptStdio(paths)
	if err = errors.Join(err, perr); err != nil {
		s.addEvent("Warning", c, ReasonLogWriteFailed, fmt.Sprintf("Failed to resume the log of container %s: %v", c.spec.Name, err))
	}
	if pipes == nil {
		return lg, nil
	}
	pipes.hub = newAttachHub(c.spec)
	if c.spec.Stdin {
		// The write end of its stdin pipe died with the lost supervisor:
		// the container read EOF then.
		pipes.hub.loseStdin("its supervisor was lost, and its stdin with it, until the container restarts")
	}
	pipes.copyOutput(lg)
	return lg, pipes
}

// ReasonTerminalLost is the event of an adopted tty container.
const ReasonTerminalLost = "TerminalLost"

// errGone means a recorded process no longer runs.
var errGone = errors.New("process is gone")

// openPidfd pins p by a pidfd, verified to be the recorded process.
func openPidfd(p state.Proc) (*os.File, error) {
	if p.PID <= 0 {
		return nil, errGone
	}
	fd, err := unix.PidfdOpen(p.PID, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("failed to open a pidfd for pid %d: %w", p.PID, err)
	}
	// Checked after the open: the pidfd pins whichever process had the
	// pid then. If the pid's process now has the recorded start time, the
	// pinned one is ours; if ours had died and the pid was reused in
	// between, the start time differs.
	if !p.Alive() {
		unix.Close(fd)
		return nil, fmt.Errorf("pid %d: %w", p.PID, errGone)
	}
	// PIDFD_NONBLOCK: os.NewFile registers it with Go's poller.
	return os.NewFile(uintptr(fd), fmt.Sprintf("pidfd:%d", p.PID)), nil
}

// awaitExit returns once the pidfd's process has exited (a pidfd polls
// readable then, whoever reaps it), and closes the pidfd.
func awaitExit(f *os.File) {
	defer f.Close()
	exited := func(fd uintptr) bool {
		for {
			n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
			if err != unix.EINTR {
				return n > 0 || err != nil
			}
		}
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return // only for a closed file
	}
	if rc.Read(exited) != nil {
		// Not in the poller: block this goroutine's thread instead.
		rc.Control(func(fd uintptr) {
			for {
				n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, -1)
				if n > 0 || err != nil && err != unix.EINTR {
					return
				}
			}
		})
	}
}
