package namespaces

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/ktrace"
)

// ErrUnjoinable is returned by Do for namespace types a multithreaded Go
// process cannot enter.
var ErrUnjoinable = errors.New("namespace type cannot be joined from a running Go process")

// threadNSName maps the namespace types Do supports to the /proc/thread-self/ns
// entry that records the thread's current one, so it can switch back.
var threadNSName = map[int]string{
	unix.CLONE_NEWNET:    "net",
	unix.CLONE_NEWUTS:    "uts",
	unix.CLONE_NEWIPC:    "ipc",
	unix.CLONE_NEWCGROUP: "cgroup",
	// setns(CLONE_NEWPID) moves only the thread's future children.
	unix.CLONE_NEWPID: "pid_for_children",
}

// Do runs fn on a locked OS thread switched into the namespace at nsPath
// (nstype is its unix.CLONE_NEW* type) and switches the thread back after.
// Children that fn starts with os/exec inherit the namespace. Mount, user and
// time namespaces are refused with ErrUnjoinable: the kernel lets only a
// single-threaded process (no shared fs_struct) join them.
func Do(nsPath string, nstype int, fn func() error) error {
	name, ok := threadNSName[nstype]
	if !ok {
		return fmt.Errorf("failed to enter %q (type %#x): %w", nsPath, nstype, ErrUnjoinable)
	}
	target, err := os.Open(nsPath)
	if err != nil {
		return fmt.Errorf("failed to open namespace %q: %w", nsPath, err)
	}
	defer target.Close()
	onSpareThread(func() bool {
		var switchedBack bool
		switchedBack, err = doOnThisThread(target, nstype, name, fn)
		return switchedBack
	})
	return err
}

// onSpareThread runs fn in a fresh goroutine locked to an OS thread other
// than the main one, and waits for it. The thread is unlocked for reuse only
// if fn returns true; otherwise the goroutine exits still locked and Go
// discards the thread, so no goroutine ever runs in a namespace it did not
// ask for. Never the main thread: Go cannot end it, so it would stay wedged
// in the namespace forever, keeping it alive after its pin is gone and making
// /proc/self/ns/* (which shows the main thread's) name the pod's namespaces.
func onSpareThread(fn func() (reusable bool)) {
	done := make(chan struct{})
	run := func() {
		defer close(done)
		runtime.LockOSThread()
		if fn() {
			runtime.UnlockOSThread()
		}
	}
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() != unix.Getpid() {
			runtime.UnlockOSThread()
			run()
			return
		}
		// Holding the main thread locked forces the new goroutine onto another.
		defer runtime.UnlockOSThread()
		go run()
		<-done
	}()
	<-done
}

// doOnThisThread enters target, runs fn and switches back, reporting whether
// the thread is back in the namespace it started in.
func doOnThisThread(target *os.File, nstype int, name string, fn func() error) (bool, error) {
	origin, err := os.Open("/proc/thread-self/ns/" + name)
	if err != nil {
		return true, fmt.Errorf("failed to open this thread's %s namespace: %w", name, err)
	}
	defer origin.Close()
	if err := ktrace.Setns(int(target.Fd()), nstype, target.Name()); err != nil {
		return true, fmt.Errorf("failed to enter namespace %q: %w", target.Name(), err)
	}
	fnErr := fn()
	if err := ktrace.Setns(int(origin.Fd()), nstype, origin.Name()); err != nil {
		return false, errors.Join(fnErr, fmt.Errorf("failed to return from namespace %q: %w", target.Name(), err))
	}
	return true, fnErr
}
