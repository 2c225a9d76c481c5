package containerinit

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/namespaces"
	"github.com/peapod/peapod/namespaces/userdb"
	"github.com/peapod/peapod/runtime/spec"
)

// defaultPath is the PATH used to find the entrypoint when the container's
// environment has none (the same default runc and the kubelet use).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// InitMain is the whole in-namespace init stage, run as `peapod-init init`
// by namespaces.StartContainer. It never returns: it execve's the workload, or reports
// the error on the error pipe and exits 1.
func InitMain() {
	// Credentials, capabilities and no_new_privs are per thread: all of them
	// and the final execve must happen on this one thread.
	runtime.LockOSThread()
	// Non-dumpable before anything else: until execve, /proc/<pid>/exe is
	// the host's helper binary and must not be reachable from the pod
	// (CVE-2016-9962, CVE-2019-5736). execve resets it for the workload.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		initFail(fmt.Errorf("failed to make init non-dumpable: %w", err))
	}
	if _, err := unix.FcntlInt(namespaces.InitErrorFd, unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		initFail(fmt.Errorf("failed to mark error pipe close-on-exec: %w", err))
	}
	cfg, err := namespaces.ReadInitConfig(os.NewFile(namespaces.InitConfigFd, "init-config"))
	if err != nil {
		initFail(err)
	}
	initFail(runInit(cfg))
}

// runInit sets the container up in the order of runc's standard init and
// execs the entrypoint. It returns only on failure.
func runInit(cfg *namespaces.InitConfig) error {
	c := cfg.Container
	proc := c.OCI.Process
	// Read our own capabilities while the host's /proc is still mounted.
	caps, err := loadOwnCaps()
	if err != nil {
		return err
	}
	if err := setupRootfs(c); err != nil {
		return err
	}
	if err := setHostnameIfNew(&c.OCI); err != nil {
		return err
	}
	if err := setupConsole(proc); err != nil {
		return err
	}
	return becomeProcess(caps, proc, c.Identity, c.Seccomp)
}

// becomeProcess applies proc's rlimits, no_new_privs, user (completed as
// identity says), capabilities and the seccomp filter (nil: none), in runc's
// order, then execs it. The init stage and exec share it, so an exec runs
// with the main process's privileges, groups and filter.
func becomeProcess(caps capability.Capabilities, proc *specs.Process, identity spec.Identity, filter []byte) error {
	if err := applyRlimits(proc.Rlimits); err != nil {
		return err
	}
	if proc.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("failed to set no_new_privs: %w", err)
		}
	}
	// Inside the new root already: "/" is the container's.
	user, err := userdb.Lookup("/", proc.User, identity)
	if err != nil {
		return err
	}
	// Loading a filter needs no_new_privs or CAP_SYS_ADMIN. Without
	// no_new_privs, load it now, while this thread still holds every
	// capability: the workload's user and capabilities may lack
	// CAP_SYS_ADMIN. The filter then also covers the last steps below, as
	// in runc. With no_new_privs it waits until just before execve.
	early := !proc.NoNewPrivileges
	if early {
		if err := loadSeccomp(filter); err != nil {
			return err
		}
	}
	if err := applyCredentials(caps, user, proc.Capabilities); err != nil {
		return err
	}
	unix.Umask(umaskOf(proc.User))
	if early {
		filter = nil
	}
	return execWorkload(proc, user, filter)
}

// execWorkload enters the working directory, finds the entrypoint, closes
// every inherited descriptor, loads filter (when not loaded yet) and execs.
func execWorkload(proc *specs.Process, user userdb.User, filter []byte) error {
	if err := enterCwd(proc.Cwd); err != nil {
		return err
	}
	env := namespaces.WithHome(proc.Env, user.Home)
	path, err := findExecutable(proc.Args[0], namespaces.EnvLookup(env, "PATH", defaultPath))
	if err != nil {
		return err
	}
	// CVE-2024-21626: nothing of the runtime's may survive into the
	// container. CLOEXEC rather than close so the error pipe (also CLOEXEC)
	// can still report a failing execve.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("failed to mark descriptors close-on-exec: %w", err)
	}
	// The supervisor runs with a large timer slack (supervisor.TimerSlack),
	// which children inherit and execve keeps: a workload's sleeps and
	// timeouts must not be batched by up to TimerSlack, so it gets the kernel's
	// default back. prctl reaches this thread only, the one execve keeps.
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, namespaces.WorkloadTimerSlack, 0, 0, 0); err != nil {
		return fmt.Errorf("failed to reset the timer slack: %w", err)
	}
	// The last step before execve, so the filter constrains the runtime's
	// own set-up as little as possible.
	if err := loadSeccomp(filter); err != nil {
		return err
	}
	if err := unix.Exec(path, proc.Args, env); err != nil {
		return fmt.Errorf("failed to exec %q: %w", path, err)
	}
	return nil
}

// enterCwd changes to the working directory and checks it lies inside the
// new root: a cwd reached through a leaked host descriptor shows up as
// unreachable (CVE-2024-21626).
func enterCwd(cwd string) error {
	if cwd == "" {
		cwd = "/"
	}
	if err := unix.Chdir(cwd); err != nil {
		return fmt.Errorf("failed to change to working directory %q: %w", cwd, err)
	}
	wd, err := unix.Getwd()
	if err != nil {
		return fmt.Errorf("failed to check working directory %q: %w", cwd, err)
	}
	if !strings.HasPrefix(wd, "/") {
		return fmt.Errorf("working directory %q is outside the container root", cwd)
	}
	return nil
}

// setHostnameIfNew sets the hostname only in a UTS namespace of the
// container's own; a pod's shared one was named when it was pinned.
func setHostnameIfNew(s *specs.Spec) error {
	if s.Hostname == "" || s.Linux == nil || !hasNewNamespace(s.Linux, specs.UTSNamespace) {
		return nil
	}
	if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
		return fmt.Errorf("failed to set hostname %q: %w", s.Hostname, err)
	}
	return nil
}

// hasNewNamespace reports whether l asks for a fresh namespace of type t.
func hasNewNamespace(l *specs.Linux, t specs.LinuxNamespaceType) bool {
	for _, ns := range l.Namespaces {
		if ns.Type == t && ns.Path == "" {
			return true
		}
	}
	return false
}

// umaskOf is the spec's umask, or 022.
func umaskOf(u specs.User) int {
	if u.Umask != nil {
		return int(*u.Umask)
	}
	return namespaces.DefaultUmask
}

// findExecutable resolves name as execve would after a PATH search; a miss
// is namespaces.ErrExecNotFound.
func findExecutable(name, pathEnv string) (string, error) {
	if strings.Contains(name, "/") {
		if err := checkExecutable(name); err != nil {
			return "", fmt.Errorf("executable %q: %w", name, err)
		}
		return name, nil
	}
	for _, dir := range strings.Split(pathEnv, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + name
		if checkExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("executable %q not found in PATH %q: %w", name, pathEnv, namespaces.ErrExecNotFound)
}

// checkExecutable accepts a regular file with an execute bit.
func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return namespaces.ErrExecNotFound
		}
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("not an executable file: %w", namespaces.ErrExecNotFound)
	}
	return nil
}

// initFail reports err to namespaces.StartContainer and exits. It never returns.
func initFail(err error) {
	// Raw write: the error pipe is not in Go's poller and the parent is
	// blocked reading it.
	_, _ = unix.Write(namespaces.InitErrorFd, namespaces.EncodeInitReport(err))
	os.Exit(1)
}
