package namespaces

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/runtime/spec"

	"github.com/peapod/peapod/internal/ktrace"

	"github.com/peapod/peapod/internal/kfeature"
)

// ErrExecNotFound marks a container whose entrypoint does not exist (or is
// not executable) inside its root filesystem; status reports it as
// CreateContainerError/RunContainerError rather than a crash.
var ErrExecNotFound = errors.New("executable not found in container")

// ErrInitFailed marks any other failure reported by the init stage.
var ErrInitFailed = errors.New("container init failed")

// Helper argv[1] values that select the in-namespace entry points.
const (
	// HelperInitArg runs the init stage (containerinit.InitMain).
	HelperInitArg = "init"
	// HelperReaperArg runs ReaperMain.
	HelperReaperArg = "reaper"
)

// WorkloadTimerSlack is the timer slack, in ns, a container process or an
// exec starts with: the kernel's default (50 µs).
const WorkloadTimerSlack = 50 * 1000

// namespaceCloneFlags maps OCI namespace types to the clone flag that
// creates one. Mount is absent: the init stage always gets a new one.
var namespaceCloneFlags = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
}

// StartContainer starts c's init stage in pod p's namespaces and returns
// once the workload's entrypoint has been execve'd, or with the error the
// init stage reported (errors.Is ErrExecNotFound for a missing binary).
//
// helper is a binary whose argv[1]=="init" runs the child side
// (containerinit.InitMain); stdio are the container's stdin/stdout/stderr
// (nil means /dev/null). beforeRun(pid) runs after the child exists and
// before it does anything: the caller puts it into its cgroups there.
//
// On success the child is not waited for: the caller reaps it with its own
// wait4 loop. On failure StartContainer kills and reaps the child itself
// (ECHILD is tolerated in case the caller's wait4(-1) loop got there
// first) and returns pid 0.
func StartContainer(helper string, p *spec.Pod, c *spec.Container, stdio [3]*os.File, beforeRun func(pid int) error) (pid int, err error) {
	return StartContainerIn(helper, p, c, stdio, nil, beforeRun)
}

// StartContainerIn is StartContainer with the child born in the cgroup
// cgroupDir (an O_PATH fd of a cgroup2 directory, cgroups.CloneTarget)
// when it is not nil, through clone3's CLONE_INTO_CGROUP: no migration,
// so no wait for the kernel's threadgroup rwsem (beforeRun's join then
// finds the child in place). A kernel without clone3 (before 5.7) gets the
// plain fork and beforeRun's join.
func StartContainerIn(helper string, p *spec.Pod, c *spec.Container, stdio [3]*os.File, cgroupDir *os.File, beforeRun func(pid int) error) (pid int, err error) {
	return startInit(helper, p, c, stdio, nil, cgroupDir, beforeRun)
}

// startInit forks the init stage of c (console, when not nil, as its
// InitConsoleFd), runs beforeRun, sends the config and waits for the exec.
func startInit(helper string, p *spec.Pod, c *spec.Container, stdio [3]*os.File, console, cgroupDir *os.File, beforeRun func(pid int) error) (int, error) {
	if c.OCI.Process == nil || len(c.OCI.Process.Args) == 0 {
		return 0, fmt.Errorf("failed to start container %q: no process args", c.Name)
	}
	child, err := startInitProcess(helper, c, stdio, console, cgroupDir)
	if err != nil {
		return 0, fmt.Errorf("failed to start init of container %q: %w", c.Name, err)
	}
	defer child.closeParentEnds()
	// Encoded after the fork, while the child's Go runtime starts (it
	// reads the config only then): the first encoding of the spec's types
	// costs 0.3–0.5 ms of reflection.
	cfg, err := json.Marshal(InitConfig{PodName: p.Name, Container: c})
	if err != nil {
		err = fmt.Errorf("failed to encode its config: %w", err)
	} else {
		err = child.run(cfg, beforeRun)
	}
	if err != nil {
		killAndReap(child.pid)
		return 0, fmt.Errorf("failed to start container %q: %w", c.Name, err)
	}
	return child.pid, nil
}

// initChild is a forked init stage and the parent's ends of its pipes.
type initChild struct {
	// pid is the child's pid in the caller's pid namespace.
	pid int
	// config is the write end of the config pipe.
	config *os.File
	// errors is the read end of the CLOEXEC error pipe.
	errors *os.File
}

// run lets the child proceed and waits for its exec or its error report.
func (ch *initChild) run(cfg []byte, beforeRun func(pid int) error) error {
	if beforeRun != nil {
		if err := beforeRun(ch.pid); err != nil {
			return fmt.Errorf("before-run hook for pid %d: %w", ch.pid, err)
		}
	}
	if _, err := ch.config.Write(cfg); err != nil {
		return fmt.Errorf("failed to send config to init pid %d: %w", ch.pid, err)
	}
	ch.config.Close()
	return readInitReport(ch.errors)
}

// closeParentEnds closes what run has not; safe to call twice.
func (ch *initChild) closeParentEnds() {
	ch.config.Close()
	ch.errors.Close()
}

// startInitProcess forks `helper init` into the container's namespaces.
// console, when not nil, becomes the child's InitConsoleFd; cgroupDir, when
// not nil, is the cgroup the child is cloned into.
func startInitProcess(helper string, c *spec.Container, stdio [3]*os.File, console, cgroupDir *os.File) (*initChild, error) {
	files, closeFiles, err := stdioFiles(stdio)
	if err != nil {
		return nil, err
	}
	defer closeFiles()
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("failed to create config pipe: %w", err)
	}
	defer cfgR.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		cfgW.Close()
		return nil, fmt.Errorf("failed to create error pipe: %w", err)
	}
	defer errW.Close()
	attr := &os.ProcAttr{
		// One P: the stage lives for one execve (thread creation and the TLB
		// shoot-downs of its mappings were an exec stage's largest kernel cost); the
		// workload's environment comes in the config, not from here.
		Env:   []string{"GOMAXPROCS=1"},
		Files: append(files, cfgR, errW), // fds 3 and 4: InitConfigFd, InitErrorFd
	}
	if console != nil {
		attr.Files = append(attr.Files, console) // fd 5: InitConsoleFd
	}
	// After the console: the trace fd's number travels in the env.
	attr.Env, attr.Files = ktrace.PassFiles(attr.Env, attr.Files) // --debug: init traces to the CLI's stderr
	// helper must be a read-only mount of peapod-init: see BindHelperReadOnly.
	pid, err := forkInNamespaces(helper, []string{helper, HelperInitArg}, attr, c.OCI.Linux, cgroupDir)
	if err != nil {
		cfgW.Close()
		errR.Close()
		return nil, err
	}
	return &initChild{pid: pid, config: cfgW, errors: errR}, nil
}

// stdioFiles fills nil stdio entries with /dev/null.
func stdioFiles(stdio [3]*os.File) ([]*os.File, func(), error) {
	files := make([]*os.File, 3)
	var opened []*os.File
	closeAll := func() {
		for _, f := range opened {
			f.Close()
		}
	}
	for i, f := range stdio {
		if f == nil {
			null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("failed to open %s: %w", os.DevNull, err)
			}
			opened = append(opened, null)
			f = null
		}
		files[i] = f
	}
	return files, closeAll, nil
}

// forkInNamespaces joins every namespace of l that has a path on a locked
// OS thread and forks argv from that thread with CLONE_NEWNS plus the flags
// of the namespaces that have no path.
//
// The goroutine never unlocks its thread after setns: when it returns, the
// Go runtime discards the thread, so no other goroutine ever runs in the
// pod's namespaces. There is no Pdeathsig for the same reason: it fires
// when the forking thread exits, which is right after this returns.
func forkInNamespaces(path string, argv []string, attr *os.ProcAttr, l *specs.Linux, cgroupDir *os.File) (int, error) {
	flags := uintptr(unix.CLONE_NEWNS)
	var join []specs.LinuxNamespace
	if l != nil {
		for _, ns := range l.Namespaces {
			switch {
			case ns.Type == specs.MountNamespace:
				if ns.Path != "" {
					return 0, fmt.Errorf("joining mount namespace %q is not supported for a new container", ns.Path)
				}
			case ns.Path != "":
				join = append(join, ns)
			default:
				f, ok := namespaceCloneFlags[ns.Type]
				if !ok {
					return 0, fmt.Errorf("unsupported namespace type %q", ns.Type)
				}
				flags |= f
			}
		}
	}
	attr.Sys = &syscall.SysProcAttr{Cloneflags: flags, Setsid: true}
	if cgroupDir != nil {
		attr.Sys.UseCgroupFD, attr.Sys.CgroupFD = true, int(cgroupDir.Fd())
	}
	type result struct {
		pid int
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see above
		// The child inherits this thread's timer slack, which in a running
		// supervisor is the batched TimerSlack: give it the default.
		if err := unix.Prctl(unix.PR_SET_TIMERSLACK, WorkloadTimerSlack, 0, 0, 0); err != nil {
			done <- result{err: fmt.Errorf("failed to set the timer slack: %w", err)}
			return
		}
		if err := setnsAll(join); err != nil {
			done <- result{err: err}
			return
		}
		proc, err := ktrace.StartProcess(path, argv, attr)
		if errors.Is(err, unix.ENOSYS) && attr.Sys.UseCgroupFD {
			// No clone3 (kernel < 5.7): fork, and let the join move it.
			attr.Sys.UseCgroupFD = false
			proc, err = ktrace.StartProcess(path, argv, attr)
		}
		if err != nil {
			done <- result{err: fmt.Errorf("failed to fork %q: %w", path, kfeature.Unshare(int(flags), err))}
			return
		}
		pid := proc.Pid
		proc.Release() // the caller reaps by pid with its own wait4 loop
		done <- result{pid: pid}
	}()
	r := <-done
	return r.pid, r.err
}

// setnsAll joins each namespace file on the calling (locked) thread.
// setns(pid) only changes the namespace of children, which is what we want.
func setnsAll(nss []specs.LinuxNamespace) error {
	for _, ns := range nss {
		if _, ok := namespaceCloneFlags[ns.Type]; !ok {
			return fmt.Errorf("cannot join namespace %q of type %q", ns.Path, ns.Type)
		}
		fd, err := unix.Open(ns.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("failed to open %s namespace %q: %w", ns.Type, ns.Path, err)
		}
		err = ktrace.Setns(fd, int(namespaceCloneFlags[ns.Type]), ns.Path)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("failed to join %s namespace %q: %w", ns.Type, ns.Path, err)
		}
	}
	return nil
}

// killAndReap kills a child that failed to start and reaps it. ECHILD means
// the caller's own wait4(-1) loop already reaped it.
func killAndReap(pid int) {
	if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
		return
	}
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if !errors.Is(err, unix.EINTR) {
			return
		}
	}
}
