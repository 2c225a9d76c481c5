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

// TestStopSignalBeforeHandler: a stop signal sent to a PID namespace's init
// before it installed its handler would be dropped by the kernel; the
// supervisor holds it back until the handler is there and then sends it
// once, instead of waiting out the grace period and killing (critest's
// "StopContainer should not return error" stops busybox top right after
// its start).
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

	held := make(chan struct{})
	sends := make(chan struct{}, 16)
	stopSignalHeld = func() { close(held) }
	stopSignalSent = func() { sends <- struct{}{} }
	t.Cleanup(func() { stopSignalHeld, stopSignalSent = nil, nil })
	const grace = 30 * time.Second
	result := make(chan bool, 1)
	start := time.Now()
	go func() { result <- signalUntilCaught(proc, syscall.SIGTERM, exited, grace) }()
	<-held

	// The signal is held back: the shell is alive and has no handler, and
	// nothing was sent that the kernel would have dropped.
	sigs, err := procfs.ReadSignals(proc.PID)
	if err != nil {
		t.Fatal(err)
	}
	if !sigs.NSInit || sigs.Catches(int(syscall.SIGTERM)) {
		t.Fatalf("before the release: %+v, want an init without a TERM handler", sigs)
	}
	if n := len(sends); n != 0 {
		t.Fatalf("%d SIGTERM sent to an init without a handler, want it held back", n)
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
	if n := len(sends); n != 1 {
		t.Fatalf("SIGTERM sent %d times, want once", n)
	}
	t.Logf("stopped by its handler %v after the stop began", time.Since(start).Round(time.Millisecond))
}
