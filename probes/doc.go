// Package probes runs Kubernetes container probes the way the kubelet does:
// the protocol handlers of pkg/probe (exec, TCP, HTTP, and gRPC through a
// helper binary), the per-(container, probe type) worker state machine of
// pkg/kubelet/prober/worker.go, the results caches that publish only on
// change, the pod's Started/Ready bookkeeping and conditions, and the pure
// restart decisions of kuberuntime (restart policy, crash-loop backoff,
// grace periods). The reference is ../shared/reference/kubelet-probes.md.
//
// The per-pod supervisor links this package, so it imports only the
// standard library, x/sys/unix and runtime/spec: no gRPC, no Prometheus,
// no Kubernetes types. gRPC lives in probes/grpcprobe and the
// peapod-grpc-probe helper binary.
package probes
