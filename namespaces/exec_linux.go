package namespaces

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/peapod/peapod/runtime/spec"
)

// Exec joins every namespace of a running container, the mount namespace
// included. A Go process cannot do that itself: setns(CLONE_NEWNS) fails with
// EINVAL once threads share an fs_struct (CLONE_FS), and the Go runtime has
// started several before main; user and time namespaces likewise need a
// single-threaded caller. So `helper exec` does the joining in the cgo
// constructor of package namespaces/nsenter, before the runtime starts — the
// idea of runc's nsexec in under 250 lines of our own C. Shelling out to
// util-linux nsenter would work too, but it is an external dependency and
// one more fork+exec on every exec and every exec probe.
//
// The helper's process tree: the constructor forks (setns(CLONE_NEWPID)
// only moves children); the parent, which is the *exec.Cmd's process, waits
// and mirrors the child's exit status; the child returns into Go and runs
// containerinit.ExecMain, which applies the process spec and execve's it.

// Exit codes of a failed exec, as a shell reports them.
const (
	// ExitCannotExec means the process could not be set up or executed.
	ExitCannotExec = 126
	// ExitNotFound means the executable does not exist in the container.
	ExitNotFound = 127
)

// ExecOptions describes a process to start inside every namespace of a running container.
type ExecOptions struct {
	// Helper is the binary whose cgo constructor joins the namespaces (the supervisor binary).
	Helper string
	// Target is the host pid of a process in the container (its init or workload).
	Target int
	// Cgroups are the cgroup.procs files to join (v1: one per hierarchy; v2: one).
	Cgroups []string
	// Process is what to run: args, env, cwd, user, capabilities, noNewPrivileges.
	Process specs.Process
	// Seccomp is the container's compiled seccomp filter (nil: none),
	// loaded before the process's execve.
	Seccomp []byte
	// Identity is what completes Process.User from the container's
	// /etc/passwd and /etc/group, as for its main process.
	Identity spec.Identity
	// Stdin is the process's standard input (nil: /dev/null).
	Stdin io.Reader
	// Stdout is the process's standard output (nil: /dev/null).
	Stdout io.Writer
	// Stderr is the process's standard error (nil: /dev/null).
	Stderr io.Writer
}

// ExecCommand returns a command running `Helper exec`, which enters the
// cgroups and namespaces of o.Target and runs o.Process there. Its exit
// status is the process's: 128+N when killed by signal N, 126 when it could
// not be started and 127 when the executable was not found. SIGINT, SIGTERM,
// SIGHUP and SIGQUIT sent to the command's process reach the exec'd process.
// An invalid o shows up as the error of Start.
//
// o.Helper must be a read-only mount of peapod-init: see BindHelperReadOnly.
func ExecCommand(o ExecOptions) *exec.Cmd {
	cmd := &exec.Cmd{
		Path:   o.Helper,
		Args:   []string{o.Helper, "exec"},
		Stdin:  o.Stdin,
		Stdout: o.Stdout,
		Stderr: o.Stderr,
	}
	env, err := o.helperEnv()
	if err != nil {
		cmd.Err = err
		return cmd
	}
	// Only the protocol: the helper's own environment must not leak into
	// the container, and the process's environment travels in the JSON.
	cmd.Env = env
	return cmd
}

// helperEnv validates o and encodes it for the constructor and containerinit.ExecMain.
func (o ExecOptions) helperEnv() ([]string, error) {
	if o.Helper == "" {
		return nil, errors.New("exec needs a helper binary")
	}
	if o.Target <= 0 {
		return nil, fmt.Errorf("invalid exec target pid %d", o.Target)
	}
	if len(o.Process.Args) == 0 {
		return nil, errors.New("exec needs a command")
	}
	lines := []string{"pid=" + strconv.Itoa(o.Target)}
	for _, c := range o.Cgroups {
		if !strings.HasPrefix(c, "/") || strings.ContainsAny(c, "\n\x00") {
			return nil, fmt.Errorf("invalid cgroup.procs path %q", c)
		}
		lines = append(lines, "cgroup="+c)
	}
	proc, err := json.Marshal(o.Process)
	if err != nil {
		return nil, fmt.Errorf("failed to encode exec process: %w", err)
	}
	identity, err := json.Marshal(o.Identity)
	if err != nil {
		return nil, fmt.Errorf("failed to encode exec identity: %w", err)
	}
	if len(o.Seccomp) > maxExecSeccomp {
		return nil, fmt.Errorf("seccomp filter of %d bytes is too large", len(o.Seccomp))
	}
	return []string{
		nsenterConfigEnv + "=" + strings.Join(lines, "\n"),
		nsenterJoinedEnv + "=0",
		execProcessEnv + "=" + string(proc),
		execSeccompEnv + "=" + base64.StdEncoding.EncodeToString(o.Seccomp),
		execIdentityEnv + "=" + string(identity),
		// The stage lives for one execve: with one P the Go runtime starts
		// no second thread for it (thread creation and the TLB shoot-downs
		// of its mappings were the largest kernel cost of an exec probe).
		// The workload's environment is the JSON's, so this does not leak.
		"GOMAXPROCS=1",
	}, nil
}
