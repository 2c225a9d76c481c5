package probes

import "errors"

// ErrExecTimeout is wrapped by a Runner's error when the command outlived its
// timeout; the exec handler turns it into a Failure, as the kubelet does
// since ExecProbeTimeout went GA.
var ErrExecTimeout = errors.New("command timed out")

// ErrPortNotFound marks a named probe port that no container port declares.
var ErrPortNotFound = errors.New("port not found")

// ErrInvalidPort marks a probe port outside 1-65535.
var ErrInvalidPort = errors.New("invalid port number")

// ErrNoHandler marks a probe that declares no handler.
var ErrNoHandler = errors.New("missing probe handler")

// kubeError carries the kubelet's exact text (it ends up in events) while
// still matching its sentinel with errors.Is.
type kubeError struct {
	// msg is the kubelet's message.
	msg string
	// kind is the sentinel it matches.
	kind error
}

func (e *kubeError) Error() string { return e.msg }
func (e *kubeError) Unwrap() error { return e.kind }
