package namespaces

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/peapod/peapod/internal/procfs"
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
	p, err := NewExecProfile(o)
	if err != nil {
		return &exec.Cmd{Path: o.Helper, Args: []string{o.Helper, "exec"}, Err: err}
	}
	return p.Command(ExecRequest{
		Helper: o.Helper, Args: o.Process.Args, Terminal: o.Process.Terminal,
		Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr,
	})
}

// ExecProfile is what every exec into one running container instance
// shares: its target, cgroups and process — the user resolved in the
// container, names turned into numbers — encoded for the constructor,
// without the command. The supervisor makes it once when the instance
// starts and writes it to the pod's run dir (WriteExecProfile), where
// `peapod exec` reads it; so every exec, by any path, runs as the same
// user with the same groups, resolved when the container started (as
// containerd resolves them when it creates the container).
type ExecProfile struct {
	// Target is the host pid of the container's main process.
	Target int
	// config is the constructor's lines but arg and terminal.
	config string
	// seccomp is the filter in hex ("" for none).
	seccomp string
}

// ExecRequest is one exec with a profile.
type ExecRequest struct {
	// Helper is the read-only mount of peapod-init (see BindHelperReadOnly).
	Helper string
	// Args is the command; Args[0] is looked up in the container's PATH.
	Args []string
	// Terminal makes stdin, a pty slave, the process's controlling terminal.
	Terminal bool
	// Env is added to the process's environment (TERM for a terminal).
	Env []string
	// Stdin, Stdout and Stderr are the process's (nil: /dev/null).
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Command returns a command running `Helper exec` with p and r.
func (p ExecProfile) Command(r ExecRequest) *exec.Cmd {
	cmd := &exec.Cmd{
		Path:   r.Helper,
		Args:   []string{r.Helper, "exec"},
		Stdin:  r.Stdin,
		Stdout: r.Stdout,
		Stderr: r.Stderr,
	}
	if r.Helper == "" {
		cmd.Err = errors.New("exec needs a helper binary")
		return cmd
	}
	if len(r.Args) == 0 {
		cmd.Err = errors.New("exec needs a command")
		return cmd
	}
	if p.Target <= 0 || p.config == "" {
		cmd.Err = errors.New("exec needs a container's profile")
		return cmd
	}
	var b strings.Builder
	b.WriteString(p.config)
	for _, a := range r.Args {
		b.WriteString("arg=" + encodeNsenterValue(a) + "\n")
	}
	for _, e := range r.Env {
		b.WriteString("env=" + encodeNsenterValue(e) + "\n")
	}
	if r.Terminal {
		b.WriteString("terminal=1\n")
	}
	// Only the protocol: the helper's own environment must not leak into
	// the container, and the process's environment travels in the config.
	cmd.Env = []string{nsenterConfigEnv + "=" + b.String(), execSeccompEnv + "=" + p.seccomp}
	return cmd
}

// HasEnv reports whether the profile's environment sets key.
func (p ExecProfile) HasEnv(key string) bool {
	for line := range strings.SplitSeq(p.config, "\n") {
		if strings.HasPrefix(line, "env="+encodeNsenterValue(key)+"=") {
			return true
		}
	}
	return false
}

// Cwd is the profile's working directory ("" for the container's root).
func (p ExecProfile) Cwd() string {
	for line := range strings.SplitSeq(p.config, "\n") {
		if v, ok := strings.CutPrefix(line, "cwd="); ok {
			return decodeNsenterValue(v)
		}
	}
	return ""
}

// NewExecProfile validates o, resolves its user and capabilities, and
// encodes everything but the command for the constructor (see
// namespaces/nsenter), which does the rest in C: no Go runtime starts in
// the container for an exec. o.Process.Args and Terminal are ignored.
func NewExecProfile(o ExecOptions) (ExecProfile, error) {
	if o.Target <= 0 {
		return ExecProfile{}, fmt.Errorf("invalid exec target pid %d", o.Target)
	}
	p := o.Process
	if len(o.Seccomp) > maxExecSeccomp || len(o.Seccomp)%8 != 0 {
		return ExecProfile{}, fmt.Errorf("invalid seccomp filter of %d bytes", len(o.Seccomp))
	}
	var b strings.Builder
	line := func(key, value string) { b.WriteString(key + "=" + value + "\n") }
	line("pid", strconv.Itoa(o.Target))
	for _, c := range o.Cgroups {
		if !strings.HasPrefix(c, "/") || strings.ContainsAny(c, "\n\x00") {
			return ExecProfile{}, fmt.Errorf("invalid cgroup.procs path %q", c)
		}
		line("cgroup", c)
	}
	// The user's ids and home come from the container's own /etc/passwd and
	// /etc/group, read through the target's root (userdb.Lookup stays in it).
	user, err := userdb.Lookup("/proc/"+strconv.Itoa(o.Target)+"/root", p.User, o.Identity)
	if err != nil {
		return ExecProfile{}, err
	}
	line("uid", strconv.Itoa(user.UID))
	line("gid", strconv.Itoa(user.GID))
	for _, g := range user.Groups {
		line("group", strconv.Itoa(g))
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
	for _, l := range p.Rlimits {
		res, ok := RlimitResources[l.Type]
		if !ok {
			return ExecProfile{}, fmt.Errorf("unknown rlimit %q", l.Type)
		}
		line("rlimit", fmt.Sprintf("%d:%d:%d", res, l.Soft, l.Hard))
	}
	caps, err := capabilityMasks(p.Capabilities)
	if err != nil {
		return ExecProfile{}, err
	}
	line("caps", fmt.Sprintf("%x:%x:%x:%x:%x", caps[0], caps[1], caps[2], caps[3], caps[4]))
	line("timerslack", strconv.Itoa(WorkloadTimerSlack))
	return ExecProfile{Target: o.Target, config: b.String(), seccomp: hex.EncodeToString(o.Seccomp)}, nil
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

// decodeNsenterValue undoes encodeNsenterValue.
func decodeNsenterValue(v string) string {
	return strings.NewReplacer("%25", "%", "%0a", "\n").Replace(v)
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

// The lines a profile file has before the constructor's (see
// WriteExecProfile), in this order.
const (
	profileBoot    = "boot="
	profileStart   = "start="
	profileSeccomp = "seccomp="
)

// WriteExecProfile writes p to path (atomically, 0600) for `peapod exec`,
// after the boot it belongs to and the start time of p.Target: a reader
// takes the profile only while that very process runs (ReadExecProfile,
// and the CLI's C fast path, cmd/peapod/internal/fastexec).
func WriteExecProfile(path string, p ExecProfile) error {
	boot, err := os.ReadFile(bootIDFile)
	if err != nil {
		return fmt.Errorf("failed to read the boot id: %w", err)
	}
	st, err := procfs.ReadStat(p.Target)
	if err != nil {
		return fmt.Errorf("exec profile of pid %d: %w", p.Target, err)
	}
	data := profileBoot + strings.TrimSpace(string(boot)) + "\n" +
		profileStart + strconv.FormatUint(st.StartTime, 10) + "\n" +
		profileSeccomp + p.seccomp + "\n" + p.config
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("failed to create the exec profile dir: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		return fmt.Errorf("failed to write exec profile %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("failed to install exec profile %s: %w", path, err)
	}
	return nil
}

// bootIDFile changes with every boot.
const bootIDFile = "/proc/sys/kernel/random/boot_id"

// ReadExecProfile reads the profile at path. ok is false, with no error,
// when there is none, or it is of another boot or of a process that is no
// longer the one running under its pid: the container's instance is gone.
func ReadExecProfile(path string) (p ExecProfile, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return ExecProfile{}, false, nil
	}
	if err != nil {
		return ExecProfile{}, false, fmt.Errorf("failed to read exec profile: %w", err)
	}
	head := strings.SplitN(string(b), "\n", 4)
	if len(head) != 4 || !strings.HasPrefix(head[0], profileBoot) || !strings.HasPrefix(head[1], profileStart) ||
		!strings.HasPrefix(head[2], profileSeccomp) || !strings.HasPrefix(head[3], "pid=") {
		return ExecProfile{}, false, fmt.Errorf("exec profile %s is malformed", path)
	}
	pidLine, _, _ := strings.Cut(head[3], "\n")
	pid, err := strconv.Atoi(strings.TrimPrefix(pidLine, "pid="))
	if err != nil || pid <= 0 {
		return ExecProfile{}, false, fmt.Errorf("exec profile %s has a bad pid line %q", path, pidLine)
	}
	start, err := strconv.ParseUint(strings.TrimPrefix(head[1], profileStart), 10, 64)
	if err != nil {
		return ExecProfile{}, false, fmt.Errorf("exec profile %s has a bad start line %q", path, head[1])
	}
	boot, err := os.ReadFile(bootIDFile)
	if err != nil {
		return ExecProfile{}, false, fmt.Errorf("failed to read the boot id: %w", err)
	}
	if strings.TrimPrefix(head[0], profileBoot) != strings.TrimSpace(string(boot)) {
		return ExecProfile{}, false, nil
	}
	st, err := procfs.ReadStat(pid)
	if err != nil || st.Gone() || st.StartTime != start {
		return ExecProfile{}, false, nil
	}
	return ExecProfile{Target: pid, config: head[3], seccomp: strings.TrimPrefix(head[2], profileSeccomp)}, true, nil
}
