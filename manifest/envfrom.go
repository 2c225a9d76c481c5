package manifest

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateEnvSource checks env[].valueFrom as the API server does, for the
// sources peapod resolves: exactly one of fieldRef, configMapKeyRef and
// secretKeyRef.
func validateEnvSource(from *corev1.EnvVarSource, vp *field.Path) field.ErrorList {
	n := 0
	var errs field.ErrorList
	if from.FieldRef != nil {
		n++
		errs = append(errs, validateFieldRef(from.FieldRef, vp)...)
	}
	if r := from.ConfigMapKeyRef; r != nil {
		n++
		errs = append(errs, validateKeySelector(r.Name, r.Key, vp.Child("configMapKeyRef"))...)
	}
	if r := from.SecretKeyRef; r != nil {
		n++
		errs = append(errs, validateKeySelector(r.Name, r.Key, vp.Child("secretKeyRef"))...)
	}
	switch {
	case n == 0:
		errs = append(errs, field.Required(vp, "must specify one of: `fieldRef`, `configMapKeyRef` or `secretKeyRef`"))
	case n > 1:
		errs = append(errs, field.Invalid(vp, "", "may not have more than one field specified at a time"))
	}
	return errs
}

// validateKeySelector checks a configMapKeyRef or secretKeyRef: a valid
// object name and key.
func validateKeySelector(name, key string, p *field.Path) field.ErrorList {
	errs := validateRefName(name, p.Child("name"))
	if key == "" {
		return append(errs, field.Required(p.Child("key"), ""))
	}
	return append(errs, configMapKey(p.Child("key"), key)...)
}

// validateRefName checks the name of a referenced ConfigMap or Secret.
func validateRefName(name string, p *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Subdomain(name) {
		errs = append(errs, field.Invalid(p, name, msg))
	}
	return errs
}

// validateEnvFrom checks envFrom as the API server does: a valid prefix and
// exactly one of configMapRef and secretRef.
func validateEnvFrom(from []corev1.EnvFromSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, f := range from {
		ep := p.Index(i)
		if f.Prefix != "" {
			for _, msg := range validation.IsRelaxedEnvVarName(f.Prefix) {
				errs = append(errs, field.Invalid(ep.Child("prefix"), f.Prefix, msg))
			}
		}
		n := 0
		if f.ConfigMapRef != nil {
			n++
			errs = append(errs, validateRefName(f.ConfigMapRef.Name, ep.Child("configMapRef", "name"))...)
		}
		if f.SecretRef != nil {
			n++
			errs = append(errs, validateRefName(f.SecretRef.Name, ep.Child("secretRef", "name"))...)
		}
		switch {
		case n == 0:
			errs = append(errs, field.Invalid(ep, "", "must specify one of: `configMapRef` or `secretRef`"))
		case n > 1:
			errs = append(errs, field.Invalid(ep, "", "may not have more than one field specified at a time"))
		}
	}
	return errs
}

// Sources are the ConfigMaps and Secrets of a pod's namespace that the pod
// references, by name: what is stored with the pod, since peapod has no API
// server to read them from later.
type Sources struct {
	// ConfigMaps and Secrets are keyed by name.
	ConfigMaps map[string]*corev1.ConfigMap `json:"configMaps,omitempty"`
	Secrets    map[string]*corev1.Secret    `json:"secrets,omitempty"`
}

// SourcesFor picks the ConfigMaps and Secrets of the pod's namespace that
// its containers reference (a reference to one not given is resolved, and
// reported, when the container's config is built).
func (o *Objects) SourcesFor(pod *corev1.Pod) *Sources {
	cms, secrets := referencedNames(pod)
	src := &Sources{ConfigMaps: map[string]*corev1.ConfigMap{}, Secrets: map[string]*corev1.Secret{}}
	for _, cm := range o.ConfigMaps {
		if cm.Namespace == pod.Namespace && cms[cm.Name] {
			src.ConfigMaps[cm.Name] = cm
		}
	}
	for _, s := range o.Secrets {
		if s.Namespace == pod.Namespace && secrets[s.Name] {
			src.Secrets[s.Name] = s
		}
	}
	return src
}

// referencedNames lists the ConfigMaps and Secrets a pod's containers name.
func referencedNames(pod *corev1.Pod) (cms, secrets map[string]bool) {
	cms, secrets = map[string]bool{}, map[string]bool{}
	for _, c := range allContainers(pod) {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
				cms[e.ValueFrom.ConfigMapKeyRef.Name] = true
			}
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				secrets[e.ValueFrom.SecretKeyRef.Name] = true
			}
		}
		for _, f := range c.EnvFrom {
			if f.ConfigMapRef != nil {
				cms[f.ConfigMapRef.Name] = true
			}
			if f.SecretRef != nil {
				secrets[f.SecretRef.Name] = true
			}
		}
	}
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.ConfigMap != nil:
			cms[v.ConfigMap.Name] = true
		case v.Secret != nil:
			secrets[v.Secret.SecretName] = true
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if s.ConfigMap != nil {
					cms[s.ConfigMap.Name] = true
				}
				if s.Secret != nil {
					secrets[s.Secret.Name] = true
				}
			}
		}
	}
	return cms, secrets
}

// allContainers returns init then app containers.
func allContainers(pod *corev1.Pod) []*corev1.Container {
	var out []*corev1.Container
	for i := range pod.Spec.InitContainers {
		out = append(out, &pod.Spec.InitContainers[i])
	}
	for i := range pod.Spec.Containers {
		out = append(out, &pod.Spec.Containers[i])
	}
	return out
}

// configError is the kubelet's CreateContainerConfigError for a container
// whose env (or volume) names a ConfigMap or Secret, or a key, that does not
// exist and is not optional; msg is the kubelet's message.
func configError(c *corev1.Container, msg string) error {
	return fmt.Errorf("container %q: CreateContainerConfigError: %s: %w", c.Name, msg, ErrContainerConfig)
}

// envFromSources resolves a container's envFrom as the kubelet does: each
// source in order (a later one replaces an earlier key), each key with the
// prefix; a key that is not a valid variable name is skipped with a
// warning naming the keys (never the values). A missing source is a
// CreateContainerConfigError unless optional.
func envFromSources(c *corev1.Container, ns string, src *Sources) (order []string, vals map[string]string, warnings []string, err error) {
	vals = map[string]string{}
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			order = append(order, k)
		}
		vals[k] = v
	}
	for _, f := range c.EnvFrom {
		var kind, name string
		var data map[string]string
		switch {
		case f.ConfigMapRef != nil:
			kind, name = "configMap", f.ConfigMapRef.Name
			cm, ok := src.ConfigMaps[name]
			if !ok {
				if f.ConfigMapRef.Optional != nil && *f.ConfigMapRef.Optional {
					continue
				}
				return nil, nil, nil, configError(c, fmt.Sprintf("configmap %q not found", name))
			}
			data = cm.Data
		case f.SecretRef != nil:
			kind, name = "secret", f.SecretRef.Name
			s, ok := src.Secrets[name]
			if !ok {
				if f.SecretRef.Optional != nil && *f.SecretRef.Optional {
					continue
				}
				return nil, nil, nil, configError(c, fmt.Sprintf("secret %q not found", name))
			}
			data = map[string]string{}
			for k, v := range s.Data {
				data[k] = string(v)
			}
		default:
			continue
		}
		var invalidKeys []string
		for _, k := range slices.Sorted(maps.Keys(data)) {
			if len(validation.IsRelaxedEnvVarName(f.Prefix+k)) > 0 {
				invalidKeys = append(invalidKeys, f.Prefix+k)
				continue
			}
			set(f.Prefix+k, data[k])
		}
		if len(invalidKeys) > 0 {
			// The kubelet's InvalidEnvironmentVariableNames event.
			warnings = append(warnings, fmt.Sprintf("container %q: Keys [%s] from the EnvFrom %s %s/%s were skipped since they are considered invalid environment variable names.",
				c.Name, strings.Join(invalidKeys, ", "), kind, ns, name))
		}
	}
	return order, vals, warnings, nil
}

// keyRefValue resolves env[].valueFrom.configMapKeyRef or secretKeyRef;
// ok is false for an optional reference that resolves to nothing (the
// variable is then not set, as with the kubelet).
func keyRefValue(c *corev1.Container, ns string, from *corev1.EnvVarSource, src *Sources) (v string, ok bool, err error) {
	if r := from.ConfigMapKeyRef; r != nil {
		optional := r.Optional != nil && *r.Optional
		cm, found := src.ConfigMaps[r.Name]
		if !found {
			if optional {
				return "", false, nil
			}
			return "", false, configError(c, fmt.Sprintf("configmap %q not found", r.Name))
		}
		// Data only: the kubelet does not read binaryData into env.
		if v, found := cm.Data[r.Key]; found {
			return v, true, nil
		}
		if optional {
			return "", false, nil
		}
		return "", false, configError(c, fmt.Sprintf("couldn't find key %s in ConfigMap %s/%s", r.Key, ns, r.Name))
	}
	r := from.SecretKeyRef
	optional := r.Optional != nil && *r.Optional
	s, found := src.Secrets[r.Name]
	if !found {
		if optional {
			return "", false, nil
		}
		return "", false, configError(c, fmt.Sprintf("secret %q not found", r.Name))
	}
	if b, found := s.Data[r.Key]; found {
		return string(b), true, nil
	}
	if optional {
		return "", false, nil
	}
	return "", false, configError(c, fmt.Sprintf("couldn't find key %s in Secret %s/%s", r.Key, ns, r.Name))
}

// CheckSources resolves every container's env references and every
// volume's projection against src, so that a missing ConfigMap, Secret or
// key is reported before anything of the pod is created.
func CheckSources(pod *corev1.Pod, src *Sources) error {
	if _, err := Projections(pod, "", src); err != nil {
		return fmt.Errorf("pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	for _, c := range allContainers(pod) {
		if _, _, _, err := resolveEnv(c, pod, src, podFields{}); err != nil {
			return fmt.Errorf("pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
	}
	return nil
}

// resolveEnv is containerEnv with the kubelet's full order: envFrom first,
// then env, whose entries replace envFrom's and expand $(VAR) against what
// precedes them; configMapKeyRef and secretKeyRef read src.
func resolveEnv(c *corev1.Container, pod *corev1.Pod, src *Sources, f podFields) (order []string, vals map[string]string, warnings []string, err error) {
	if src == nil {
		src = &Sources{}
	}
	order, vals, warnings, err = envFromSources(c, pod.Namespace, src)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, e := range c.Env {
		v := expand(e.Value, mappingFor(vals))
		if e.ValueFrom != nil {
			switch {
			case e.ValueFrom.FieldRef != nil:
				v = f.value(e.ValueFrom.FieldRef.FieldPath)
			case e.ValueFrom.ConfigMapKeyRef != nil || e.ValueFrom.SecretKeyRef != nil:
				got, ok, err := keyRefValue(c, pod.Namespace, e.ValueFrom, src)
				if err != nil {
					return nil, nil, nil, err
				}
				if !ok {
					continue
				}
				v = got
			}
		}
		if _, ok := vals[e.Name]; !ok {
			order = append(order, e.Name)
		}
		vals[e.Name] = v
	}
	return order, vals, warnings, nil
}
