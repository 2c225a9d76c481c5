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
// For `exec` the constructor also does the rest, in C, up to the
// workload's execve: rlimits, no_new_privs, groups and ids, capabilities,
// umask, cwd, the seccomp filter, the PATH search. It never returns into Go
// in that mode, so the helper's Go runtime does not start for an exec (its
// start-up was a third of an exec's time, and an exec probe's CPU).
//
// Importing this package (for its side effect only) makes the importing
// binary cgo-linked. The constructor does nothing unless argv[1] is "exec",
// except that it marks the process non-dumpable when argv[1] is "init",
// "exec" or "reaper" (CVE-2016-9962, CVE-2019-5736).
//
// The protocol (written by namespaces.ExecCommand): _PEAPOD_NSENTER holds
// "key=value" lines — pid, cgroup, arg, env, cwd, uid, gid, group, umask,
// nnp, terminal, rlimit, caps, timerslack, pipes — and _PEAPOD_EXEC_SECCOMP
// the compiled filter in hex. pipes=1 (from the CLI's fast path,
// cmd/peapod/internal/fastexec, which execs the helper in its own place)
// gives the command /dev/null and two pipes that the helper's parent side
// relays to its own stdout and stderr: no descriptor of the caller's
// reaches the container. An unknown key, or a missing pid, arg, uid, gid,
// caps, umask or cwd, is refused before anything is joined.
package nsenter

/*
#cgo CFLAGS: -Wall -Wextra -std=gnu11 -O2
*/
import "C"
