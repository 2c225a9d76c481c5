// Package probes runs Kubernetes container probes the way the kubelet does:
// the protocol handlers of pkg/probe (exec and TCP in process, HTTP and
// gRPC through the peapod-prober helper process), the per-(container,
// probe type) worker state machine of
// pkg/kubelet/prober/worker.go, the results caches that publish only on
// change, the pod's Started/Ready bookkeeping and conditions, and the pure
// restart decisions of kuberuntime (restart policy, crash-loop backoff,
// grace periods). The reference is ../shared/reference/kubelet-probes.md.
//
// The per-pod supervisor links this package, so it imports only the
// standard library, x/sys/unix and runtime/spec: no net/http, no TLS, no
// gRPC, no Prometheus, no Kubernetes types. The HTTP handler lives in
// probes/httpprobe and the gRPC one in probes/grpcprobe; only the
// peapod-prober binary links them, and the supervisor talks to it through
// RemoteProber (remote.go) over the line protocol of wire.go.
package probes
