// Package nsenter joins the namespaces and cgroups of a running container
// before the Go runtime starts, for `peapod-init exec`.
//
// Why C, and why a constructor: setns(CLONE_NEWNS) fails with EINVAL in a
// process whose threads share their fs_struct (CLONE_FS), and setns into a
// user or time namespace needs a single-threaded caller. The Go runtime
// starts several threads before main, so a Go process can never join a
// running container's mount namespace. A gcc constructor runs in the new
// process image before the runtime exists, while it is still one thread —
// the approach of runc's nsexec, cut down to what peapod needs. Shelling out
// to util-linux nsenter would also work, but it adds an external dependency
// and one more fork+exec to every `exec` and every exec probe.
//
// Importing this package (for its side effect only) makes the importing
// binary cgo-linked. The constructor does nothing unless argv[1] is "exec"
// and _PEAPOD_NSENTER is set, except that it marks the process non-dumpable
// when argv[1] is "init", "exec" or "reaper" (CVE-2016-9962, CVE-2019-5736).
//
// The protocol (written by namespaces.ExecCommand, checked by
// namespaces.ExecProcessFromEnv for containerinit.ExecMain): _PEAPOD_NSENTER
// holds "pid=N" and "cgroup=PATH" lines; _PEAPOD_NSENTER_JOINED is "0", and
// the constructor flips it to "1" in the child it returns into Go, so
// ExecMain can refuse to run in the host's namespaces when this package was
// not linked.
package nsenter

/*
#cgo CFLAGS: -Wall -Wextra -std=gnu11 -O2
*/
import "C"
