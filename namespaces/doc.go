// Package namespaces is the parent side of a container start; with its child
// side, namespaces/containerinit, it is where peapod's binaries call setns,
// unshare, mount and pivot_root. It pins a pod's shared namespaces
// (CreateSandbox, RemoveSandbox), runs a function inside one (Do), forks the
// init stage from a thread that joined the pod's namespaces
// (StartContainer), builds the command that enters a running container
// (ExecCommand), starts the PID-1 reaper of a shared PID namespace
// (StartReaper, ReaperMain), binds the helper binary read-only
// (BindHelperReadOnly) and mounts and unmounts the pod's tmpfs volumes.
//
// What runs in the child, inside the new namespaces between fork and
// execve, is package namespaces/containerinit, linked only by peapod-init;
// this package is what the long-lived supervisor links. The formats the two
// sides exchange are written once, in wire_linux.go.
package namespaces
