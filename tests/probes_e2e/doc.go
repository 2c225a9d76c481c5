// Package probes_e2e runs real pods with probes through the peapod CLI:
// liveness kills and restarts, HTTP/TCP/gRPC readiness, startup gating,
// exec timeouts without zombies, and crash-loop backoff timing. Root only.
package probes_e2e
