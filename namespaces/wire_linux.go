package namespaces

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/sys/unix"

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
	// nsenterConfigEnv holds the constructor's "key=value" lines (see
	// NewExecProfile and ExecProfile.Command for the keys).
	nsenterConfigEnv = "_PEAPOD_NSENTER"
	// execSeccompEnv holds the container's compiled seccomp filter, in
	// hex ("" for none). The environment, not a file: the stage runs
	// inside the container's mount namespace, where no host file is.
	execSeccompEnv = "_PEAPOD_EXEC_SECCOMP"
)

// maxExecSeccomp bounds the filter passed to an exec: the kernel's 4096
// instructions of 8 bytes, within one environment string's 128 KiB
// (MAX_ARG_STRLEN) once hex-encoded.
const maxExecSeccomp = 4096 * 8

// DefaultUmask is a process's umask when its spec sets none.
const DefaultUmask = 0o022

// RlimitResources maps OCI rlimit names to resources.
var RlimitResources = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

// capabilityNames are the kernel's capabilities by number (linux/capability.h),
// without the "CAP_" prefix: a table of our own rather than a capability
// library, which the lean supervisor must not link.
var capabilityNames = [...]string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
	"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
	"SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
	"SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
	"MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
	"CHECKPOINT_RESTORE",
}

// CapabilityBit is the number of a capability named "CAP_CHOWN" style
// (case-insensitive, as the init stage takes them).
func CapabilityBit(name string) (uint, bool) {
	n, ok := strings.CutPrefix(strings.ToUpper(name), "CAP_")
	if !ok {
		return 0, false
	}
	for i, c := range capabilityNames {
		if c == n {
			return uint(i), true
		}
	}
	return 0, false
}

// EnvLookup returns the value of key in env, or def.
func EnvLookup(env []string, key, def string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v
		}
	}
	return def
}

// WithHome adds HOME from the user's passwd entry when env has none.
func WithHome(env []string, home string) []string {
	if EnvLookup(env, "HOME", "") != "" || home == "" {
		return env
	}
	return append(env[:len(env):len(env)], "HOME="+home)
}
