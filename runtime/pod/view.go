package pod

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/peapod/peapod/namespaces"
	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/spec"
	"github.com/peapod/peapod/runtime/state"
)

// View is everything known about a pod, derived from live facts: the
// status file is only trusted while its supervisor is alive or says it
// finished; otherwise the pod is Unknown (SupervisorLost). A pod that run
// or rm has not finished says so (Creating, CreatorLost, Terminating,
// RemoverLost), and one whose record or status cannot be read is shown
// with the error (RecordUnreadable, StatusUnreadable), never hidden.
type View struct {
	// Record is the CLI-owned pod record (for an unreadable one, what the
	// name index and the pod dir still say: uid, namespace, name).
	Record *state.Record
	// Status is the supervisor's last status (nil before it wrote one, or
	// when it cannot be read).
	Status *state.Status
	// SupervisorAlive reports the supervisor process is the one recorded.
	SupervisorAlive bool
	// Final reports the supervisor finished the pod.
	Final bool
	// Phase is the derived pod phase (Pending, Running, Succeeded, Failed, Unknown).
	Phase state.PodPhase
	// Reason explains an Unknown phase, or a pod run or rm has not finished.
	Reason string
	// Message says more about Reason.
	Message string
}

// Reasons a view gives beyond the supervisor's phases.
const (
	// ReasonCreating: run is still creating the pod.
	ReasonCreating = "Creating"
	// ReasonCreatorLost: the run creating the pod died; gc removes it.
	ReasonCreatorLost = "CreatorLost"
	// ReasonTerminating: rm is removing the pod (kubectl's word).
	ReasonTerminating = "Terminating"
	// ReasonRemoverLost: the rm removing the pod died; gc finishes it.
	ReasonRemoverLost = "RemoverLost"
	// ReasonSupervisorLost: the supervisor died without finishing the pod.
	ReasonSupervisorLost = "SupervisorLost"
	// ReasonRecordUnreadable: the pod's record cannot be read.
	ReasonRecordUnreadable = "RecordUnreadable"
	// ReasonRecordMissing: a name is left without its record (a run or rm
	// died between the two); gc removes the name.
	ReasonRecordMissing = "RecordMissing"
	// ReasonStatusUnreadable: the supervisor's status file cannot be read.
	ReasonStatusUnreadable = "StatusUnreadable"
)

// view derives a pod's view.
func (m *Manager) view(rec *state.Record) *View {
	v := &View{Record: rec, Phase: state.PodPending}
	runDir := m.runDir(rec.UID)
	st, stErr := state.ReadStatus(layout.Run(runDir).Status())
	if stErr == nil {
		v.Status = st
	}
	sup := rec.Supervisor
	if v.Status != nil {
		sup = v.Status.Supervisor
		v.Final = v.Status.Final
	}
	v.SupervisorAlive = sup.Alive()
	switch {
	case rec.Phase == state.PhaseCreating && rec.Creator.Alive():
		v.Phase, v.Reason = state.PodPending, ReasonCreating
		v.Message = fmt.Sprintf("pid %d is creating the pod", rec.Creator.PID)
	case rec.Phase == state.PhaseCreating:
		// Whatever its supervisor says: the pod was never fully made.
		v.Phase, v.Reason = state.PodFailed, ReasonCreatorLost
		v.Message = fmt.Sprintf("the run creating the pod (pid %d) died before it finished; gc removes it", rec.Creator.PID)
	case rec.Phase == state.PhaseRemoving && rec.Remover.Alive():
		v.Phase, v.Reason = state.PodUnknown, ReasonTerminating
		v.Message = fmt.Sprintf("pid %d is removing the pod", rec.Remover.PID)
	case rec.Phase == state.PhaseRemoving:
		v.Phase, v.Reason = state.PodFailed, ReasonRemoverLost
		v.Message = fmt.Sprintf("the rm removing the pod (pid %d) died before it finished; gc or rm -f finishes it", rec.Remover.PID)
	case stErr != nil && !errors.Is(stErr, state.ErrNotFound):
		v.Phase, v.Reason = state.PodUnknown, ReasonStatusUnreadable
		v.Message = fmt.Sprintf("%v; supervisor pid %d %s", stErr, sup.PID, aliveWord(v.SupervisorAlive))
	case v.Status != nil && v.Status.Final:
		v.Phase = v.Status.Phase
	case v.SupervisorAlive && v.Status != nil:
		v.Phase = v.Status.Phase
	case v.SupervisorAlive:
		v.Phase = state.PodPending
	default:
		v.Phase, v.Reason = state.PodUnknown, ReasonSupervisorLost
		v.Message = "the pod's supervisor is not running; its containers' state is unknown"
	}
	return v
}

func aliveWord(alive bool) string {
	if alive {
		return "is running"
	}
	return "is not running"
}

// viewOf is view for any entry: an unreadable record is shown with what
// the name index and the pod dir still say, and the error.
func (m *Manager) viewOf(e entry) *View {
	if e.Rec != nil {
		return m.view(e.Rec)
	}
	rec := m.salvage(e.UID, e.Namespace, e.Name)
	rec.CreatedAt = e.Created
	v := m.view(rec)
	v.Phase, v.Reason, v.Message = state.PodUnknown, ReasonRecordUnreadable, fmt.Sprintf("%v; rm -f removes the pod", e.Err)
	if errors.Is(e.Err, state.ErrNotFound) {
		v.Phase, v.Reason = state.PodFailed, ReasonRecordMissing
		v.Message = fmt.Sprintf("%v (a run or rm died); gc removes the name", e.Err)
		if h, err := state.LockExisting(e.Index, true); errors.Is(err, state.ErrBusy) {
			// An rm between the record and the name, alive.
			v.Phase, v.Reason = state.PodUnknown, ReasonTerminating
			v.Message = fmt.Sprintf("%v; another peapod holds the name and is removing it", e.Err)
		} else if err == nil {
			h.Unlock()
		}
	}
	return v
}

// Events returns a pod's aggregated events (none yet is an empty list).
// They are not part of View: ps, wait and exec never need them.
func (m *Manager) Events(v *View) *state.Events {
	var ev state.Events
	state.ReadJSON(layout.Run(m.runDir(v.Record.UID)).Events(), &ev)
	return &ev
}

// Get returns the view of one pod.
func (m *Manager) Get(ns, name string) (*View, error) {
	idx, err := m.validIndex(ns, name)
	if err != nil {
		return nil, err
	}
	uid, err := os.ReadFile(idx)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("pod %q in namespace %q: %w", name, ns, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to look up pod %s/%s: %w", ns, name, err)
	}
	e := entry{UID: string(uid), Namespace: ns, Name: name, Index: idx}
	e.Rec, e.Err = state.ReadRecord(m.recordPath(e.UID))
	if fi, err := os.Stat(m.podDir(e.UID)); err == nil {
		e.Created = fi.ModTime()
	}
	// A pod whose supervisor was lost gets a new one (adopt.go).
	return m.adoptIfLost(m.viewOf(e)), nil
}

// List returns the views of every pod in ns ("" = all), sorted.
func (m *Manager) List(ns string) ([]*View, error) {
	es, err := m.entries()
	if err != nil {
		return nil, err
	}
	var out []*View
	for _, e := range es {
		if ns == "" || e.Namespace == ns {
			out = append(out, m.adoptIfLost(m.viewOf(e)))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Record, out[j].Record
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.UID < b.UID
	})
	return out, nil
}

// Inspect is the runtime view `peapod inspect` prints.
type Inspect struct {
	Name          string             `json:"name"`
	Namespace     string             `json:"namespace"`
	UID           string             `json:"uid"`
	Phase         string             `json:"phase"`
	SupervisorPID int                `json:"supervisorPid"`
	ReaperPID     int                `json:"reaperPid,omitempty"`
	IP            string             `json:"ip"`
	HostVeth      string             `json:"hostVeth,omitempty"`
	RunDir        string             `json:"runDir"`
	PodDir        string             `json:"podDir"`
	Namespaces    map[string]NSInfo  `json:"namespaces"`
	Containers    []InspectContainer `json:"containers"`
}

// NSInfo names a pinned shared namespace and its inode.
type NSInfo struct {
	Path  string `json:"path"`
	Inode uint64 `json:"inode"`
}

// InspectContainer is one container in Inspect.
type InspectContainer struct {
	Name    string `json:"name"`
	ID      string `json:"id"`
	Init    bool   `json:"init,omitempty"`
	PID     int    `json:"pid"`
	State   string `json:"state"`
	Rootfs  string `json:"rootfs"`
	LogPath string `json:"logPath"`
	Cgroup  string `json:"cgroup"`
}

// Inspect builds the runtime view of a pod.
func (m *Manager) Inspect(ns, name string) (*Inspect, error) {
	v, err := m.Get(ns, name)
	if err != nil {
		return nil, err
	}
	rec := v.Record
	out := &Inspect{Name: rec.Name, Namespace: rec.Namespace, UID: rec.UID, Phase: string(v.Phase), IP: rec.IP,
		HostVeth: rec.HostVeth, RunDir: m.runDir(rec.UID), PodDir: m.podDir(rec.UID), Namespaces: map[string]NSInfo{}}
	if v.SupervisorAlive && v.Status != nil {
		out.SupervisorPID = v.Status.Supervisor.PID
		if v.Status.Reaper.Alive() {
			out.ReaperPID = v.Status.Reaper.PID
		}
	}
	// The spec is gone once the pod was stopped after a reboot; the
	// record still answers the rest.
	if sp, err := spec.Load(layout.Run(m.runDir(rec.UID)).Spec()); err == nil {
		for typ, path := range sp.Namespaces {
			ino, err := namespaces.PinInode(path)
			if err == nil {
				out.Namespaces[typ] = NSInfo{Path: path, Inode: ino}
			}
		}
		add := func(c spec.Container, st *state.ContainerStatus, init bool) {
			ic := InspectContainer{Name: c.Name, ID: c.ID, Init: init, State: state.StateWaiting,
				Rootfs: c.OCI.Root.Path, LogPath: c.LogPath, Cgroup: c.Cgroup}
			if st != nil {
				ic.State, ic.LogPath = st.State, firstNonEmpty(st.LogPath, c.LogPath)
				if st.Proc.Alive() {
					ic.PID = st.Proc.PID
					ic.Rootfs = fmt.Sprintf("/proc/%d/root", st.Proc.PID)
				}
			}
			out.Containers = append(out.Containers, ic)
		}
		for i, c := range sp.InitContainers {
			add(c, statusAt(v.Status, true, i), true)
		}
		for i, c := range sp.Containers {
			add(c, statusAt(v.Status, false, i), false)
		}
	}
	return out, nil
}

func statusAt(st *state.Status, init bool, i int) *state.ContainerStatus {
	if st == nil {
		return nil
	}
	list := st.Containers
	if init {
		list = st.InitContainers
	}
	if i < len(list) {
		return &list[i]
	}
	return nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// manifestOf decodes the stored pod.
func manifestOf(rec *state.Record, v any) error {
	if err := json.Unmarshal(rec.Manifest, v); err != nil {
		return fmt.Errorf("failed to decode stored manifest of pod %s/%s: %w", rec.Namespace, rec.Name, err)
	}
	return nil
}
