// Package cri serves the Kubernetes Container Runtime Interface
// (k8s.io/cri-api runtime v1) over gRPC on a unix socket, mapped onto
// peapod's own pods (runtime/pod): a CRI pod sandbox is a peapod pod with
// no app containers yet — its namespace pins, network and resident
// supervisor — so it exists before the kubelet creates its containers.
// What is not implemented yet answers Unimplemented.
package cri

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/peapod/peapod/image"
	"github.com/peapod/peapod/manifest"
	"github.com/peapod/peapod/runtime/pod"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
)

// RuntimeName is what Version reports as the runtime's name.
const RuntimeName = "peapod"

// apiVersion is the CRI API version served.
const apiVersion = "v1"

// lockStripes is how many locks serialize operations on one sandbox: a
// sandbox's run, stop and remove take the stripe of its record name, so a
// remove racing a run waits for it, and unrelated sandboxes rarely wait.
const lockStripes = 64

// Server implements the CRI RuntimeService and ImageService.
type Server struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer
	// m is the pod manager of the CRI root.
	m *pod.Manager
	// version is peapod's version, reported by Version.
	version string
	// stripes serialize run/stop/remove of one sandbox (by record name).
	stripes [lockStripes]sync.Mutex
	// stream is the streaming server (StartStreaming), nil without one.
	stream streaming.Server
	// cpu keeps the last CPU readings, for the rates the stats report.
	cpu cpuSamples
	// registries holds the mirrors and TLS settings of pulls; nil is none.
	registries *image.RegistryConfig
	// events fans container events out to GetContainerEvents (events.go).
	events eventHub
}

// New returns a server for the pods of m.
func New(m *pod.Manager, version string) *Server {
	return &Server{m: m, version: version}
}

// lock takes the stripe of a sandbox's record name.
func (s *Server) lock(name string) func() {
	h := fnv.New32a()
	h.Write([]byte(name))
	mu := &s.stripes[h.Sum32()%lockStripes]
	mu.Lock()
	return mu.Unlock
}

// Listen creates the unix socket at path, mode 0660 owned by root, after
// removing a stale one that nobody serves. A socket somebody answers on is
// left alone: two daemons would serve one root.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return nil, fmt.Errorf("failed to create the directory of socket %q: %w", path, err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("socket path %q exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("socket %q is served by another process", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("failed to remove stale socket %q: %w", path, err)
		}
	}
	// The umask decides the mode bind(2) gives the socket; 0117 makes it
	// 0660 from the start, so it is never reachable by others in between.
	old := syscall.Umask(0o117)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on %q: %w", path, err)
	}
	if err := os.Chown(path, 0, 0); err != nil {
		ln.Close()
		return nil, fmt.Errorf("failed to chown socket %q: %w", path, err)
	}
	return ln, nil
}

// NewGRPCServer returns a gRPC server with s registered as both services.
func NewGRPCServer(s *Server) *grpc.Server {
	g := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(g, s)
	runtimeapi.RegisterImageServiceServer(g, s)
	return g
}

// Version reports the runtime's name and the CRI version it serves.
func (s *Server) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{
		Version: "0.1.0", RuntimeName: RuntimeName, RuntimeVersion: s.version, RuntimeApiVersion: apiVersion,
	}, nil
}

// Status reports the runtime and its network ready: the built-in bridge
// is created with the first pod, an external chain was loaded at start.
// Its runtime handlers are the default one ("", a pod without a
// runtimeClassName) and "peapod", which RunPodSandbox takes too; the
// kubelet and critest read each one's features (recursive read-only
// mounts when the kernel has mount_setattr) and the runtime's (the
// supplemental groups policy).
func (s *Server) Status(_ context.Context, req *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	features := &runtimeapi.RuntimeHandlerFeatures{RecursiveReadOnlyMounts: manifest.RecursiveReadOnlySupported()}
	return &runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
		{Type: runtimeapi.RuntimeReady, Status: true},
		{Type: runtimeapi.NetworkReady, Status: true},
	}}, RuntimeHandlers: []*runtimeapi.RuntimeHandler{
		{Name: "", Features: features},
		{Name: RuntimeName, Features: features},
	}, Features: &runtimeapi.RuntimeFeatures{SupplementalGroupsPolicy: true}}, nil
}

// grpcError maps an error of runtime/pod to a gRPC status.
func grpcError(err error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...) + ": " + err.Error()
	switch {
	case errors.Is(err, pod.ErrNotFound):
		return status.Error(codes.NotFound, msg)
	case errors.Is(err, pod.ErrExists):
		return status.Error(codes.AlreadyExists, msg)
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, msg)
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, msg)
	}
	return status.Error(codes.Internal, msg)
}

// RuntimeConfig reports the cgroup driver: peapod writes the cgroup
// filesystem itself (v1 or v2), as the kubelet's cgroupfs driver.
func (s *Server) RuntimeConfig(context.Context, *runtimeapi.RuntimeConfigRequest) (*runtimeapi.RuntimeConfigResponse, error) {
	return &runtimeapi.RuntimeConfigResponse{Linux: &runtimeapi.LinuxRuntimeConfiguration{CgroupDriver: runtimeapi.CgroupDriver_CGROUPFS}}, nil
}
