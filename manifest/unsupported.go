package manifest

import (
	"encoding/json"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/peapod/peapod/internal/jsonvalue"
)

// The allow-list below decides, field by field, what peapod does with a
// manifest: honour it, ignore it with a warning, or refuse it. Walking the
// pod's JSON against an allow-list (rather than checking a deny-list of
// known-unsupported fields) means a field added to k8s.io/api later is
// refused until someone decides peapod honours it.

// ruleKind says what a rule does with a present (non-zero) value.
type ruleKind int

const (
	// allowed: honoured; typed validation checks the value.
	allowed ruleKind = iota
	// warned: accepted, ignored, and reported as a warning.
	warned
	// object: a JSON object whose keys have rules of their own.
	object
	// list: a JSON array whose elements share one rule.
	list
)

// rule is one node of the allow-list.
type rule struct {
	// kind is what the rule does.
	kind ruleKind
	// msg is the warning (warned) or, for an object, the detail of the
	// Forbidden error on a key it does not list.
	msg string
	// fields are an object's known keys.
	fields map[string]*rule
	// elem is a list's element rule.
	elem *rule
}

// notSupported is the Forbidden detail of a field peapod does not honour.
const notSupported = "not supported by peapod"

var allow = &rule{kind: allowed}

// warn builds an ignored-with-warning rule.
func warn(msg string) *rule { return &rule{kind: warned, msg: msg} }

// obj builds an object rule refusing unlisted keys with notSupported.
func obj(fields map[string]*rule) *rule {
	return &rule{kind: object, msg: notSupported, fields: fields}
}

// objMsg builds an object rule refusing unlisted keys with msg.
func objMsg(msg string, fields map[string]*rule) *rule {
	return &rule{kind: object, msg: msg, fields: fields}
}

// listOf builds a list rule.
func listOf(elem *rule) *rule { return &rule{kind: list, elem: elem} }

const (
	warnScheduling = "ignored: peapod runs on this machine only and does no scheduling"
	warnResize     = "ignored: peapod does not resize containers in place"
	warnPodLevel   = "ignored: peapod sizes the pod cgroup from its containers' resources"
	warnAppArmor   = "ignored: peapod applies no AppArmor profile"
	warnWindows    = "ignored on Linux"
	warnMeta       = "ignored: set by peapod"
	warnFSGroup    = "ignored: volume ownership is not changed"
)

var probeRule = obj(map[string]*rule{
	"exec": obj(map[string]*rule{"command": allow}),
	"httpGet": obj(map[string]*rule{
		"path": allow, "port": allow, "host": allow, "scheme": allow,
		"httpHeaders": listOf(obj(map[string]*rule{"name": allow, "value": allow})),
	}),
	"tcpSocket":           obj(map[string]*rule{"port": allow, "host": allow}),
	"grpc":                obj(map[string]*rule{"port": allow, "service": allow}),
	"initialDelaySeconds": allow, "timeoutSeconds": allow, "periodSeconds": allow,
	"successThreshold": allow, "failureThreshold": allow, "terminationGracePeriodSeconds": allow,
})

// keyItemsRule is a configMap or secret volume's items.
var keyItemsRule = listOf(obj(map[string]*rule{"key": allow, "path": allow, "mode": allow}))

// downwardItemsRule is a downwardAPI volume's items: fieldRef only.
var downwardItemsRule = listOf(obj(map[string]*rule{
	"path": allow, "mode": allow,
	"fieldRef": obj(map[string]*rule{"apiVersion": allow, "fieldPath": allow}),
}))

var hookRule = objMsg("only exec lifecycle hooks are supported", map[string]*rule{
	"exec": obj(map[string]*rule{"command": allow}),
})

var containerRule = obj(map[string]*rule{
	"name": allow, "image": allow, "imagePullPolicy": allow, "command": allow, "args": allow, "workingDir": allow,
	"ports": listOf(obj(map[string]*rule{"name": allow, "containerPort": allow, "protocol": allow, "hostPort": allow})),
	"env": listOf(obj(map[string]*rule{
		"name": allow, "value": allow,
		"valueFrom": objMsg("only fieldRef, configMapKeyRef and secretKeyRef are supported", map[string]*rule{
			"fieldRef":        obj(map[string]*rule{"apiVersion": allow, "fieldPath": allow}),
			"configMapKeyRef": obj(map[string]*rule{"name": allow, "key": allow, "optional": allow}),
			"secretKeyRef":    obj(map[string]*rule{"name": allow, "key": allow, "optional": allow}),
		}),
	})),
	"envFrom": listOf(obj(map[string]*rule{
		"prefix":       allow,
		"configMapRef": obj(map[string]*rule{"name": allow, "optional": allow}),
		"secretRef":    obj(map[string]*rule{"name": allow, "optional": allow}),
	})),
	// claims (dynamic resource allocation) are refused as unlisted.
	"resources":    obj(map[string]*rule{"limits": allow, "requests": allow}),
	"resizePolicy": warn(warnResize),
	"volumeMounts": listOf(obj(map[string]*rule{
		"name": allow, "mountPath": allow, "readOnly": allow, "subPath": allow,
		"mountPropagation": allow, "recursiveReadOnly": allow,
	})),
	"livenessProbe": probeRule, "readinessProbe": probeRule, "startupProbe": probeRule,
	"lifecycle":                obj(map[string]*rule{"postStart": hookRule, "preStop": hookRule}),
	"terminationMessagePath":   allow,
	"terminationMessagePolicy": allow,
	"securityContext": obj(map[string]*rule{
		"capabilities": obj(map[string]*rule{"add": allow, "drop": allow}),
		"privileged":   allow, "runAsUser": allow, "runAsGroup": allow, "runAsNonRoot": allow,
		"readOnlyRootFilesystem": allow, "allowPrivilegeEscalation": allow,
		"seccompProfile": allow, "procMount": allow,
		"appArmorProfile": warn(warnAppArmor), "windowsOptions": warn(warnWindows),
	}),
})

// appContainerRule is containerRule with what only app containers may set:
// a stdin and a terminal to attach to (init containers run unattended).
var appContainerRule = func() *rule {
	fields := map[string]*rule{"stdin": allow, "stdinOnce": allow, "tty": allow}
	for k, v := range containerRule.fields {
		fields[k] = v
	}
	return obj(fields)
}()

var podRule = obj(map[string]*rule{
	"apiVersion": allow, "kind": allow,
	"metadata": obj(map[string]*rule{
		"name": allow, "namespace": allow, "labels": allow, "annotations": allow,
		"uid": warn(warnMeta), "resourceVersion": warn(warnMeta), "generation": warn(warnMeta),
		"creationTimestamp": warn(warnMeta), "selfLink": warn(warnMeta), "managedFields": warn(warnMeta),
		"ownerReferences": warn(warnMeta), "finalizers": warn(warnMeta),
	}),
	"status": warn("ignored: peapod reports the pod's status"),
	"spec": obj(map[string]*rule{
		"volumes": listOf(objMsg("only emptyDir, hostPath, configMap, secret, downwardAPI and projected volumes are supported", map[string]*rule{
			"name":        allow,
			"emptyDir":    obj(map[string]*rule{"medium": allow, "sizeLimit": allow}),
			"hostPath":    obj(map[string]*rule{"path": allow, "type": allow}),
			"configMap":   obj(map[string]*rule{"name": allow, "items": keyItemsRule, "defaultMode": allow, "optional": allow}),
			"secret":      obj(map[string]*rule{"secretName": allow, "items": keyItemsRule, "defaultMode": allow, "optional": allow}),
			"downwardAPI": obj(map[string]*rule{"items": downwardItemsRule, "defaultMode": allow}),
			"projected": obj(map[string]*rule{"defaultMode": allow, "sources": listOf(objMsg("only configMap, secret and downwardAPI projections are supported", map[string]*rule{
				"configMap":   obj(map[string]*rule{"name": allow, "items": keyItemsRule, "optional": allow}),
				"secret":      obj(map[string]*rule{"name": allow, "items": keyItemsRule, "optional": allow}),
				"downwardAPI": obj(map[string]*rule{"items": downwardItemsRule}),
			}))}),
		})),
		"initContainers": listOf(containerRule), "containers": listOf(appContainerRule),
		"restartPolicy": allow, "terminationGracePeriodSeconds": allow, "dnsPolicy": allow,
		"hostNetwork": allow, "hostPID": allow, "hostIPC": allow, "shareProcessNamespace": allow, "hostname": allow,
		"hostAliases": allow, "dnsConfig": allow, "os": allow, "hostUsers": allow,
		"securityContext": obj(map[string]*rule{
			"runAsUser": allow, "runAsGroup": allow, "runAsNonRoot": allow, "supplementalGroups": allow,
			"supplementalGroupsPolicy": allow, "seccompProfile": allow, "sysctls": allow,
			"fsGroup": warn(warnFSGroup), "fsGroupChangePolicy": warn(warnFSGroup),
			"appArmorProfile": warn(warnAppArmor), "windowsOptions": warn(warnWindows),
		}),
		"resources": warn(warnPodLevel), "overhead": warn(warnPodLevel),
		"nodeSelector": warn(warnScheduling), "nodeName": warn(warnScheduling),
		"affinity": warn(warnScheduling), "tolerations": warn(warnScheduling),
		"priority": warn(warnScheduling), "priorityClassName": warn(warnScheduling),
		"preemptionPolicy": warn(warnScheduling), "schedulerName": warn(warnScheduling),
		"topologySpreadConstraints": warn(warnScheduling), "schedulingGates": warn(warnScheduling),
		"schedulingGroup":    warn(warnScheduling),
		"serviceAccountName": warn(warnScheduling), "serviceAccount": warn(warnScheduling),
		"automountServiceAccountToken": warn(warnScheduling), "enableServiceLinks": warn(warnScheduling),
		"imagePullSecrets": listOf(obj(map[string]*rule{"name": allow})),
	}),
})

// checkSupported walks the pod's JSON form against podRule. It returns
// warnings for ignored fields and a Forbidden error for every set field
// peapod does not honour.
func checkSupported(pod *corev1.Pod) ([]string, field.ErrorList) {
	// The pod's JSON form, as encoding/json would give it, computed from
	// the fields that are set: json.Marshal would first build encoders for
	// corev1.Pod's whole type tree, 1.1 ms of every run.
	v, err := jsonvalue.Of(pod)
	if err != nil {
		return nil, field.ErrorList{field.InternalError(nil, fmt.Errorf("failed to encode pod: %w", err))}
	}
	w := &walker{}
	w.walk(podRule, v, nil)
	return w.warnings, w.errs
}

// walker accumulates the results of one walk.
type walker struct {
	// warnings are "<path>: <message>" lines.
	warnings []string
	// errs are the Forbidden errors.
	errs field.ErrorList
}

// walk applies r to the value v found at path p.
func (w *walker) walk(r *rule, v any, p *field.Path) {
	if isZero(v) {
		return
	}
	switch r.kind {
	case warned:
		w.warnings = append(w.warnings, fmt.Sprintf("%s: %s", p, r.msg))
	case list:
		if items, ok := v.([]any); ok {
			for i, item := range items {
				w.walk(r.elem, item, p.Index(i))
			}
		}
	case object:
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		for _, k := range sortedKeys(m) {
			child := childPath(p, k)
			sub, known := r.fields[k]
			if !known {
				if !isZero(m[k]) {
					w.errs = append(w.errs, field.Forbidden(child, r.msg))
				}
				continue
			}
			w.walk(sub, m[k], child)
		}
	}
}

// childPath extends p by one key; a nil p starts a new path.
func childPath(p *field.Path, k string) *field.Path {
	if p == nil {
		return field.NewPath(k)
	}
	return p.Child(k)
}

// sortedKeys returns m's keys in order, so errors come out stable.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// isZero reports whether a JSON value is absent in effect: null, false, 0,
// "", or an empty (or all-zero) object or list. A zero value behaves as the
// default, so it is never worth refusing.
func isZero(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case bool:
		return !t
	case json.Number:
		f, err := t.Float64()
		return err == nil && f == 0
	case string:
		return t == ""
	case []any:
		return len(t) == 0
	case map[string]any:
		for _, e := range t {
			if !isZero(e) {
				return false
			}
		}
		return true
	}
	return false
}
