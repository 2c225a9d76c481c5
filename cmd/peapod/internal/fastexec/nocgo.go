//go:build !cgo

package fastexec

// Without cgo there is no constructor: every exec takes the Go path (the
// e2e suite's fault-injection build of the CLI is pure Go).
