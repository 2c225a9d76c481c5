package namespaces

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/peapod/peapod/runtime/spec"
)

// This file holds both ends of what crosses the fork between the parent side
// (StartContainer, ExecCommand) and the child side (package
// namespaces/containerinit, run by peapod-init), so each format is written
// once. Both binaries are built from one tree and installed together, so the
// formats carry no version.

// The init stage finds its two pipes at fixed descriptors: StartContainer
// puts them there through ExtraFiles.
const (
	// InitConfigFd is the read end of the config pipe (one InitConfig, then EOF).
	InitConfigFd = 3
	// InitErrorFd is the write end of the CLOEXEC error pipe: an InitReport
	// on failure, EOF when execve succeeded.
	InitErrorFd = 4
	// InitConsoleFd is, for a container with Process.Terminal, one end of a
	// unix socket on which the init stage sends the master of the pty it
	// allocated from the container's devpts (SCM_RIGHTS), as runc's
	// --console-socket. Absent otherwise.
	InitConsoleFd = 5
)

// InitConfig is what StartContainer sends the init stage over the config pipe.
type InitConfig struct {
	// PodName names the pod in the init stage's error messages.
	PodName string `json:"podName"`
	// Container is the container to set up and execute.
	Container *spec.Container `json:"container"`
}

// ReadInitConfig decodes the config StartContainer writes after beforeRun
// and checks it has what the init stage cannot do without.
func ReadInitConfig(r io.Reader) (*InitConfig, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("failed to read init config: %w", err)
	}
	var cfg InitConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("failed to decode init config: %w", err)
	}
	if cfg.Container == nil || cfg.Container.OCI.Process == nil || cfg.Container.OCI.Root == nil {
		return nil, errors.New("init config has no container process or root")
	}
	return &cfg, nil
}

// initReport is what the init stage writes to the error pipe when it fails;
// a successful execve closes the pipe instead.
type initReport struct {
	// Message says what failed.
	Message string `json:"message"`
	// NotFound is set when the entrypoint was not found (ErrExecNotFound).
	NotFound bool `json:"notFound,omitempty"`
}

// EncodeInitReport is the error-pipe message by which the init stage
// reports err; readInitReport turns it back into an error that is
// ErrExecNotFound or ErrInitFailed.
func EncodeInitReport(err error) []byte {
	b, _ := json.Marshal(initReport{Message: err.Error(), NotFound: errors.Is(err, ErrExecNotFound)})
	return b
}

// readInitReport waits for EOF (exec succeeded) or a JSON report.
func readInitReport(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("failed to read init error pipe: %w", err)
	}
	if len(b) == 0 {
		return nil
	}
	var rep initReport
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("%w: undecodable report %q", ErrInitFailed, b)
	}
	if rep.NotFound {
		return fmt.Errorf("%s: %w", rep.Message, ErrExecNotFound)
	}
	return fmt.Errorf("%w: %s", ErrInitFailed, rep.Message)
}

// The environment of `helper exec`, shared with namespaces/nsenter/nsenter.c.
const (
	// nsenterConfigEnv holds the "pid=N" and "cgroup=PATH" lines for the constructor.
	nsenterConfigEnv = "_PEAPOD_NSENTER"
	// nsenterJoinedEnv is "0" from ExecCommand; the constructor makes it "1".
	nsenterJoinedEnv = "_PEAPOD_NSENTER_JOINED"
	// execProcessEnv holds the JSON specs.Process for ExecProcessFromEnv.
	execProcessEnv = "_PEAPOD_EXEC_PROCESS"
	// execSeccompEnv holds the container's compiled seccomp filter,
	// base64 ("" for none). The environment, not a file: the stage runs
	// inside the container's mount namespace, where no host file is.
	execSeccompEnv = "_PEAPOD_EXEC_SECCOMP"
	// execIdentityEnv holds the JSON spec.Identity for ExecIdentityFromEnv.
	execIdentityEnv = "_PEAPOD_EXEC_IDENTITY"
)

// maxExecSeccomp bounds the filter passed to an exec: the kernel's 4096
// instructions of 8 bytes, well within one environment string's 128 KiB
// (MAX_ARG_STRLEN) once base64-encoded.
const maxExecSeccomp = 4096 * 8

// ExecProcessFromEnv is, in `helper exec` after the nsenter constructor ran,
// the process ExecCommand asked for and the container's seccomp filter (nil:
// none). It refuses to go on when the constructor did not join the target:
// the process would run in the host's namespaces.
func ExecProcessFromEnv() (*specs.Process, []byte, error) {
	if os.Getenv(nsenterJoinedEnv) != "1" {
		return nil, nil, errors.New("namespaces were not joined: the helper binary does not link namespaces/nsenter")
	}
	var proc specs.Process
	if err := json.Unmarshal([]byte(os.Getenv(execProcessEnv)), &proc); err != nil {
		return nil, nil, fmt.Errorf("failed to decode exec process: %w", err)
	}
	if len(proc.Args) == 0 {
		return nil, nil, errors.New("exec process has no args")
	}
	filter, err := base64.StdEncoding.DecodeString(os.Getenv(execSeccompEnv))
	if err != nil {
		return nil, nil, fmt.Errorf("failed to decode exec seccomp filter: %w", err)
	}
	return &proc, filter, nil
}

// ExecIdentityFromEnv is, in `helper exec`, what completes the process's
// user from the container's /etc/passwd and /etc/group (ExecOptions.Identity;
// unset is the zero Identity).
func ExecIdentityFromEnv() (spec.Identity, error) {
	var id spec.Identity
	if v := os.Getenv(execIdentityEnv); v != "" {
		if err := json.Unmarshal([]byte(v), &id); err != nil {
			return id, fmt.Errorf("failed to decode exec identity: %w", err)
		}
	}
	return id, nil
}
