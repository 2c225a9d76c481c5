package printers

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/peapod/peapod/runtime/state"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// describer writes kubectl describe's layout: "Label:\tvalue" lines at
// indent levels of two spaces, aligned by one tab writer.
type describer struct {
	w   io.Writer
	now time.Time
}

func (d describer) line(level int, format string, a ...any) {
	fmt.Fprintf(d.w, strings.Repeat("  ", level)+format, a...)
}

// Describe prints a pod as `kubectl describe pod` does: its metadata and
// status, each container (state, last state, readiness, restarts, image
// and image ID, probes, environment, mounts), the conditions, volumes, QoS
// class, and the pod's events last. Event messages stay one line each.
func Describe(w io.Writer, p *corev1.Pod, events []state.Event, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	d := describer{w: tw, now: now}
	d.line(0, "Name:\t%s\n", p.Name)
	d.line(0, "Namespace:\t%s\n", p.Namespace)
	if p.Spec.Priority != nil {
		d.line(0, "Priority:\t%d\n", *p.Spec.Priority)
	}
	if p.Spec.RuntimeClassName != nil && *p.Spec.RuntimeClassName != "" {
		d.line(0, "Runtime Class Name:\t%s\n", *p.Spec.RuntimeClassName)
	}
	if p.Spec.ServiceAccountName != "" {
		d.line(0, "Service Account:\t%s\n", p.Spec.ServiceAccountName)
	}
	if p.Spec.NodeName == "" {
		d.line(0, "Node:\t<none>\n")
	} else {
		d.line(0, "Node:\t%s/%s\n", p.Spec.NodeName, p.Status.HostIP)
	}
	if p.Status.StartTime != nil {
		d.line(0, "Start Time:\t%s\n", p.Status.StartTime.Format(time.RFC1123Z))
	}
	d.multiline("Labels", p.Labels)
	d.multiline("Annotations", p.Annotations)
	if p.DeletionTimestamp != nil && p.Status.Phase != corev1.PodFailed && p.Status.Phase != corev1.PodSucceeded {
		d.line(0, "Status:\tTerminating (lasts %s)\n", Since(*p.DeletionTimestamp, now))
	} else {
		d.line(0, "Status:\t%s\n", p.Status.Phase)
	}
	if p.Status.Reason != "" {
		d.line(0, "Reason:\t%s\n", p.Status.Reason)
	}
	if p.Status.Message != "" {
		d.line(0, "Message:\t%s\n", oneLine(p.Status.Message))
	}
	d.line(0, "IP:\t%s\n", p.Status.PodIP)
	if len(p.Status.PodIPs) == 0 {
		d.line(0, "IPs:\t<none>\n")
	} else {
		d.line(0, "IPs:\n")
		for _, ip := range p.Status.PodIPs {
			d.line(1, "IP:\t%s\n", ip.IP)
		}
	}
	if len(p.Spec.InitContainers) > 0 {
		d.containers("Init Containers", p.Spec.InitContainers, p.Status.InitContainerStatuses)
	}
	d.containers("Containers", p.Spec.Containers, p.Status.ContainerStatuses)
	if len(p.Status.Conditions) > 0 {
		d.line(0, "Conditions:\n  Type\tStatus\n")
		for _, c := range p.Status.Conditions {
			d.line(1, "%v \t%v \n", c.Type, c.Status)
		}
	}
	d.volumes(p.Spec.Volumes)
	d.line(0, "QoS Class:\t%s\n", p.Status.QOSClass)
	d.multiline("Node-Selectors", p.Spec.NodeSelector)
	d.tolerations(p.Spec.Tolerations)
	d.events(events)
	return tw.Flush()
}

// multiline prints a map as kubectl does: sorted, one key=value a line.
func (d describer) multiline(title string, m map[string]string) {
	d.line(0, "%s:\t", title)
	if len(m) == 0 {
		fmt.Fprintln(d.w, "<none>")
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i > 0 {
			d.line(0, "\t")
		}
		fmt.Fprintf(d.w, "%s=%s\n", k, oneLine(m[k]))
	}
}

func (d describer) containers(label string, cs []corev1.Container, statuses []corev1.ContainerStatus) {
	byName := map[string]corev1.ContainerStatus{}
	for _, s := range statuses {
		byName[s.Name] = s
	}
	d.line(0, "%s:\n", label)
	for _, c := range cs {
		st, ok := byName[c.Name]
		d.line(1, "%s:\n", c.Name)
		if ok {
			d.line(2, "Container ID:\t%s\n", st.ContainerID)
		}
		d.line(2, "Image:\t%s\n", c.Image)
		if ok {
			d.line(2, "Image ID:\t%s\n", st.ImageID)
		}
		ports, hostPorts := containerPorts(c.Ports)
		if strings.Contains(ports, ",") {
			d.line(2, "Ports:\t%s\n", ports)
		} else {
			d.line(2, "Port:\t%s\n", orNone(ports))
		}
		if strings.Contains(hostPorts, ",") {
			d.line(2, "Host Ports:\t%s\n", hostPorts)
		} else {
			d.line(2, "Host Port:\t%s\n", orNone(hostPorts))
		}
		for _, l := range []struct {
			title string
			words []string
		}{{"Command", c.Command}, {"Args", c.Args}} {
			if len(l.words) > 0 {
				d.line(2, "%s:\n", l.title)
				for _, word := range l.words {
					for _, s := range strings.Split(word, "\n") {
						d.line(3, "%s\n", s)
					}
				}
			}
		}
		if ok {
			d.state("State", st.State)
			if st.LastTerminationState.Terminated != nil {
				d.state("Last State", st.LastTerminationState)
			}
			d.line(2, "Ready:\t%s\n", printBool(st.Ready))
			d.line(2, "Restart Count:\t%d\n", st.RestartCount)
		}
		d.resources(c.Resources)
		for _, pr := range []struct {
			title string
			p     *corev1.Probe
		}{{"Liveness", c.LivenessProbe}, {"Readiness", c.ReadinessProbe}, {"Startup", c.StartupProbe}} {
			if pr.p != nil {
				d.line(2, "%s:\t%s\n", pr.title, Probe(pr.p))
			}
		}
		d.env(c)
		d.mounts(c.VolumeMounts)
	}
}

func (d describer) state(title string, s corev1.ContainerState) {
	switch {
	case s.Running != nil:
		d.line(2, "%s:\tRunning\n", title)
		d.line(3, "Started:\t%s\n", s.Running.StartedAt.Format(time.RFC1123Z))
	case s.Terminated != nil:
		t := s.Terminated
		d.line(2, "%s:\tTerminated\n", title)
		if t.Reason != "" {
			d.line(3, "Reason:\t%s\n", t.Reason)
		}
		if t.Message != "" {
			d.line(3, "Message:\t%s\n", oneLine(t.Message))
		}
		d.line(3, "Exit Code:\t%d\n", t.ExitCode)
		if t.Signal > 0 {
			d.line(3, "Signal:\t%d\n", t.Signal)
		}
		d.line(3, "Started:\t%s\n", t.StartedAt.Format(time.RFC1123Z))
		d.line(3, "Finished:\t%s\n", t.FinishedAt.Format(time.RFC1123Z))
	default:
		d.line(2, "%s:\tWaiting\n", title)
		if s.Waiting != nil && s.Waiting.Reason != "" {
			d.line(3, "Reason:\t%s\n", s.Waiting.Reason)
		}
	}
}

func (d describer) resources(r corev1.ResourceRequirements) {
	for _, l := range []struct {
		title string
		list  corev1.ResourceList
	}{{"Limits", r.Limits}, {"Requests", r.Requests}} {
		if len(l.list) == 0 {
			continue
		}
		d.line(2, "%s:\n", l.title)
		names := make([]string, 0, len(l.list))
		for n := range l.list {
			names = append(names, string(n))
		}
		sort.Strings(names)
		for _, n := range names {
			q := l.list[corev1.ResourceName(n)]
			d.line(3, "%s:\t%s\n", n, q.String())
		}
	}
}

// Probe is a probe as kubectl describe prints it.
func Probe(p *corev1.Probe) string {
	attrs := fmt.Sprintf("delay=%ds timeout=%ds period=%ds successThreshold=%d failureThreshold=%d",
		p.InitialDelaySeconds, p.TimeoutSeconds, p.PeriodSeconds, p.SuccessThreshold, p.FailureThreshold)
	switch {
	case p.Exec != nil:
		return fmt.Sprintf("exec %v %s", p.Exec.Command, attrs)
	case p.HTTPGet != nil:
		u := url.URL{Scheme: strings.ToLower(string(p.HTTPGet.Scheme)), Path: p.HTTPGet.Path, Host: p.HTTPGet.Host}
		if port := p.HTTPGet.Port.String(); port != "" {
			u.Host = net.JoinHostPort(p.HTTPGet.Host, port)
		}
		return fmt.Sprintf("http-get %s %s", u.String(), attrs)
	case p.TCPSocket != nil:
		return fmt.Sprintf("tcp-socket %s:%s %s", p.TCPSocket.Host, p.TCPSocket.Port.String(), attrs)
	case p.GRPC != nil:
		svc := ""
		if p.GRPC.Service != nil {
			svc = *p.GRPC.Service
		}
		return fmt.Sprintf("grpc <pod>:%d %s %s", p.GRPC.Port, svc, attrs)
	}
	return "unknown " + attrs
}

func (d describer) env(c corev1.Container) {
	for i, e := range c.EnvFrom {
		from, name, optional := "", "", false
		switch {
		case e.ConfigMapRef != nil:
			from, name = "ConfigMap", e.ConfigMapRef.Name
			optional = e.ConfigMapRef.Optional != nil && *e.ConfigMapRef.Optional
		case e.SecretRef != nil:
			from, name = "Secret", e.SecretRef.Name
			optional = e.SecretRef.Optional != nil && *e.SecretRef.Optional
		}
		if from != "" {
			if i == 0 {
				d.line(2, "Environment Variables from:\n")
			}
			prefix := ""
			if e.Prefix != "" {
				prefix = fmt.Sprintf(" with prefix '%s'", e.Prefix)
			}
			d.line(3, "%s\t%s%s\tOptional: %t\n", name, from, prefix, optional)
		}
	}
	if len(c.Env) == 0 {
		d.line(2, "Environment:\t<none>\n")
	} else {
		d.line(2, "Environment:\n")
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			for i, s := range strings.Split(e.Value, "\n") {
				if i == 0 {
					d.line(3, "%s:\t%s\n", e.Name, s)
				} else {
					d.line(3, "\t%s\n", s)
				}
			}
		case e.ValueFrom.FieldRef != nil:
			d.line(3, "%s:\t (%s:%s)\n", e.Name, e.ValueFrom.FieldRef.APIVersion, e.ValueFrom.FieldRef.FieldPath)
		case e.ValueFrom.ResourceFieldRef != nil:
			d.line(3, "%s:\t (%s)\n", e.Name, e.ValueFrom.ResourceFieldRef.Resource)
		case e.ValueFrom.SecretKeyRef != nil:
			r := e.ValueFrom.SecretKeyRef
			d.line(3, "%s:\t<set to the key '%s' in secret '%s'>\tOptional: %t\n", e.Name, r.Key, r.Name, r.Optional != nil && *r.Optional)
		case e.ValueFrom.ConfigMapKeyRef != nil:
			r := e.ValueFrom.ConfigMapKeyRef
			d.line(3, "%s:\t<set to the key '%s' of config map '%s'>\tOptional: %t\n", e.Name, r.Key, r.Name, r.Optional != nil && *r.Optional)
		}
	}
}

func (d describer) mounts(ms []corev1.VolumeMount) {
	if len(ms) == 0 {
		d.line(2, "Mounts:\t<none>\n")
		return
	}
	d.line(2, "Mounts:\n")
	sorted := append([]corev1.VolumeMount(nil), ms...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].MountPath < sorted[j].MountPath })
	for _, m := range sorted {
		flags := []string{"rw"}
		if m.ReadOnly {
			flags[0] = "ro"
		}
		if m.SubPath != "" {
			flags = append(flags, fmt.Sprintf("path=%q", m.SubPath))
		}
		d.line(3, "%s from %s (%s)\n", m.MountPath, m.Name, strings.Join(flags, ","))
	}
}

func (d describer) volumes(vs []corev1.Volume) {
	if len(vs) == 0 {
		d.line(0, "Volumes:\t<none>\n")
		return
	}
	d.line(0, "Volumes:\n")
	for _, v := range vs {
		d.line(1, "%s:\n", v.Name)
		s := v.VolumeSource
		switch {
		case s.EmptyDir != nil:
			d.line(2, "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n")
			d.line(2, "Medium:\t%s\n", s.EmptyDir.Medium)
			if s.EmptyDir.SizeLimit != nil {
				d.line(2, "SizeLimit:\t%s\n", s.EmptyDir.SizeLimit.String())
			} else {
				d.line(2, "SizeLimit:\t<unset>\n")
			}
		case s.HostPath != nil:
			typ := ""
			if s.HostPath.Type != nil {
				typ = string(*s.HostPath.Type)
			}
			d.line(2, "Type:\tHostPath (bare host directory volume)\n")
			d.line(2, "Path:\t%s\n", s.HostPath.Path)
			d.line(2, "HostPathType:\t%s\n", typ)
		case s.ConfigMap != nil:
			d.line(2, "Type:\tConfigMap (a volume populated by a ConfigMap)\n")
			d.line(2, "Name:\t%s\n", s.ConfigMap.Name)
			d.line(2, "Optional:\t%t\n", s.ConfigMap.Optional != nil && *s.ConfigMap.Optional)
		case s.Secret != nil:
			d.line(2, "Type:\tSecret (a volume populated by a Secret)\n")
			d.line(2, "SecretName:\t%s\n", s.Secret.SecretName)
			d.line(2, "Optional:\t%t\n", s.Secret.Optional != nil && *s.Secret.Optional)
		case s.Projected != nil:
			d.line(2, "Type:\tProjected (a volume that contains injected data from multiple sources)\n")
			for _, src := range s.Projected.Sources {
				switch {
				case src.ConfigMap != nil:
					d.line(2, "ConfigMapName:\t%s\n", src.ConfigMap.Name)
					d.line(2, "Optional:\t%t\n", src.ConfigMap.Optional != nil && *src.ConfigMap.Optional)
				case src.Secret != nil:
					d.line(2, "SecretName:\t%s\n", src.Secret.Name)
					d.line(2, "Optional:\t%t\n", src.Secret.Optional != nil && *src.Secret.Optional)
				case src.DownwardAPI != nil:
					d.line(2, "DownwardAPI:\ttrue\n")
				}
			}
		case s.DownwardAPI != nil:
			d.line(2, "Type:\tDownwardAPI (a volume populated by information about the pod)\n")
			d.line(2, "Items:\n")
			for _, it := range s.DownwardAPI.Items {
				if it.FieldRef != nil {
					d.line(3, "%s -> %s\n", it.FieldRef.FieldPath, it.Path)
				}
				if it.ResourceFieldRef != nil {
					d.line(3, "%s -> %s\n", it.ResourceFieldRef.Resource, it.Path)
				}
			}
		default:
			d.line(2, "Type:\t<unknown>\n")
		}
	}
}

func (d describer) tolerations(ts []corev1.Toleration) {
	d.line(0, "Tolerations:\t")
	if len(ts) == 0 {
		fmt.Fprintln(d.w, "<none>")
		return
	}
	for i, t := range ts {
		if i > 0 {
			d.line(0, "\t")
		}
		s := t.Key
		if t.Value != "" {
			s += "=" + t.Value
		}
		if t.Operator == corev1.TolerationOpExists && t.Value == "" {
			if t.Key != "" {
				s += " op=Exists"
			} else {
				s = "op=Exists"
			}
		}
		if t.Effect != "" {
			s += ":" + string(t.Effect)
		}
		if t.TolerationSeconds != nil {
			s += fmt.Sprintf(" for %ds", *t.TolerationSeconds)
		}
		fmt.Fprintln(d.w, s)
	}
}

// events prints the pod's events as describe's table: type, reason, age
// ("2m (x3 over 5m)" for repeats), source and message, each message
// prefixed with its container's field path and kept on one line.
func (d describer) events(evs []state.Event) {
	if len(evs) == 0 {
		d.line(0, "Events:\t<none>\n")
		return
	}
	sorted := append([]state.Event(nil), evs...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].LastSeen.Before(sorted[j].LastSeen) })
	d.line(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n")
	d.line(1, "----\t------\t----\t----\t-------\n")
	for _, e := range sorted {
		d.line(1, "%s\t%s\t%s\t%s\t%s\n", e.Type, e.Reason, EventAge(e, d.now), "peapod", EventMessage(e))
	}
}

// EventAge is an event's age as kubectl prints it: "5s", or for repeats
// "5s (x3 over 2m)".
func EventAge(e state.Event, now time.Time) string {
	first := humanSince(e.FirstSeen, now)
	if e.Count > 1 {
		return fmt.Sprintf("%s (x%d over %s)", humanSince(e.LastSeen, now), e.Count, first)
	}
	return first
}

// EventMessage is an event's message on one line: its container's field
// path first, as kubectl describe prints it, and newlines (a probe's
// output) escaped.
func EventMessage(e state.Event) string {
	msg := oneLine(strings.TrimSpace(e.Message))
	if e.Object != "" {
		msg = e.Object + ": " + msg
	}
	return msg
}

func humanSince(t time.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return Since(metav1Time(t), now)
}

// oneLine escapes what would break a line or a column: newlines, tabs and
// other control characters.
func oneLine(s string) string { return escapeTerminal(s) }

func containerPorts(ps []corev1.ContainerPort) (ports, hostPorts string) {
	var p, h []string
	for _, cp := range ps {
		p = append(p, fmt.Sprintf("%d/%s", cp.ContainerPort, cp.Protocol))
		h = append(h, fmt.Sprintf("%d/%s", cp.HostPort, cp.Protocol))
	}
	return strings.Join(p, ", "), strings.Join(h, ", ")
}

func printBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func metav1Time(t time.Time) metav1.Time { return metav1.NewTime(t) }

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}
