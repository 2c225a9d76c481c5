package probes

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/peapod/peapod/runtime/spec"
)

// maxProbeRetries is how often a handler that returns an error is re-run
// back to back within one probe (prober.go runProbeWithRetries).
const maxProbeRetries = 3

// errHandler stands in for a probe that cannot run at all (unresolvable
// port, missing handler): every probe is an error, so the state never moves.
type errHandler struct {
	// err is returned by every Probe.
	err error
}

func (h errHandler) Probe(context.Context, string) (Outcome, string, error) {
	return OutcomeUnknown, "", h.err
}

// handlerDeps is what handler construction needs from the manager.
type handlerDeps struct {
	// pod names the pod in error messages.
	pod *spec.Pod
	// execRunner returns the in-container runner of a container.
	execRunner func(c *spec.Container) Runner
	// remote runs the HTTPS and gRPC probes in the prober process.
	remote *RemoteProber
}

// newHandler builds the protocol handler of probe p of container c. A probe
// that can never run becomes an errHandler: the kubelet reports the same
// error on every probe and leaves the state alone.
func (d *handlerDeps) newHandler(p *spec.Probe, c *spec.Container) Handler {
	timeout := time.Duration(p.TimeoutSeconds) * time.Second
	switch {
	case p.Exec != nil:
		if d.execRunner == nil {
			return errHandler{fmt.Errorf("no exec runner for container %q", c.Name)}
		}
		return NewExecHandler(ExpandCommand(p.Exec, staticEnv(c)), timeout, d.execRunner(c))
	case p.HTTPGet != nil:
		port, err := ResolvePort(p.HTTPGet.Port, c.Ports)
		if err != nil {
			return errHandler{err}
		}
		var remote Handler
		if d.remote != nil {
			remote = d.remote.Handler(RemoteProbe{Kind: RemoteHTTP, Timeout: timeout, Port: port, HTTP: *p.HTTPGet})
		}
		// Plain HTTP runs here; HTTPS needs crypto/tls, which only
		// peapod-prober links. The prober also takes over a plain probe
		// redirected to https, and is started only when a probe needs it.
		if !strings.EqualFold(p.HTTPGet.Scheme, "HTTPS") {
			return NewPlainHTTPHandler(p.HTTPGet, port, timeout, remote)
		}
		if remote == nil {
			return errHandler{fmt.Errorf("no prober for the https probe of container %q", c.Name)}
		}
		return remote
	case p.TCPSocket != nil:
		port, err := ResolvePort(p.TCPSocket.Port, c.Ports)
		if err != nil {
			return errHandler{err}
		}
		return NewTCPHandler(p.TCPSocket.Host, port, timeout)
	case p.GRPC != nil:
		port, err := checkPort(int(p.GRPC.Port))
		if err != nil {
			return errHandler{err}
		}
		if d.remote == nil {
			return errHandler{fmt.Errorf("no prober for the grpc probe of container %q", c.Name)}
		}
		return d.remote.Handler(RemoteProbe{Kind: RemoteGRPC, Timeout: timeout, Port: port, Service: p.GRPC.Service})
	}
	return errHandler{&kubeError{
		msg:  fmt.Sprintf("missing probe handler for %s/%s:%s", d.pod.Namespace, d.pod.Name, c.Name),
		kind: ErrNoHandler,
	}}
}

// staticEnv is the container's env as a map, for $(VAR) expansion.
// spec.Container carries the resolved env only, so values that came from
// valueFrom are expanded too; the kubelet expands static values only.
func staticEnv(c *spec.Container) map[string]string {
	if c.OCI.Process == nil || len(c.OCI.Process.Env) == 0 {
		return nil
	}
	env := make(map[string]string, len(c.OCI.Process.Env))
	for _, kv := range c.OCI.Process.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return env
}

// runProbe is prober.probe: it runs the handler (retrying errors up to
// maxProbeRetries), raises the events and maps the outcome to a Result. A
// non-nil error means the result must be discarded.
func runProbe(ctx context.Context, t ProbeType, container string, h Handler, podIP string, events EventSink) (Result, error) {
	out, msg, err := runWithRetries(ctx, h, podIP)
	if err != nil {
		emit(events, container, ReasonUnhealthy, fmt.Sprintf("%s probe errored and resulted in %s state: %s", t, out, err))
		return Failure, err
	}
	switch out {
	case OutcomeSuccess:
		return Success, nil
	case OutcomeWarning:
		emit(events, container, ReasonProbeWarning, fmt.Sprintf("%s probe warning: %s", t, msg))
		return Success, nil
	case OutcomeFailure:
		emit(events, container, ReasonUnhealthy, fmt.Sprintf("%s probe failed: %s", t, msg))
	}
	return Failure, nil
}

// runWithRetries re-runs h at once while it returns an error.
func runWithRetries(ctx context.Context, h Handler, podIP string) (out Outcome, msg string, err error) {
	for range maxProbeRetries {
		out, msg, err = h.Probe(ctx, podIP)
		if err == nil {
			return out, msg, nil
		}
	}
	return out, msg, err
}

// emit sends a Warning event if there is a sink.
func emit(events EventSink, container, reason, msg string) {
	if events != nil {
		events.Emit(Event{Container: container, Type: EventWarning, Reason: reason, Message: msg})
	}
}
