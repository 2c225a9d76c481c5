package pod

import (
	"strings"
	"time"

	"github.com/peapod/peapod/manifest"
	"github.com/peapod/peapod/runtime/state"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// KubePod renders the view as the v1.Pod `kubectl get pod -o json` shows:
// the stored spec and metadata with a status derived from live facts.
func (v *View) KubePod() (*corev1.Pod, error) {
	var p corev1.Pod
	if len(v.Record.Manifest) == 0 {
		// An unreadable record: what the name index and pod dir say.
		p.Name, p.Namespace, p.UID = v.Record.Name, v.Record.Namespace, types.UID(v.Record.UID)
	} else if err := manifestOf(v.Record, &p); err != nil {
		return nil, err
	}
	p.APIVersion, p.Kind = "v1", "Pod"
	p.CreationTimestamp = metav1.NewTime(v.Record.CreatedAt)
	st := corev1.PodStatus{Phase: corev1.PodPhase(v.Phase), HostIP: hostIP(), QOSClass: manifest.QOSClass(&p.Spec)}
	if v.Reason != "" {
		st.Reason, st.Message = v.Reason, v.Message
	}
	if st.HostIP != "" {
		st.HostIPs = []corev1.HostIP{{IP: st.HostIP}}
	}
	// A stopped pod's address was released (another pod may hold it now).
	if ip := v.Record.IP; ip != "" && v.Record.Phase != state.PhaseStopped {
		st.PodIP = ip
		st.PodIPs = []corev1.PodIP{{IP: ip}}
	}
	created := metav1.NewTime(v.Record.CreatedAt)
	var initialized, ready bool
	var notReady []string
	if s := v.Status; s != nil {
		if s.StartTime != nil {
			t := metav1.NewTime(*s.StartTime)
			st.StartTime = &t
		}
		initialized = s.Initialized
		for i := range s.InitContainers {
			st.InitContainerStatuses = append(st.InitContainerStatuses, containerStatus(&s.InitContainers[i], &p, true))
		}
		ready = len(s.Containers) > 0
		for i := range s.Containers {
			cs := containerStatus(&s.Containers[i], &p, false)
			if !cs.Ready || v.stale() {
				cs.Ready = false
				ready = false
				notReady = append(notReady, cs.Name)
			}
			st.ContainerStatuses = append(st.ContainerStatuses, cs)
		}
	}
	st.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: created},
		boolCondition(corev1.PodInitialized, initialized, "ContainersNotInitialized", "containers with incomplete status: "+initNames(&p), created),
		boolCondition(corev1.ContainersReady, ready, "ContainersNotReady", "containers with unready status: ["+strings.Join(notReady, " ")+"]", created),
		boolCondition(corev1.PodReady, ready, "ContainersNotReady", "containers with unready status: ["+strings.Join(notReady, " ")+"]", created),
	}
	if v.Status != nil && !v.stale() {
		applyConditions(st.Conditions, v.Status.Conditions)
	}
	p.Status = st
	return &p, nil
}

// applyConditions overrides the derived conditions with those the
// supervisor computed from the probes (the kubelet's reasons, messages and
// transition times). A lost supervisor's conditions are stale: not applied.
func applyConditions(out []corev1.PodCondition, stored []state.Condition) {
	for _, c := range stored {
		for i := range out {
			if string(out[i].Type) != c.Type {
				continue
			}
			out[i].Status = corev1.ConditionStatus(c.Status)
			out[i].Reason, out[i].Message = c.Reason, c.Message
			out[i].LastTransitionTime = metav1.NewTime(c.LastTransitionTime)
		}
	}
}

func boolCondition(t corev1.PodConditionType, ok bool, reason, msg string, at metav1.Time) corev1.PodCondition {
	if ok {
		return corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: at}
	}
	return corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, Reason: reason, Message: msg, LastTransitionTime: at}
}

func initNames(p *corev1.Pod) string {
	var names []string
	for _, c := range p.Spec.InitContainers {
		names = append(names, c.Name)
	}
	return "[" + strings.Join(names, " ") + "]"
}

// containerStatus renders one container's state as v1.ContainerStatus.
func containerStatus(s *state.ContainerStatus, p *corev1.Pod, init bool) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{
		Name: s.Name, RestartCount: int32(s.RestartCount), Ready: s.Ready, Started: s.Started,
		Image: s.Image, ImageID: s.ImageID, ContainerID: "peapod://" + s.ID,
	}
	if init {
		cs.Ready = s.State == state.StateTerminated && s.ExitCode == 0
	}
	switch s.State {
	case state.StateRunning:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(s.StartedAt)}
	case state.StateTerminated:
		cs.State.Terminated = terminatedState(&state.Terminated{ExitCode: s.ExitCode, Signal: s.Signal, Reason: s.Reason,
			Message: s.Message, StartedAt: s.StartedAt, FinishedAt: s.FinishedAt}, s.ID)
	default:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: s.Reason, Message: s.Message}
	}
	if s.Last != nil {
		cs.LastTerminationState.Terminated = terminatedState(s.Last, s.ID)
	}
	// The identity its process runs with (the init stage completes the
	// spec's user from the image's /etc/passwd and /etc/group), as the
	// kubelet reports it from the CRI, while it runs.
	if s.State == state.StateRunning {
		if ids, ok := s.Proc.IDs(); ok {
			u := &corev1.LinuxContainerUser{UID: int64(ids.UID), GID: int64(ids.GID)}
			for _, g := range ids.Groups {
				u.SupplementalGroups = append(u.SupplementalGroups, int64(g))
			}
			cs.User = &corev1.ContainerUser{Linux: u}
		}
	}
	return cs
}

func terminatedState(t *state.Terminated, id string) *corev1.ContainerStateTerminated {
	return &corev1.ContainerStateTerminated{
		ExitCode: int32(t.ExitCode), Signal: int32(t.Signal), Reason: t.Reason, Message: t.Message,
		StartedAt: metav1.NewTime(t.StartedAt), FinishedAt: metav1.NewTime(t.FinishedAt), ContainerID: "peapod://" + id,
	}
}

// stale reports that the supervisor's status does not describe the pod:
// its supervisor is lost, or the pod is not (or no longer) fully made.
func (v *View) stale() bool { return v.Reason != "" }

// Age is how long ago the pod was created.
func (v *View) Age(now time.Time) time.Duration { return now.Sub(v.Record.CreatedAt) }
