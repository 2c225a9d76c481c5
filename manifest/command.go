package manifest

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// defaultPath is the PATH a container gets when neither the image nor the
// manifest sets one (the value containerd and Docker use).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// podFields are the downward-API values a container's env can reference.
type podFields struct {
	// name, namespace, uid and ip resolve metadata.name, metadata.namespace,
	// metadata.uid and status.podIP.
	name, namespace, uid, ip string
}

// value resolves a supported fieldPath (Validate refused the others).
func (f podFields) value(fieldPath string) string {
	switch fieldPath {
	case fieldPodName:
		return f.name
	case fieldPodNamespace:
		return f.namespace
	case fieldPodUID:
		return f.uid
	case fieldPodIP:
		return f.ip
	}
	return ""
}

// processArgs applies Kubernetes' rules against the image config: command
// replaces the entrypoint and drops the image's cmd; args replace cmd.
// $(VAR) references in command and args expand from the container's env.
func processArgs(c *corev1.Container, cfg ImageConfig, env map[string]string) []string {
	m := mappingFor(env)
	var argv []string
	switch {
	case len(c.Command) > 0:
		argv = append(expandAll(c.Command, m), expandAll(c.Args, m)...)
	case len(c.Args) > 0:
		argv = append(append(argv, cfg.Entrypoint...), expandAll(c.Args, m)...)
	default:
		argv = append(append(argv, cfg.Entrypoint...), cfg.Cmd...)
	}
	return argv
}

// mergeEnv builds the process env: HOSTNAME, then the image's env, then the
// container's (a later definition replaces an earlier one in place, as in
// containerd), and a default PATH when none was given.
func mergeEnv(hostname string, image []string, order []string, vals map[string]string) []string {
	var out []string
	index := map[string]int{}
	set := func(k, v string) {
		kv := k + "=" + v
		if i, ok := index[k]; ok {
			out[i] = kv
			return
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	set("HOSTNAME", hostname)
	for _, kv := range image {
		k, v, _ := strings.Cut(kv, "=")
		set(k, v)
	}
	for _, k := range order {
		set(k, vals[k])
	}
	if _, ok := index["PATH"]; !ok {
		set("PATH", defaultPath)
	}
	return out
}

// expandAll expands every element of in.
func expandAll(in []string, mapping func(string) string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = expand(s, mapping)
	}
	return out
}

// mappingFor returns the kubelet's mapping: a defined variable's value, an
// undefined reference left as written.
func mappingFor(vals map[string]string) func(string) string {
	return func(name string) string {
		if v, ok := vals[name]; ok {
			return v
		}
		return "$(" + name + ")"
	}
}

// expand replaces $(VAR) with mapping(VAR); "$$" is an escaped "$"; any
// other '$' (including an unterminated "$(") is kept as written. This is the
// algorithm of Kubernetes' third_party/forked/golang/expansion.
func expand(input string, mapping func(string) string) string {
	var b strings.Builder
	checkpoint := 0
	for cursor := 0; cursor < len(input); cursor++ {
		if input[cursor] != '$' || cursor+1 >= len(input) {
			continue
		}
		b.WriteString(input[checkpoint:cursor])
		read, isVar, advance := readVariable(input[cursor+1:])
		if isVar {
			b.WriteString(mapping(read))
		} else {
			b.WriteString(read)
		}
		cursor += advance
		checkpoint = cursor + 1
	}
	return b.String() + input[checkpoint:]
}

// readVariable reads what follows a '$': the text to emit (or the variable
// name), whether it is a variable, and how many bytes it consumed.
func readVariable(in string) (string, bool, int) {
	switch in[0] {
	case '$':
		return "$", false, 1
	case '(':
		if end := strings.IndexByte(in[1:], ')'); end >= 0 {
			return in[1 : end+1], true, end + 2
		}
		return "$(", false, 1
	default:
		return "$" + in[:1], false, 1
	}
}
