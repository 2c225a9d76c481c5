package manifest

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Load decodes, defaults and validates every document of a manifest. It
// fails, naming the file, each invalid pod and every field error, if any
// document is invalid, so that callers create nothing. Warnings are
// prefixed with the pod they concern.
func Load(data []byte, source string) (pods []*corev1.Pod, warnings []string, err error) {
	objs, warnings, err := LoadFiles([]File{{Data: data, Source: source}}, "")
	if err != nil {
		return nil, warnings, err
	}
	return objs.Pods, warnings, nil
}

// File is one manifest file's contents and its name for messages.
type File struct {
	// Data is the file's contents.
	Data []byte
	// Source names it: the path, or "<stdin>".
	Source string
}

// LoadFiles decodes, defaults and validates every document of every file
// (as `podman kube play` takes several): the pods, and the ConfigMaps and
// Secrets they may use. With ns set (the CLI's -n), objects without a
// namespace land in ns and one naming another namespace is an error, as
// kubectl reports it. Like Load it fails, naming each file, document and
// field error, if anything is invalid, so that callers create nothing; at
// least one pod is required over all the files.
func LoadFiles(files []File, ns string) (*Objects, []string, error) {
	all := &Objects{where: map[any]string{}}
	var problems, warnings []string
	for _, f := range files {
		objs, err := DecodeObjects(f.Data, f.Source)
		if err != nil {
			return nil, nil, err
		}
		for k, v := range objs.where {
			all.where[k] = v
		}
		all.Pods = append(all.Pods, objs.Pods...)
		all.ConfigMaps = append(all.ConfigMaps, objs.ConfigMaps...)
		all.Secrets = append(all.Secrets, objs.Secrets...)
	}
	if len(all.Pods) == 0 {
		var names []string
		for _, f := range files {
			names = append(names, f.Source)
		}
		return nil, nil, invalid(fmt.Errorf("%s: no pod documents found", strings.Join(names, ", ")))
	}
	// inNamespace applies -n to one object's namespace.
	inNamespace := func(obj any, have *string) {
		if ns == "" {
			return
		}
		if *have != "" && *have != ns {
			problems = append(problems, fmt.Sprintf("%s: the namespace from the provided object %q does not match the namespace %q. You must pass '--namespace=%s' to perform this operation",
				all.where[obj], *have, ns, *have))
		}
		*have = ns
	}
	seen := map[string]string{}
	// unique reports a second object of one kind, namespace and name.
	unique := func(obj any, kind, namespace, name, id string) {
		key := kind + "/" + namespace + "/" + name
		if first, dup := seen[key]; dup && name != "" {
			problems = append(problems, fmt.Sprintf("%s: metadata.name: Duplicate value: %q (also %s)", id, name, first))
		}
		seen[key] = all.where[obj]
	}
	for _, pod := range all.Pods {
		inNamespace(pod, &pod.Namespace)
		SetDefaults(pod)
		w, errs := Validate(pod)
		id := fmt.Sprintf("%s: pod %q", all.where[pod], pod.Namespace+"/"+pod.Name)
		for _, msg := range w {
			warnings = append(warnings, fmt.Sprintf("%s: %s", id, msg))
		}
		for _, e := range errs {
			problems = append(problems, fmt.Sprintf("%s: %s", id, e.Error()))
		}
		unique(pod, "Pod", pod.Namespace, pod.Name, id)
	}
	for _, cm := range all.ConfigMaps {
		inNamespace(cm, &cm.Namespace)
		SetConfigMapDefaults(cm)
		id := all.where[cm] + ": " + objectID("ConfigMap", cm.Namespace, cm.Name)
		for _, e := range ValidateConfigMap(cm) {
			problems = append(problems, fmt.Sprintf("%s: %s", id, e.Error()))
		}
		unique(cm, "ConfigMap", cm.Namespace, cm.Name, id)
	}
	for _, s := range all.Secrets {
		inNamespace(s, &s.Namespace)
		SetSecretDefaults(s)
		id := all.where[s] + ": " + objectID("Secret", s.Namespace, s.Name)
		// The field errors name keys, never values: Invalid's value is
		// the key here, and TooLong prints no value.
		for _, e := range ValidateSecret(s) {
			problems = append(problems, fmt.Sprintf("%s: %s", id, e.Error()))
		}
		unique(s, "Secret", s.Namespace, s.Name, id)
	}
	for _, pod := range all.Pods {
		id := fmt.Sprintf("%s: pod %q", all.where[pod], pod.Namespace+"/"+pod.Name)
		for _, e := range validatePullSecrets(pod, all.Secrets) {
			problems = append(problems, fmt.Sprintf("%s: %s", id, e.Error()))
		}
	}
	if len(problems) > 0 {
		return nil, warnings, invalid(fmt.Errorf("%s", strings.Join(problems, "\n")))
	}
	return all, warnings, nil
}
