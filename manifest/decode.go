package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// ErrInvalid marks a manifest that failed decoding or validation.
var ErrInvalid = errors.New("invalid manifest")

// invalidError wraps a decode or validation failure so that it matches
// ErrInvalid without repeating "invalid manifest" in every message.
type invalidError struct{ error }

// Is makes errors.Is(err, ErrInvalid) hold.
func (e invalidError) Is(target error) bool { return target == ErrInvalid }

// Unwrap exposes the underlying error.
func (e invalidError) Unwrap() error { return e.error }

// invalid marks err as an invalid-manifest error.
func invalid(err error) error { return invalidError{err} }

// docSeparator matches a YAML document separator line ("---", optionally
// followed by a comment).
var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*(#.*)?$`)

// Decode parses one or more documents (YAML with --- separators, or JSON)
// strictly into v1 Pods. Empty documents are skipped and documents are
// numbered from 1 among the non-empty ones. apiVersion must be "v1" and
// kind "Pod"; ConfigMaps and Secrets are decoded too (DecodeObjects returns
// them) and left out here.
func Decode(data []byte, source string) ([]*corev1.Pod, error) {
	objs, err := DecodeObjects(data, source)
	if err != nil {
		return nil, err
	}
	if len(objs.Pods) == 0 {
		return nil, invalid(fmt.Errorf("%s: no pod documents found", source))
	}
	return objs.Pods, nil
}

// Objects are the documents of one or more manifest files: the pods to run
// and the ConfigMaps and Secrets they may use.
type Objects struct {
	// Pods are the v1 Pods, in file order.
	Pods []*corev1.Pod
	// ConfigMaps and Secrets are the v1 ConfigMaps and Secrets.
	ConfigMaps []*corev1.ConfigMap
	Secrets    []*corev1.Secret
	// where says, per object ("Kind/namespace/name" once defaulted, or its
	// position before), which file and document it came from.
	where map[any]string
}

// Source is where an object was read: "FILE: document N".
func (o *Objects) Source(obj any) string { return o.where[obj] }

// DecodeObjects parses every document of one file strictly: v1 Pods,
// ConfigMaps and Secrets. Any other kind is an error (checkKind). It does
// not require a pod: with several -f, one file may hold only ConfigMaps.
func DecodeObjects(data []byte, source string) (*Objects, error) {
	objs := &Objects{where: map[any]string{}}
	n := 0
	for _, doc := range splitDocuments(data) {
		if isEmptyDocument(doc) {
			continue
		}
		n++
		obj, err := decodeOne(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, n, err)
		}
		objs.where[obj] = fmt.Sprintf("%s: document %d", source, n)
		switch o := obj.(type) {
		case *corev1.Pod:
			objs.Pods = append(objs.Pods, o)
		case *corev1.ConfigMap:
			objs.ConfigMaps = append(objs.ConfigMaps, o)
		case *corev1.Secret:
			objs.Secrets = append(objs.Secrets, o)
		}
	}
	return objs, nil
}

// splitDocuments cuts a YAML stream at its separator lines. JSON contains no
// such line, so a JSON document comes back whole.
func splitDocuments(data []byte) [][]byte {
	locs := docSeparator.FindAllIndex(data, -1)
	docs := make([][]byte, 0, len(locs)+1)
	start := 0
	for _, loc := range locs {
		docs = append(docs, data[start:loc[0]])
		start = loc[1]
	}
	return append(docs, data[start:])
}

// isEmptyDocument reports whether a document holds nothing but whitespace,
// comments or an explicit null.
func isEmptyDocument(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || line == "..." {
			continue
		}
		j, err := yaml.YAMLToJSON(doc)
		return err == nil && bytes.Equal(bytes.TrimSpace(j), []byte("null"))
	}
	return true
}

// decodeOne decodes one document strictly and checks its type. It is what
// sigs.k8s.io/yaml's UnmarshalStrict does, but through sigs.k8s.io/json's
// strict mode (as kubectl does) so that an unknown field is named with its
// full path ("spec.contaners"), not just its last element. The type is read
// first, so that another kind gets one line saying peapod does not run it
// rather than a field error against the Pod schema.
func decodeOne(doc []byte) (any, error) {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, invalid(fmt.Errorf("error converting YAML to JSON: %w", err))
	}
	if err := checkKind(j); err != nil {
		return nil, err
	}
	var h typeHeader
	_ = json.Unmarshal(j, &h) // checkKind read it already
	if h.APIVersion == "v1" {
		switch h.Kind {
		case "ConfigMap":
			return decodeStrict(j, &corev1.ConfigMap{})
		case "Secret":
			return decodeStrict(j, &corev1.Secret{})
		}
	}
	pod, err := decodeStrict(j, &corev1.Pod{})
	if err != nil {
		return nil, err
	}
	if pod.APIVersion != "v1" || pod.Kind != "Pod" {
		return nil, invalid(fmt.Errorf("apiVersion %q kind %q is not a v1 Pod (the only kind peapod runs)",
			pod.APIVersion, pod.Kind))
	}
	return pod, nil
}

// decodeStrict unmarshals JSON into obj, refusing unknown and duplicate
// fields with their full paths.
func decodeStrict[T any](j []byte, obj *T) (*T, error) {
	strictErrs, err := sigsjson.UnmarshalStrict(j, obj, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		// The quantity parser's error names no field: find which.
		if _, isPod := any(obj).(*corev1.Pod); isPod {
			if qerrs := quantityErrors(j); len(qerrs) > 0 {
				return nil, invalid(qerrs.ToAggregate())
			}
		}
		return nil, invalid(fmt.Errorf("error unmarshaling JSON: %w", err))
	}
	if len(strictErrs) > 0 {
		return nil, invalid(fmt.Errorf("error unmarshaling JSON: %w", errors.Join(strictErrs...)))
	}
	return obj, nil
}
