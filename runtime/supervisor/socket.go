package supervisor

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/peapod/peapod/probes"
	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/spec"
)

// ProtocolVersion is carried by every request and response on the
// supervisor socket; a mismatch after an upgrade is a clear error.
const ProtocolVersion = "peapod.dev/sock/v1"

// Operations.
const (
	OpPing = "ping"
	OpStop = "stop"
	// OpMetrics returns the probe counters. They are served rather than
	// written to a file: a probe then writes nothing, a reader always gets
	// the live values, and the series go with the pod, as the kubelet's.
	OpMetrics = "metrics"
)

// Request is one line of JSON sent by the CLI.
type Request struct {
	// Version is ProtocolVersion.
	Version string `json:"version"`
	// Op is OpPing, OpStop or OpMetrics.
	Op string `json:"op"`
	// GracePeriodSeconds overrides the pod's grace period for OpStop (and
	// is the grace period of OpCRIStop).
	GracePeriodSeconds *int64 `json:"gracePeriodSeconds,omitempty"`
	// Container names the container of OpAttach.
	Container string `json:"container,omitempty"`
	// Stdin asks OpAttach for the container's stdin.
	Stdin bool `json:"stdin,omitempty"`
	// CRIContainer is the container OpCRICreate adds.
	CRIContainer *spec.Container `json:"criContainer,omitempty"`
	// CRIResources are the resources OpCRIUpdate records.
	CRIResources *specs.LinuxResources `json:"criResources,omitempty"`
	// ContainerID names the container of the other cri-* operations.
	ContainerID string `json:"containerID,omitempty"`
}

// Response is one line of JSON sent back.
type Response struct {
	// Version is ProtocolVersion.
	Version string `json:"version"`
	// Error is empty on success.
	Error string `json:"error,omitempty"`
	// Metrics answers OpMetrics: one entry per live probe worker.
	Metrics []probes.SeriesSnapshot `json:"metrics,omitempty"`
	// GoMemory answers OpMetrics too: the supervisor's Go runtime memory
	// classes (GoMemory).
	GoMemory map[string]uint64 `json:"goMemory,omitempty"`
	// Attach answers OpAttach; frames follow the response line.
	Attach *AttachInfo `json:"attach,omitempty"`
}

// ErrNoSupervisor means the pod's supervisor is not listening.
var ErrNoSupervisor = errors.New("supervisor not running")

// listen opens the pod's control socket: a path socket (never abstract:
// abstract sockets are reachable from any process in the same network
// namespace, e.g. a hostNetwork container — CVE-2020-15257) with mode 0600.
func (s *Supervisor) listen() (net.Listener, error) {
	path := layout.Run(s.pod.RunDir).Socket()
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on %q: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("failed to chmod %q: %w", path, err)
	}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.serving.Add(1)
			go func() {
				defer s.serving.Done()
				s.serve(conn)
			}()
		}
	}()
	return ln, nil
}

func (s *Supervisor) serve(conn net.Conn) {
	defer conn.Close()
	var req Request
	br := bufio.NewReader(conn)
	dec := json.NewDecoder(br)
	if err := dec.Decode(&req); err != nil {
		return
	}
	resp := Response{Version: ProtocolVersion}
	switch {
	case req.Version != ProtocolVersion:
		resp.Error = fmt.Sprintf("protocol version %q not supported by this supervisor (speaks %q)", req.Version, ProtocolVersion)
	case req.Op == OpPing:
	case req.Op == OpStop:
		grace := s.pod.TerminationGracePeriodSeconds
		if req.GracePeriodSeconds != nil {
			grace = *req.GracePeriodSeconds
		}
		s.Stop(spec.Seconds(grace))
	case req.Op == OpMetrics:
		s.mu.Lock()
		prober := s.prober
		s.mu.Unlock()
		if prober != nil {
			resp.Metrics = prober.Metrics().Snapshot()
		}
		resp.GoMemory = GoMemory()
	case req.Op == OpAttach:
		// The frames that follow the request may sit in the decoder's buffer.
		s.serveAttach(conn, io.MultiReader(dec.Buffered(), br), &req)
		return
	case isCRIOp(req.Op):
		resp.Error = s.serveCRI(&req)
	default:
		resp.Error = fmt.Sprintf("unknown op %q", req.Op)
	}
	writeResponse(conn, &resp)
}

// writeResponse writes one response line.
func writeResponse(conn net.Conn, resp *Response) error {
	return json.NewEncoder(conn).Encode(resp)
}

// Call sends req to the supervisor of the pod whose run dir is runDir and
// waits for its answer (a stop answers once every container is gone).
func Call(runDir string, req Request) error {
	_, err := call(runDir, req)
	return err
}

// Metrics returns the probe counters of the pod whose run dir is runDir,
// and its supervisor's Go memory classes (nil from an older supervisor).
func Metrics(runDir string) ([]probes.SeriesSnapshot, map[string]uint64, error) {
	resp, err := call(runDir, Request{Op: OpMetrics})
	if err != nil {
		return nil, nil, err
	}
	return resp.Metrics, resp.GoMemory, nil
}

// KillNow asks the supervisor to stop the pod with no grace period — no
// preStop, SIGKILL at once — and waits at most within for its answer. The
// supervisor reaps what dies on the way, which is the point: killed from
// outside first, an exec probe's process that had entered the pod's PID
// namespace would be handed to the host's PID 1 as a zombie, and the
// container's init would wait in zap_pid_ns_processes until that PID 1
// reaps it (seconds on some VMs).
func KillNow(runDir string, within time.Duration) error {
	zero := int64(0)
	_, err := callBy(runDir, Request{Op: OpStop, GracePeriodSeconds: &zero}, time.Now().Add(within))
	return err
}

// call sends req and returns the supervisor's answer.
func call(runDir string, req Request) (*Response, error) {
	return callBy(runDir, req, time.Time{})
}

// callBy is call with a deadline for the whole exchange (zero: none).
func callBy(runDir string, req Request, deadline time.Time) (*Response, error) {
	req.Version = ProtocolVersion
	path := layout.Run(runDir).Socket()
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("failed to reach supervisor at %q: %w: %w", path, ErrNoSupervisor, err)
	}
	defer conn.Close()
	if !deadline.IsZero() {
		if err := conn.SetDeadline(deadline); err != nil {
			return nil, fmt.Errorf("failed to set a deadline on the supervisor socket %q: %w", path, err)
		}
	}
	if err := json.NewEncoder(conn).Encode(&req); err != nil {
		return nil, fmt.Errorf("failed to send %s to supervisor at %q: %w", req.Op, path, err)
	}
	var resp Response
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		return nil, fmt.Errorf("failed to read supervisor's answer to %s at %q: %w", req.Op, path, err)
	}
	if err := checkResponse(path, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// checkResponse turns a response's version mismatch or error into an error.
func checkResponse(path string, resp *Response) error {
	if resp.Version != ProtocolVersion {
		// Another release's supervisor: say both versions and the ways
		// out, since the CLI cannot serve it.
		return fmt.Errorf("supervisor at %q speaks protocol %q, this peapod speaks %q: "+
			"use the peapod release that started the pod, or remove the pod with `peapod rm -f` (which needs no supervisor)",
			path, resp.Version, ProtocolVersion)
	}
	if resp.Error != "" {
		return answerError(path, resp.Error)
	}
	return nil
}

// Report is written by a starting supervisor on its report pipe (fd 3):
// an empty Error once every app container's entrypoint has been exec'd.
type Report struct {
	// Version is ProtocolVersion.
	Version string `json:"version"`
	// Error says which container could not start, if any.
	Error string `json:"error,omitempty"`
}
