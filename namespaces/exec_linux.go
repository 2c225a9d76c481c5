package namespaces

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/peapod/peapod/namespaces/userdb"
	"github.com/peapod/peapod/runtime/spec"
)

// Exec joins every namespace of a running container, the mount namespace
// included. A Go process cannot do that itself: setns(CLONE_NEWNS) fails with
// EINVAL once threads share an fs_struct (CLONE_FS), and the Go runtime has
// started several before main; user and time namespaces likewise need a
// single-threaded caller. So `helper exec` does the joining in the cgo
// constructor of package namespaces/nsenter, before the runtime starts — the
// idea of runc's nsexec, cut down, in our own C. Shelling out to util-linux
// nsenter would work too, but it is an external dependency and one more
// fork+exec on every exec and every exec probe.
//
// The helper's process tree: the constructor forks (setns(CLONE_NEWPID)
// only moves children); the parent, which is the *exec.Cmd's process, waits
// and mirrors the child's exit status; the child applies the process —
// rlimits, no_new_privs, ids, capabilities, umask, cwd, seccomp — and
// execve's it, all in C: a Go runtime started there only to make those few
// system calls was a third of an exec's time. What needs parsing (the
// user's entry in the container's /etc/passwd, capability and rlimit names)
// is resolved here, in the caller, and travels as numbers.

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

// helperEnv validates o, resolves its user and capabilities, and encodes
// everything for the constructor (see namespaces/nsenter), which does the
// rest in C: no Go runtime starts in the container for an exec.
func (o ExecOptions) helperEnv() ([]string, error) {
	if o.Helper == "" {
		return nil, errors.New("exec needs a helper binary")
	}
	if o.Target <= 0 {
		return nil, fmt.Errorf("invalid exec target pid %d", o.Target)
	}
	p := o.Process
	if len(p.Args) == 0 {
		return nil, errors.New("exec needs a command")
	}
	if len(o.Seccomp) > maxExecSeccomp || len(o.Seccomp)%8 != 0 {
		return nil, fmt.Errorf("invalid seccomp filter of %d bytes", len(o.Seccomp))
	}
	var b strings.Builder
	line := func(key, value string) { b.WriteString(key + "=" + value + "\n") }
	line("pid", strconv.Itoa(o.Target))
	for _, c := range o.Cgroups {
		if !strings.HasPrefix(c, "/") || strings.ContainsAny(c, "\n\x00") {
			return nil, fmt.Errorf("invalid cgroup.procs path %q", c)
		}
		line("cgroup", c)
	}
	// The user's ids and home come from the container's own /etc/passwd and
	// /etc/group, read through the target's root (userdb.Lookup stays in it).
	user, err := userdb.Lookup("/proc/"+strconv.Itoa(o.Target)+"/root", p.User, o.Identity)
	if err != nil {
		return nil, err
	}
	line("uid", strconv.Itoa(user.UID))
	line("gid", strconv.Itoa(user.GID))
	for _, g := range user.Groups {
		line("group", strconv.Itoa(g))
	}
	for _, a := range p.Args {
		line("arg", encodeNsenterValue(a))
	}
	for _, e := range WithHome(p.Env, user.Home) {
		line("env", encodeNsenterValue(e))
	}
	line("cwd", encodeNsenterValue(p.Cwd))
	umask := DefaultUmask
	if p.User.Umask != nil {
		umask = int(*p.User.Umask)
	}
	line("umask", strconv.Itoa(umask))
	if p.NoNewPrivileges {
		line("nnp", "1")
	}
	if p.Terminal {
		line("terminal", "1")
	}
	for _, l := range p.Rlimits {
		res, ok := RlimitResources[l.Type]
		if !ok {
			return nil, fmt.Errorf("unknown rlimit %q", l.Type)
		}
		line("rlimit", fmt.Sprintf("%d:%d:%d", res, l.Soft, l.Hard))
	}
	caps, err := capabilityMasks(p.Capabilities)
	if err != nil {
		return nil, err
	}
	line("caps", fmt.Sprintf("%x:%x:%x:%x:%x", caps[0], caps[1], caps[2], caps[3], caps[4]))
	line("timerslack", strconv.Itoa(WorkloadTimerSlack))
	return []string{
		nsenterConfigEnv + "=" + b.String(),
		execSeccompEnv + "=" + hex.EncodeToString(o.Seccomp),
	}, nil
}

// encodeNsenterValue escapes '%' and newlines, which end a config line, as
// %XX; the constructor decodes them. A NUL cannot occur: the value came
// from a string that will be an argument or environment string.
func encodeNsenterValue(v string) string {
	if !strings.ContainsAny(v, "%\n") {
		return v
	}
	return strings.NewReplacer("%", "%25", "\n", "%0a").Replace(v)
}

// capabilityMasks turns the spec's capability names into bit masks, in the
// order bounding, effective, permitted, inheritable, ambient. The
// constructor keeps only the bits the helper itself holds. nil is no
// capability at all.
func capabilityMasks(c *specs.LinuxCapabilities) ([5]uint64, error) {
	var m [5]uint64
	if c == nil {
		return m, nil
	}
	for i, names := range [][]string{c.Bounding, c.Effective, c.Permitted, c.Inheritable, c.Ambient} {
		for _, n := range names {
			bit, ok := CapabilityBit(n)
			if !ok {
				return m, fmt.Errorf("unknown capability %q", n)
			}
			m[i] |= 1 << bit
		}
	}
	return m, nil
}
