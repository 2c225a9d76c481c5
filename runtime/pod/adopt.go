package pod

import (
	"encoding/json"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/state"
	"github.com/peapod/peapod/runtime/supervisor"
)

// adoptWait bounds how long a command waits for a replacement supervisor
// to report that it adopted the pod's containers.
const adoptWait = 10 * time.Second

// adoptIfLost replaces the lost supervisor of a pod that is not final with
// one that adopts its containers (supervisor.Adopt), and returns the pod's
// view afterwards. A pod that cannot be adopted keeps its Unknown view,
// with a warning saying why.
func (m *Manager) adoptIfLost(v *View) *View {
	if !adoptable(v) {
		return v
	}
	if _, err := m.adopt(v.Record); err != nil {
		fmt.Fprintf(m.o.Warn, "Warning: pod %s/%s: its supervisor was lost and could not be replaced: %v\n", v.Record.Namespace, v.Record.Name, err)
		return v
	}
	return m.view(v.Record)
}

// adoptable reports whether v is a created pod whose supervisor died
// before the pod was final, with a status to continue from.
func adoptable(v *View) bool {
	return v.Phase == state.PodUnknown && v.Reason == "SupervisorLost" && v.Record.Phase == state.PhaseCreated &&
		v.Status != nil && !v.Status.Final
}

// holdAdoption takes the pod's adoption lock, so no supervisor is started
// for it while the caller (stop, rm) tears it down. Without a run dir
// there is nothing to adopt and nothing to hold.
func (m *Manager) holdAdoption(rec *state.Record) func() {
	runDir := m.runDir(rec.UID)
	if _, err := os.Stat(runDir); err != nil {
		return func() {}
	}
	unlock, err := state.Lock(layout.Run(runDir).AdoptLock())
	if err != nil {
		return func() {}
	}
	return unlock
}

// adopt starts `peapod-supervisor adopt` for the pod under its adoption
// lock, unless, the lock taken, the pod turns out to have a live
// supervisor or to be gone or final. It returns the new supervisor (zero
// when none was needed).
func (m *Manager) adopt(rec *state.Record) (state.Proc, error) {
	runDir := m.runDir(rec.UID)
	if _, err := os.Stat(layout.Run(runDir).Spec()); err != nil {
		return state.Proc{}, fmt.Errorf("nothing to adopt from: %w", err)
	}
	unlock, err := state.Lock(layout.Run(runDir).AdoptLock())
	if err != nil {
		return state.Proc{}, err
	}
	defer unlock()
	// Again under the lock: another command may have adopted the pod, or
	// rm removed it, while this one waited.
	now, err := state.ReadRecord(m.recordPath(rec.UID))
	if err != nil {
		return state.Proc{}, err
	}
	st, err := state.ReadStatus(layout.Run(runDir).Status())
	if err != nil {
		return state.Proc{}, err
	}
	if now.Phase != state.PhaseCreated || st.Final || st.Supervisor.Alive() {
		return state.Proc{}, nil
	}
	return m.spawnAdopter(rec)
}

// spawnAdopter starts the replacement supervisor as run starts the first
// one (detached, its own session, the same environment and log) and waits
// for its report.
func (m *Manager) spawnAdopter(rec *state.Record) (state.Proc, error) {
	runDir := m.runDir(rec.UID)
	// No fault setting: adoption itself runs as in production.
	sup, r, err := m.startSupervisor("adopt", runDir, nil)
	if err != nil {
		return state.Proc{}, err
	}
	defer r.Close()
	// A supervisor that never reports must not hang ps: it is killed, and
	// the pod stays Unknown.
	r.SetReadDeadline(time.Now().Add(adoptWait))
	var rep supervisor.Report
	if err := json.NewDecoder(r).Decode(&rep); err != nil {
		sup.Signal(syscall.SIGKILL)
		log, _ := os.ReadFile(layout.Run(runDir).SupervisorLog())
		return state.Proc{}, fmt.Errorf("replacement supervisor (pid %d) did not report (%v): %s", sup.PID, err, lastLines(log, 5))
	}
	if err := m.checkReportVersion(rep); err != nil {
		sup.Signal(syscall.SIGKILL)
		return state.Proc{}, err
	}
	if rep.Error != "" {
		// It runs on (a restart that failed is retried, as after run):
		// the pod is adopted, with a warning.
		fmt.Fprintf(m.o.Warn, "Warning: pod %s/%s: replacement supervisor (pid %d): %s\n", rec.Namespace, rec.Name, sup.PID, rep.Error)
	}
	return sup, nil
}

// lastLines returns the last n lines of a log, for an error message.
func lastLines(b []byte, n int) string {
	end := len(b)
	for end > 0 && b[end-1] == '\n' {
		end--
	}
	i := end
	for ; i > 0 && n > 0; i-- {
		if b[i-1] == '\n' {
			n--
			if n == 0 {
				break
			}
		}
	}
	return string(b[i:end])
}

// gcAdopt is gc's part in adoption: a pod whose supervisor was lost is
// not debris; it gets a new supervisor (or, with dry run, is named as one
// that would). ok is false when v is not adoptable, or adoption failed
// (with a warning): then gc goes on as for any lost pod.
func (m *Manager) gcAdopt(v *View, dryRun bool) (item *GCItem, ok bool) {
	if !adoptable(v) {
		return nil, false
	}
	name := v.Record.Namespace + "/" + v.Record.Name
	if dryRun {
		return &GCItem{Kind: "supervisor", Name: name, Reason: "supervisor lost: would start one that adopts the pod's containers"}, true
	}
	sup, err := m.adopt(v.Record)
	if err != nil {
		fmt.Fprintf(m.o.Warn, "Warning: pod %s: its supervisor was lost and could not be replaced: %v\n", name, err)
		return nil, false
	}
	if sup.PID == 0 {
		return nil, true
	}
	return &GCItem{Kind: "supervisor", Name: name, Reason: fmt.Sprintf("supervisor lost: supervisor pid %d adopted the pod's containers", sup.PID)}, true
}
