package supervisor

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/procfs"
	"github.com/peapod/peapod/internal/testutil"
	"github.com/peapod/peapod/runtime/state"
)

// TestStopSignalBeforeHandler: a stop signal that reaches a PID namespace's
// init before it installed its handler is dropped by the kernel; the
// supervisor sends it again once the handler is there, instead of waiting
// out the grace period and killing (critest's "StopContainer should not
// return error" stops busybox top right after its start).
func TestStopSignalBeforeHandler(t *testing.T) {
	testutil.RequireRoot(t)
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatalf("no sh: %v", err)
	}
	// PID 1 of a new PID namespace that installs its TERM handler only
	// when the test says so (a line on stdin). Started through the
	// package's one reaper, which reaps every child of the test process.
	stdin, release, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer release.Close()
	pid, wait, err := testReaper().start(func() (int, error) {
		defer stdin.Close()
		p, err := os.StartProcess(sh, []string{"sh", "-c", `read go; trap 'exit 7' TERM; echo trapped; while :; do sleep 0.05; done`},
			&os.ProcAttr{Files: []*os.File{stdin, nil, nil}, Sys: &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Pdeathsig: syscall.SIGKILL}})
		if err != nil {
			return 0, err
		}
		pid := p.Pid
		return pid, p.Release()
	})
	if err != nil {
		t.Fatalf("failed to start %s in a new PID namespace: %v", sh, err)
	}
	exited := make(chan struct{})
	var ws unix.WaitStatus
	go func() { ws = <-wait; close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGKILL)
		<-exited
	})
	proc := state.ProcOf(pid)

	sent := make(chan struct{})
	stopSignalSent = func() { close(sent) }
	t.Cleanup(func() { stopSignalSent = nil })
	const grace = 30 * time.Second
	result := make(chan bool, 1)
	start := time.Now()
	go func() { result <- signalUntilCaught(proc, syscall.SIGTERM, exited, grace) }()
	<-sent

	// The first SIGTERM was discarded: the shell is alive and has no handler.
	sigs, err := procfs.ReadSignals(proc.PID)
	if err != nil {
		t.Fatal(err)
	}
	if !sigs.NSInit || sigs.Catches(int(syscall.SIGTERM)) {
		t.Fatalf("before the release: %+v, want an init without a TERM handler", sigs)
	}
	if _, err := release.Write([]byte("go\n")); err != nil {
		t.Fatalf("failed to release the shell: %v", err)
	}
	if !<-result {
		t.Fatalf("the process did not exit within the %v grace period after installing its handler", grace)
	}
	if !ws.Exited() || ws.ExitStatus() != 7 {
		t.Fatalf("wait status %#x, want exit code 7 from the TERM trap", ws)
	}
	t.Logf("stopped by its handler %v after the first signal", time.Since(start).Round(time.Millisecond))
}
