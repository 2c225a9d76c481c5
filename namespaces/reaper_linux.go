package namespaces

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/ktrace"
)

// reaperReadyFd is where the reaper finds the pipe on which it reports that
// its signal handlers are installed.
const reaperReadyFd = 3

// StartReaper starts the pod's PID-1 reaper in a new PID namespace and
// returns its pid once it handles signals (before that, SIGTERM to a
// namespace init is silently dropped). The caller pins or joins the
// namespace through /proc/<pid>/ns/pid and reaps the reaper itself.
func StartReaper(helper string) (pid int, err error) {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("failed to open %s: %w", os.DevNull, err)
	}
	defer null.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("failed to create reaper ready pipe: %w", err)
	}
	defer readyR.Close()
	proc, err := ktrace.StartProcess(helper, []string{helper, HelperReaperArg}, &os.ProcAttr{
		Dir:   "/",
		Env:   []string{},
		Files: []*os.File{null, null, null, readyW},
		Sys:   &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWPID, Setsid: true},
	})
	readyW.Close()
	if err != nil {
		return 0, fmt.Errorf("failed to start reaper %q: %w", helper, err)
	}
	pid = proc.Pid
	proc.Release()
	var b [1]byte
	if _, err := io.ReadFull(readyR, b[:]); err != nil {
		killAndReap(pid)
		return 0, fmt.Errorf("reaper pid %d did not become ready: %w", pid, err)
	}
	return pid, nil
}

// ReaperMain is PID 1 of a shared pod PID namespace, like Kubernetes'
// pause: it reaps every orphan and exits 0 on SIGTERM or SIGINT. It never
// returns.
func ReaperMain() {
	// Non-dumpable first: every container of the pod sees this process,
	// and /proc/1/exe is the host's supervisor binary (CVE-2019-5736).
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		fmt.Fprintf(os.Stderr, "reaper: failed to make non-dumpable: %v\n", err)
		os.Exit(1)
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, unix.SIGCHLD, unix.SIGTERM, unix.SIGINT)
	ready := os.NewFile(reaperReadyFd, "reaper-ready")
	if _, err := ready.Write([]byte{1}); err != nil {
		os.Exit(1)
	}
	ready.Close()
	for sig := range sigs {
		if sig != unix.SIGCHLD {
			os.Exit(0)
		}
		reapAll()
	}
}

// reapAll reaps every exited child without blocking; SIGCHLD coalesces, so
// one signal can stand for many children.
func reapAll() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
	}
}
