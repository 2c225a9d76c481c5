package containerinit

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/peapod/peapod/namespaces"
)

// ExecMain is `peapod-init exec` after the constructor of namespaces/nsenter
// joined the target container (see namespaces.ExecCommand): it applies the
// process spec and execve's it. It never returns; on failure it prints the
// error and exits 126 (or 127 when the executable is missing).
func ExecMain() {
	// Credentials, capabilities and no_new_privs are per thread: set them
	// and execve on this one.
	runtime.LockOSThread()
	err := runExec()
	fmt.Fprintf(os.Stderr, "peapod exec: %v\n", err)
	if errors.Is(err, namespaces.ErrExecNotFound) {
		os.Exit(namespaces.ExitNotFound)
	}
	os.Exit(namespaces.ExitCannotExec)
}

// runExec sets up and execs the process; it returns only on failure.
func runExec() error {
	proc, err := namespaces.ExecProcessFromEnv()
	if err != nil {
		return err
	}
	caps, err := loadOwnCaps()
	if err != nil {
		return err
	}
	return becomeProcess(caps, proc)
}
