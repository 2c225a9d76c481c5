// Package seccomp turns a pod's seccompProfile into the classic-BPF program
// the container's init stage loads right before execve: RuntimeDefault is the
// default profile Docker and containerd ship (github.com/moby/profiles/seccomp,
// with its conditional rules resolved for the container's capabilities, this
// host's architecture and kernel), Localhost a Docker-format JSON profile
// under <root>/seccomp (Localhost) or, for the CRI's localhost_ref, at an
// absolute host path (LocalhostFile).
//
// Why a pure-Go compiler, run once in the peapod CLI, and not libseccomp:
// runc and crun compile the profile with libseccomp inside the container's
// init, on every start. peapod-init already carries cgo (namespaces/nsenter),
// but linking libseccomp statically into it would add its whole compiler to
// the binary that runs for every container start, exec and exec probe, and
// would compile the same profile again each time. Here the profile is
// compiled when the pod is created (Compile), stored in the container's spec
// as the raw sock_filter array, and the init and exec stages only hand those
// bytes to seccomp(SECCOMP_SET_MODE_FILTER) — a few lines with no dependency
// (namespaces/containerinit). The syscall tables and the jump-resolving
// assembler come from github.com/elastic/go-seccomp-bpf; the layout of the
// program (one section per architecture, x32 apart, ENOSYS for syscalls
// newer than the profile) follows what libseccomp and runc's patchbpf emit.
//
// The package is linked by the peapod CLI (and peapod-cri) only: the
// supervisor and peapod-init never import it (see cmd/*/lean_test.go).
package seccomp
