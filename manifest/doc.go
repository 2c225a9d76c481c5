// Package manifest turns Kubernetes v1 Pod manifests into peapod pods: it
// decodes strictly, applies the API server's defaulting and validation for
// the fields peapod supports (errors read exactly like the API server's, as
// they are built with k8s.io/apimachinery's field package), and converts a
// valid pod into the lean runtime/spec.Pod the supervisor executes.
//
// Only the CLI links this package: it pulls in k8s.io/api, which the
// supervisor binary must never pay for.
//
// Deliberate differences from Kubernetes:
//   - two app containers declaring the same containerPort/protocol is an
//     error, not a warning: they share one network namespace and the second
//     bind would fail at run time;
//   - fields peapod does not honour are errors (or, where ignoring them is
//     harmless, warnings) instead of being silently accepted.
package manifest
