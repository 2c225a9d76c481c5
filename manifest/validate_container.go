package manifest

import (
	"fmt"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The downward-API fields peapod resolves in env[].valueFrom.fieldRef.
const (
	fieldPodName      = "metadata.name"
	fieldPodNamespace = "metadata.namespace"
	fieldPodUID       = "metadata.uid"
	fieldPodIP        = "status.podIP"
)

var supportedFieldPaths = []string{fieldPodName, fieldPodNamespace, fieldPodUID, fieldPodIP}

// containerKind distinguishes init from app containers for the rules that
// differ between them.
type containerKind int

const (
	initContainer containerKind = iota
	appContainer
)

// podContext is what container validation needs to know about the pod.
type podContext struct {
	// volumes are the declared volume names.
	volumes sets.Set[string]
	// names are the container names seen so far (init and app share one space).
	names sets.Set[string]
	// ports maps "port/protocol" of app containers to the container declaring it.
	ports map[string]string
	// hostNetwork changes the hostPort rules.
	hostNetwork bool
	// podSC is the pod-level security context (may be nil).
	podSC *corev1.PodSecurityContext
}

// validateContainers checks init and app containers.
func validateContainers(s *corev1.PodSpec, volumes sets.Set[string], p *field.Path) ([]string, field.ErrorList) {
	ctx := &podContext{volumes: volumes, names: sets.New[string](), ports: map[string]string{},
		hostNetwork: s.HostNetwork, podSC: s.SecurityContext}
	var warnings []string
	var errs field.ErrorList
	for i := range s.InitContainers {
		w, e := ctx.validateContainer(&s.InitContainers[i], initContainer, p.Child("initContainers").Index(i))
		warnings, errs = append(warnings, w...), append(errs, e...)
	}
	if len(s.Containers) == 0 {
		errs = append(errs, field.Required(p.Child("containers"), ""))
	}
	for i := range s.Containers {
		w, e := ctx.validateContainer(&s.Containers[i], appContainer, p.Child("containers").Index(i))
		warnings, errs = append(warnings, w...), append(errs, e...)
	}
	return warnings, errs
}

// validateContainer checks one container.
func (ctx *podContext) validateContainer(c *corev1.Container, kind containerKind, p *field.Path) ([]string, field.ErrorList) {
	var warnings []string
	errs := ctx.validateContainerName(c.Name, p.Child("name"))
	if c.Image == "" {
		errs = append(errs, field.Required(p.Child("image"), ""))
	}
	errs = append(errs, validatePullPolicy(c.ImagePullPolicy, p.Child("imagePullPolicy"))...)
	if c.TerminationMessagePath != defaultTerminationMessagePath || c.TerminationMessagePolicy != corev1.TerminationMessageReadFile {
		warnings = append(warnings, fmt.Sprintf("%s: ignored: peapod reads no termination message", p.Child("terminationMessagePath")))
	}
	w, e := validateResources(&c.Resources, p.Child("resources"))
	warnings, errs = append(warnings, w...), append(errs, e...)
	errs = append(errs, ctx.validatePorts(c, kind, p.Child("ports"))...)
	errs = append(errs, validateEnv(c.Env, p.Child("env"))...)
	errs = append(errs, validateEnvFrom(c.EnvFrom, p.Child("envFrom"))...)
	errs = append(errs, ctx.validateVolumeMounts(c.VolumeMounts, p.Child("volumeMounts"))...)
	w, e = ctx.validateSecurityContext(c.SecurityContext, p.Child("securityContext"))
	warnings, errs = append(warnings, w...), append(errs, e...)
	errs = append(errs, validateLifecycle(c.Lifecycle, kind, p.Child("lifecycle"))...)
	errs = append(errs, validateProbes(c, kind, p)...)
	return warnings, errs
}

// validateContainerName checks the name is a unique DNS-1123 label.
func (ctx *podContext) validateContainerName(name string, p *field.Path) field.ErrorList {
	switch {
	case name == "":
		return field.ErrorList{field.Required(p, "")}
	case ctx.names.Has(name):
		return field.ErrorList{field.Duplicate(p, name)}
	}
	ctx.names.Insert(name)
	return dns1123Label(p, name)
}

// validatePullPolicy checks imagePullPolicy (set by SetDefaults).
func validatePullPolicy(pp corev1.PullPolicy, p *field.Path) field.ErrorList {
	policies := []corev1.PullPolicy{corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever}
	if pp == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	if !sets.New(policies...).Has(pp) {
		return field.ErrorList{field.NotSupported(p, pp, policies)}
	}
	return nil
}

var protocols = []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}

// validatePorts checks port numbers, names, protocols, hostPort, and that no
// two app containers declare the same port: unlike Kubernetes (which only
// warns), this is an error, because the containers share one network
// namespace and the second one's bind would fail.
func (ctx *podContext) validatePorts(c *corev1.Container, kind containerKind, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := sets.New[string]()
	for i, port := range c.Ports {
		pp := p.Index(i)
		if port.Name != "" {
			for _, msg := range validation.IsValidPortName(port.Name) {
				errs = append(errs, field.Invalid(pp.Child("name"), port.Name, msg))
			}
			if names.Has(port.Name) {
				errs = append(errs, field.Duplicate(pp.Child("name"), port.Name))
			}
			names.Insert(port.Name)
		}
		errs = append(errs, validatePortNum(pp.Child("containerPort"), port.ContainerPort)...)
		if !sets.New(protocols...).Has(port.Protocol) {
			errs = append(errs, field.NotSupported(pp.Child("protocol"), port.Protocol, protocols))
		}
		errs = append(errs, ctx.validateHostPort(port, pp)...)
		if kind != appContainer {
			continue
		}
		key := fmt.Sprintf("%d/%s", port.ContainerPort, port.Protocol)
		if other, ok := ctx.ports[key]; ok {
			errs = append(errs, field.Invalid(pp.Child("containerPort"), port.ContainerPort,
				fmt.Sprintf("port %s is already declared by container %q: the containers of a pod share one network namespace", key, other)))
			continue
		}
		ctx.ports[key] = c.Name
	}
	return errs
}

// validateHostPort applies the API's hostNetwork rule. Without hostNetwork a
// hostPort is mapped to the pod (cni.MapPorts); a port another pod holds is
// refused when the pod starts, not here.
func (ctx *podContext) validateHostPort(port corev1.ContainerPort, p *field.Path) field.ErrorList {
	if port.HostPort == 0 || !ctx.hostNetwork {
		return nil
	}
	if port.HostPort != port.ContainerPort {
		return field.ErrorList{field.Invalid(p.Child("hostPort"), port.HostPort, "must match `containerPort` when `hostNetwork` is true")}
	}
	return nil
}

// validatePortNum checks 1..65535.
func validatePortNum(p *field.Path, port int32) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsValidPortNum(int(port)) {
		errs = append(errs, field.Invalid(p, port, msg))
	}
	return errs
}

// validatePortNumOrName checks a probe port: a number or an IANA_SVC_NAME.
func validatePortNumOrName(p *field.Path, port intstr.IntOrString) field.ErrorList {
	if port.Type == intstr.Int {
		return validatePortNum(p, port.IntVal)
	}
	var errs field.ErrorList
	for _, msg := range validation.IsValidPortName(port.StrVal) {
		errs = append(errs, field.Invalid(p, port.StrVal, msg))
	}
	return errs
}

// validateEnv checks names (relaxed, as the API server has since 1.34) and the downward-API references.
func validateEnv(env []corev1.EnvVar, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, e := range env {
		ep := p.Index(i)
		if e.Name == "" {
			errs = append(errs, field.Required(ep.Child("name"), ""))
		} else {
			for _, msg := range validation.IsRelaxedEnvVarName(e.Name) {
				errs = append(errs, field.Invalid(ep.Child("name"), e.Name, msg))
			}
		}
		if e.ValueFrom == nil {
			continue
		}
		if e.Value != "" {
			errs = append(errs, field.Invalid(ep.Child("valueFrom"), "", "may not be specified when `value` is not empty"))
		}
		errs = append(errs, validateEnvSource(e.ValueFrom, ep.Child("valueFrom"))...)
	}
	return errs
}

// validateFieldRef allows the fields peapod can resolve; p is valueFrom.
func validateFieldRef(ref *corev1.ObjectFieldSelector, vp *field.Path) field.ErrorList {
	if ref == nil {
		return field.ErrorList{field.Required(vp, "must specify one of: `fieldRef`")}
	}
	p := vp.Child("fieldRef")
	var errs field.ErrorList
	if ref.APIVersion != "v1" {
		errs = append(errs, field.NotSupported(p.Child("apiVersion"), ref.APIVersion, []string{"v1"}))
	}
	if ref.FieldPath == "" {
		return append(errs, field.Required(p.Child("fieldPath"), ""))
	}
	if !sets.New(supportedFieldPaths...).Has(ref.FieldPath) {
		errs = append(errs, field.NotSupported(p.Child("fieldPath"), ref.FieldPath, supportedFieldPaths))
	}
	return errs
}

// validateVolumeMounts checks references, paths and sub-paths.
func (ctx *podContext) validateVolumeMounts(mounts []corev1.VolumeMount, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	paths := sets.New[string]()
	for i, m := range mounts {
		mp := p.Index(i)
		switch {
		case m.Name == "":
			errs = append(errs, field.Required(mp.Child("name"), ""))
		case !ctx.volumes.Has(m.Name):
			errs = append(errs, field.NotFound(mp.Child("name"), m.Name))
		}
		switch {
		case m.MountPath == "":
			errs = append(errs, field.Required(mp.Child("mountPath"), ""))
		case !path.IsAbs(m.MountPath):
			errs = append(errs, field.Invalid(mp.Child("mountPath"), m.MountPath, "must be an absolute path"))
		case paths.Has(path.Clean(m.MountPath)):
			errs = append(errs, field.Invalid(mp.Child("mountPath"), m.MountPath, "must be unique"))
		}
		paths.Insert(path.Clean(m.MountPath))
		errs = append(errs, validateSubPath(m.SubPath, mp.Child("subPath"))...)
		if mode := m.MountPropagation; mode != nil && *mode != corev1.MountPropagationNone {
			errs = append(errs, field.NotSupported(mp.Child("mountPropagation"), *mode,
				[]corev1.MountPropagationMode{corev1.MountPropagationNone}))
		}
		errs = append(errs, validateRecursiveReadOnly(m, mp.Child("recursiveReadOnly"))...)
	}
	return errs
}

// validateSubPath requires a relative path that does not climb out of the
// volume (the init stage still resolves it inside the volume, as symlinks
// could climb too).
func validateSubPath(sub string, p *field.Path) field.ErrorList {
	switch {
	case sub == "":
		return nil
	case path.IsAbs(sub):
		return field.ErrorList{field.Invalid(p, sub, "must be a relative path")}
	case hasDotDot(sub):
		return field.ErrorList{field.Invalid(p, sub, "must not contain '..'")}
	}
	return nil
}

// validateSecurityContext checks a container security context together
// with the pod-level one it overrides.
func (ctx *podContext) validateSecurityContext(sc *corev1.SecurityContext, p *field.Path) ([]string, field.ErrorList) {
	var errs field.ErrorList
	if sc != nil {
		errs = append(errs, validateID(p.Child("runAsUser"), sc.RunAsUser)...)
		errs = append(errs, validateID(p.Child("runAsGroup"), sc.RunAsGroup)...)
		errs = append(errs, validateCapabilities(sc.Capabilities, p.Child("capabilities"))...)
		errs = append(errs, validateEscalation(sc, p)...)
		if pm := sc.ProcMount; pm != nil && *pm != corev1.DefaultProcMount {
			errs = append(errs, field.NotSupported(p.Child("procMount"), *pm, []corev1.ProcMountType{corev1.DefaultProcMount}))
		}
	}
	errs = append(errs, ctx.validateNonRoot(sc, p)...)
	if sc == nil {
		return nil, errs
	}
	return nil, append(errs, validateSeccomp(sc.SeccompProfile, p.Child("seccompProfile"))...)
}

// validateEscalation applies the API's allowPrivilegeEscalation rules.
func validateEscalation(sc *corev1.SecurityContext, p *field.Path) field.ErrorList {
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		return nil
	}
	if sc.Privileged != nil && *sc.Privileged {
		return field.ErrorList{field.Invalid(p, sc, "cannot set `allowPrivilegeEscalation` to false and `privileged` to true")}
	}
	if sc.Capabilities != nil {
		for _, c := range sc.Capabilities.Add {
			if capName(c) == "CAP_SYS_ADMIN" {
				return field.ErrorList{field.Invalid(p, sc, "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN")}
			}
		}
	}
	return nil
}

// validateNonRoot refuses runAsNonRoot with an effective runAsUser of 0,
// naming the field that set the uid.
func (ctx *podContext) validateNonRoot(sc *corev1.SecurityContext, p *field.Path) field.ErrorList {
	nonRoot, uid, uidPath := false, (*int64)(nil), p.Child("runAsUser")
	if ps := ctx.podSC; ps != nil {
		nonRoot = ps.RunAsNonRoot != nil && *ps.RunAsNonRoot
		uid = ps.RunAsUser
		uidPath = field.NewPath("spec", "securityContext", "runAsUser")
	}
	if sc != nil && sc.RunAsNonRoot != nil {
		nonRoot = *sc.RunAsNonRoot
	}
	if sc != nil && sc.RunAsUser != nil {
		uid, uidPath = sc.RunAsUser, p.Child("runAsUser")
	}
	if !nonRoot || uid == nil || *uid != 0 {
		return nil
	}
	// The pod-level pair is reported once, by validatePodSecurityContext.
	if sc == nil || (sc.RunAsUser == nil && sc.RunAsNonRoot == nil) {
		return nil
	}
	return field.ErrorList{field.Invalid(uidPath, *uid, "must not be 0 when `runAsNonRoot` is true")}
}

// validateCapabilities checks capability names ("ALL" included).
func validateCapabilities(caps *corev1.Capabilities, p *field.Path) field.ErrorList {
	if caps == nil {
		return nil
	}
	var errs field.ErrorList
	check := func(lp *field.Path, list []corev1.Capability) {
		for i, c := range list {
			if strings.EqualFold(string(c), "ALL") {
				continue
			}
			if !knownCapabilities.Has(capName(c)) {
				errs = append(errs, field.Invalid(lp.Index(i), string(c), "unknown capability"))
			}
		}
	}
	check(p.Child("add"), caps.Add)
	check(p.Child("drop"), caps.Drop)
	return errs
}

// validateLifecycle checks exec hooks; regular init containers may have none.
func validateLifecycle(l *corev1.Lifecycle, kind containerKind, p *field.Path) field.ErrorList {
	if l == nil || (l.PostStart == nil && l.PreStop == nil) {
		return nil
	}
	if kind == initContainer {
		return field.ErrorList{field.Forbidden(p, "may not be set for init containers without restartPolicy=Always")}
	}
	var errs field.ErrorList
	hooks := []struct {
		name string
		h    *corev1.LifecycleHandler
	}{{"postStart", l.PostStart}, {"preStop", l.PreStop}}
	for _, hook := range hooks {
		h, hp := hook.h, p.Child(hook.name)
		if h == nil {
			continue
		}
		switch {
		case h.Exec == nil && h.HTTPGet == nil && h.TCPSocket == nil && h.Sleep == nil:
			errs = append(errs, field.Required(hp, "must specify a handler type"))
		case h.Exec != nil && len(h.Exec.Command) == 0:
			errs = append(errs, field.Required(hp.Child("exec", "command"), ""))
		}
	}
	return errs
}
