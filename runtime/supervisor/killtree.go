package supervisor

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/procfs"
)

// How a timed-out exec is taken down.
const (
	// killRounds bounds the leaves-first passes; a tree that keeps forking
	// past them is killed top-down.
	killRounds = 16
	// reapWait is how long a killed process's parent gets to reap it.
	reapWait = 200 * time.Millisecond
	// reapPoll is how often that is checked: the kernel offers no event
	// for the reaping of a process that is not our child.
	reapPoll = 2 * time.Millisecond
)

// killTree takes down a timed-out exec helper and everything the command
// started in the container, leaves first. The order matters: a process
// whose parent dies is reparented to the container's PID 1 (the subreaper
// search stops at the PID-namespace boundary the helper crossed), and an
// application as PID 1 rarely reaps, so an orphan would stay a zombie.
// Killing leaves first lets each parent — the command's shell, in the end
// the helper — reap its own child. In a shared PID namespace PID 1 is the
// pod's reaper, which reaps whatever is orphaned anyway.
func killTree(helper *os.Process, wait <-chan unix.WaitStatus) {
	for range killRounds {
		leaves := liveLeaves(helper.Pid)
		if len(leaves) == 0 {
			break
		}
		for _, l := range leaves {
			l.kill()
		}
		awaitReaped(leaves)
	}
	helper.Kill()
	<-wait
}

// proc is a process found under the helper, pinned by a pidfd so a pid
// reused meanwhile is never signalled.
type proc struct {
	// pid is the host pid.
	pid int
	// fd is its pidfd (-1 when it could not be opened).
	fd int
}

// kill SIGKILLs the process through its pidfd and closes the pidfd.
func (p proc) kill() {
	if p.fd >= 0 {
		unix.PidfdSendSignal(p.fd, unix.SIGKILL, nil, 0)
		unix.Close(p.fd)
	}
}

// liveLeaves returns the descendants of root that are alive (not zombies)
// and have no live children, each pinned by a pidfd opened while it was
// still a descendant.
func liveLeaves(root int) []proc {
	var leaves []proc
	var walk func(pid int) bool
	walk = func(pid int) (alive bool) {
		liveChild := false
		for _, c := range Children(pid) {
			if walk(c) {
				liveChild = true
			}
		}
		if pid == root || !isLive(pid) {
			return false
		}
		if !liveChild {
			fd, err := unix.PidfdOpen(pid, 0)
			if err != nil {
				fd = -1
			}
			leaves = append(leaves, proc{pid: pid, fd: fd})
		}
		return true
	}
	walk(root)
	return leaves
}

// Children lists a process's children from /proc/PID/task/*/children
// (a child belongs to the thread that forked it).
func Children(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// isLive reports whether pid exists and is not a zombie.
func isLive(pid int) bool {
	st, err := procfs.ReadStat(pid)
	return err == nil && !st.Gone()
}

// awaitReaped waits until the killed processes are gone, or reapWait
// passed (their parent does not reap; killing it next hands the zombie on).
func awaitReaped(ps []proc) {
	deadline := time.Now().Add(reapWait)
	for _, p := range ps {
		for {
			if _, err := procfs.ReadStat(p.pid); err != nil {
				break
			}
			if time.Now().After(deadline) {
				return
			}
			time.Sleep(reapPoll)
		}
	}
}
