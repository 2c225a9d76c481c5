package manifest

import (
	"bytes"
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
// kind "Pod".
func Decode(data []byte, source string) ([]*corev1.Pod, error) {
	var pods []*corev1.Pod
	n := 0
	for _, doc := range splitDocuments(data) {
		if isEmptyDocument(doc) {
			continue
		}
		n++
		pod, err := decodeOne(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, n, err)
		}
		pods = append(pods, pod)
	}
	if len(pods) == 0 {
		return nil, invalid(fmt.Errorf("%s: no pod documents found", source))
	}
	return pods, nil
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
func decodeOne(doc []byte) (*corev1.Pod, error) {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, invalid(fmt.Errorf("error converting YAML to JSON: %w", err))
	}
	if err := checkKind(j); err != nil {
		return nil, err
	}
	pod := &corev1.Pod{}
	strictErrs, err := sigsjson.UnmarshalStrict(j, pod, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		// The quantity parser's error names no field: find which.
		if qerrs := quantityErrors(j); len(qerrs) > 0 {
			return nil, invalid(qerrs.ToAggregate())
		}
		return nil, invalid(fmt.Errorf("error unmarshaling JSON: %w", err))
	}
	if len(strictErrs) > 0 {
		return nil, invalid(fmt.Errorf("error unmarshaling JSON: %w", errors.Join(strictErrs...)))
	}
	if pod.APIVersion != "v1" || pod.Kind != "Pod" {
		return nil, invalid(fmt.Errorf("apiVersion %q kind %q is not a v1 Pod (the only kind peapod runs)",
			pod.APIVersion, pod.Kind))
	}
	return pod, nil
}
