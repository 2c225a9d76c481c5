// Package containerinit is the child side of a container start: the code
// that runs inside a container's new namespaces, in peapod-init only,
// between the fork by namespaces.StartContainer and the workload's execve.
// InitMain reads the container's config, mounts the overlay rootfs, the
// spec's mounts, /dev, masked and read-only paths, pivots into the root and
// drops to the process's user and capabilities before execve. (An exec
// into a running container does the last of these in the C constructor of
// namespaces/nsenter; the two follow the same order.)
//
// It is a package of its own, as runc keeps init_linux.go apart from
// process_linux.go, because its dependencies (filepath-securejoin's
// pathrs-lite, moby/sys/capability) are needed for the instant before
// execve and would otherwise be linked into every pod's resident
// supervisor.
package containerinit
