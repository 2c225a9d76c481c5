// Command peapod-init is peapod's in-namespace helper, kept apart from the
// long-lived supervisor so that each pod's resident process stays small:
// this binary carries the cgo constructor that joins a container's mount
// and PID namespaces before the Go runtime starts threads, the rootfs code
// and the credential code, and it only lives for the instant between fork
// and the workload's execve. Modes, by argv[1]:
//
//	init   the container init stage: mounts, pivot_root, credentials, execve
//	exec   enter a running container and exec a process there (all of it
//	       in the constructor, before Go starts)
//
// It is started by peapod-supervisor and peapod, never by hand.
package main

import (
	"fmt"
	"os"

	"github.com/peapod/peapod/namespaces"
	"github.com/peapod/peapod/namespaces/containerinit"
	// The constructor joins a container's namespaces before the Go runtime
	// starts threads; it is inert unless `exec` asks for it.
	_ "github.com/peapod/peapod/namespaces/nsenter"
)

func main() {
	if len(os.Args) >= 2 {
		switch os.Args[1] {
		case namespaces.HelperInitArg:
			containerinit.InitMain()
		case "exec":
			// The constructor never returns in this mode: reaching Go means
			// it was not linked, and nothing may run in the host's namespaces.
			fmt.Fprintln(os.Stderr, "peapod-init: exec: the nsenter constructor did not run")
			os.Exit(namespaces.ExitCannotExec)
		}
	}
	fmt.Fprintln(os.Stderr, "peapod-init: internal helper of peapod (modes: init, exec); not for use by hand")
	os.Exit(2)
}
