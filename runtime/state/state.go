// Package state keeps peapod's small on-disk state: the CLI-owned pod record
// (persistent, under --root) and the supervisor-owned status (volatile, under
// --run-root). Files are JSON written atomically (temp file, fsync, rename) so
// a reader never sees half a file, and processes are identified by pid *and*
// start time so a reused pid is never mistaken for ours.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Version is written into every state file; a mismatch after an upgrade is
// a clear error naming both versions.
const Version = "peapod.dev/state/v1"

// ErrNotFound is returned when a pod or file does not exist.
var ErrNotFound = errors.New("not found")

// ErrVersion marks a state file written by another peapod version.
var ErrVersion = errors.New("state version mismatch")

// Pod record phases (the CLI's view of the pod's lifecycle).
const (
	// PhaseCreating: run has recorded the pod and is acquiring resources.
	PhaseCreating = "Creating"
	// PhaseCreated: every resource exists and a supervisor was started.
	PhaseCreated = "Created"
	// PhaseStopped: stop finished; the network is released, status and logs remain.
	PhaseStopped = "Stopped"
	// PhaseRemoving: rm is tearing the pod down (remover = that rm); if
	// the remover dies, gc finishes the removal.
	PhaseRemoving = "Removing"
)

// Record is the CLI-owned, persistent description of a pod.
type Record struct {
	// Version is Version.
	Version string `json:"version"`
	// UID, Name, Namespace identify the pod.
	UID       string `json:"uid"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// Phase is one of the Phase* constants.
	Phase string `json:"phase"`
	// Creator identifies the `run` process while Phase is Creating, so gc
	// never mistakes a half-built pod for debris.
	Creator Proc `json:"creator"`
	// Remover identifies the `rm` process while Phase is Removing.
	Remover Proc `json:"remover,omitempty"`
	// CreatedAt is when run recorded the pod.
	CreatedAt time.Time `json:"createdAt"`
	// Manifest is the defaulted v1.Pod as JSON (status is derived, not stored).
	Manifest json.RawMessage `json:"manifest"`
	// IP is the pod's address ("" when none yet, host address for hostNetwork).
	IP string `json:"ip,omitempty"`
	// NetnsName is the pin name under /run/netns ("" for hostNetwork).
	NetnsName string `json:"netnsName,omitempty"`
	// HostVeth is the host end of the pod's veth pair.
	HostVeth string `json:"hostVeth,omitempty"`
	// ImageIDs are the images the pod's containers use (image rm refuses them).
	ImageIDs []string `json:"imageIDs,omitempty"`
	// CgroupParent is the pod's cgroup, relative to each hierarchy root.
	CgroupParent string `json:"cgroupParent"`
	// CgroupDriver is "v1" or "v2".
	CgroupDriver string `json:"cgroupDriver"`
	// Supervisor is the pod's supervisor as started (also in the status,
	// which the supervisor writes; kept here for rm -f when that is gone).
	Supervisor Proc `json:"supervisor,omitempty"`
	// ContainerCgroups are every container's cgroup path, for teardown
	// without the spec.
	ContainerCgroups []string `json:"containerCgroups,omitempty"`
}

// Proc identifies a process across pid reuse.
type Proc struct {
	// PID is the process id.
	PID int `json:"pid"`
	// Start is the process start time in clock ticks since boot (/proc/PID/stat field 22).
	Start uint64 `json:"start"`
}

// PodPhase is a pod's phase, as v1.PodPhase: the supervisor derives
// Pending, Running, Succeeded or Failed; the CLI shows Unknown when the
// supervisor is lost.
type PodPhase string

// Pod phases, spelled as v1's.
const (
	PodPending   PodPhase = "Pending"
	PodRunning   PodPhase = "Running"
	PodSucceeded PodPhase = "Succeeded"
	PodFailed    PodPhase = "Failed"
	PodUnknown   PodPhase = "Unknown"
)

// Terminal reports whether no container of the pod will run again.
func (p PodPhase) Terminal() bool { return p == PodSucceeded || p == PodFailed }

// Status is the supervisor-owned, volatile status of a pod.
type Status struct {
	// Version is Version.
	Version string `json:"version"`
	// Supervisor is the pod's supervisor process.
	Supervisor Proc `json:"supervisor"`
	// Reaper is the PID-1 reaper of a shared PID namespace (zero otherwise).
	Reaper Proc `json:"reaper,omitempty"`
	// Phase is the v1 pod phase the supervisor derives (never Unknown).
	Phase PodPhase `json:"phase"`
	// StartTime is when the supervisor began starting containers.
	StartTime *time.Time `json:"startTime,omitempty"`
	// Stopping is set once stop began: restarts cease.
	Stopping bool `json:"stopping,omitempty"`
	// Final is set when the supervisor has nothing left to do and exits.
	Final bool `json:"final,omitempty"`
	// Initialized is true once every init container completed.
	Initialized bool `json:"initialized"`
	// InitContainers and Containers hold per-container status, in spec order.
	InitContainers []ContainerStatus `json:"initContainers,omitempty"`
	Containers     []ContainerStatus `json:"containers"`
	// Conditions are the probe-driven pod conditions (ContainersReady, Ready).
	Conditions []Condition `json:"conditions,omitempty"`
	// UpdatedAt is the last write.
	UpdatedAt time.Time `json:"updatedAt"`
}

// Container states.
const (
	StateWaiting    = "waiting"
	StateRunning    = "running"
	StateTerminated = "terminated"
)

// ContainerStatus mirrors v1.ContainerStatus in plain types.
type ContainerStatus struct {
	// Name is the container's name.
	Name string `json:"name"`
	// ID is the container's runtime id.
	ID string `json:"id"`
	// Image and ImageID are the container's image reference and content id.
	Image   string `json:"image"`
	ImageID string `json:"imageID"`
	// State is waiting, running or terminated.
	State string `json:"state"`
	// Reason and Message explain waiting/terminated states.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// ExitCode and Signal of the last termination.
	ExitCode int `json:"exitCode,omitempty"`
	Signal   int `json:"signal,omitempty"`
	// StartedAt and FinishedAt of the current (or last) instance.
	StartedAt  time.Time `json:"startedAt,omitempty"`
	FinishedAt time.Time `json:"finishedAt,omitempty"`
	// Proc is the running instance's main process (zero when not running).
	Proc Proc `json:"proc,omitempty"`
	// RestartCount counts restarts of this container.
	RestartCount int `json:"restartCount"`
	// Last is the previous instance's termination, if any.
	Last *Terminated `json:"last,omitempty"`
	// Ready is the readiness result (true without a readiness probe once running).
	Ready bool `json:"ready"`
	// Started is the startup result (nil when not running).
	Started *bool `json:"started,omitempty"`
	// LogPath is the current instance's log file.
	LogPath string `json:"logPath,omitempty"`
	// Probes are the current instance's published probe results, each with
	// when it last changed, so an adopting supervisor can resume them.
	Probes []ProbeResult `json:"probes,omitempty"`
}

// ProbeResult is one published probe result of a container instance.
type ProbeResult struct {
	// Type is Liveness, Readiness or Startup.
	Type string `json:"type"`
	// Result is Success, Failure or UNKNOWN, as the kubelet prints it.
	Result string `json:"result"`
	// LastTransitionTime is when Result last changed.
	LastTransitionTime time.Time `json:"lastTransitionTime"`
}

// Terminated is one finished container instance.
type Terminated struct {
	// ExitCode and Signal as waitpid reported them.
	ExitCode int `json:"exitCode"`
	Signal   int `json:"signal,omitempty"`
	// Reason is Completed, Error, OOMKilled, ContainerCannotRun…
	Reason string `json:"reason"`
	// Message is set when the runtime knows more.
	Message string `json:"message,omitempty"`
	// StartedAt and FinishedAt bound the instance.
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
}

// Condition mirrors v1.PodCondition in plain types.
type Condition struct {
	// Type is ContainersReady or Ready.
	Type string `json:"type"`
	// Status is True or False.
	Status string `json:"status"`
	// Reason and Message explain a False status, as the kubelet words them.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// LastTransitionTime is when Status last changed.
	LastTransitionTime time.Time `json:"lastTransitionTime"`
}

// WriteJSON writes v to path atomically: a reader sees the old file or the
// new one, never a mix, also across a crash (fsync before rename).
func WriteJSON(path string, v any) error {
	return writeJSON(path, v, true)
}

// WriteJSONNoSync is WriteJSON without the fsync: atomic against a crash
// of the writer, not of the machine. For a state whose loss in a power cut
// is harmless (after a reboot the sweep removes every pod of the old boot).
func WriteJSONNoSync(path string, v any) error {
	return writeJSON(path, v, false)
}

// WriteBytesNoSync is WriteJSONNoSync of JSON the caller encoded already
// (create encodes spec.json with jsonvalue): written as it is, not passed
// through encoding/json once more.
func WriteBytesNoSync(path string, b []byte) error {
	return writeFile(path, b, false)
}

func writeJSON(path string, v any, sync bool) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("failed to encode %q: %w", path, err)
	}
	return writeFile(path, b, sync)
}

// writeFile replaces path with b atomically, synced before the rename when
// sync is set.
func writeFile(path string, b []byte, sync bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("failed to create temp file for %q: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("failed to write %q: %w", tmp.Name(), err)
	}
	if sync {
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return fmt.Errorf("failed to sync %q: %w", tmp.Name(), err)
		}
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("failed to close %q: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("failed to rename %q to %q: %w", tmp.Name(), path, err)
	}
	return nil
}

// ReadJSON decodes path into v; a missing file is ErrNotFound.
func ReadJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to read %q: %w", path, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("failed to read %q: %w", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("failed to decode %q: %w", path, err)
	}
	return nil
}

// checkVersion names both versions on a mismatch.
func checkVersion(path, got string) error {
	if got != Version {
		return fmt.Errorf("%q was written by state version %q, this peapod reads %q: %w", path, got, Version, ErrVersion)
	}
	return nil
}

// ReadRecord reads and version-checks a pod record.
func ReadRecord(path string) (*Record, error) {
	var r Record
	if err := ReadJSON(path, &r); err != nil {
		return nil, err
	}
	if err := checkVersion(path, r.Version); err != nil {
		return nil, err
	}
	return &r, nil
}

// ReadStatus reads and version-checks a pod status.
func ReadStatus(path string) (*Status, error) {
	var s Status
	if err := ReadJSON(path, &s); err != nil {
		return nil, err
	}
	if err := checkVersion(path, s.Version); err != nil {
		return nil, err
	}
	return &s, nil
}
