package cgroups

import "errors"

var (
	// ErrUnsupported means the host's cgroup layout cannot serve the
	// requested driver or controller.
	ErrUnsupported = errors.New("not supported by this host's cgroups")
	// ErrInvalid means an argument (driver name, cgroup path) is malformed.
	ErrInvalid = errors.New("invalid argument")
	// ErrNoController means the controller is not mounted on this host.
	ErrNoController = errors.New("cgroup controller not mounted")
	// ErrNotEmpty means processes were still alive in a cgroup when the
	// deadline to drain it passed.
	ErrNotEmpty = errors.New("cgroup still has processes")
)
