package cni

import "errors"

// cleanup is a stack of rollbacks: each acquisition pushes its undo the line
// after it succeeds; Clean runs them newest first unless Release was called.
type cleanup struct {
	undo []func() error // rollbacks, oldest first
}

// Add registers the rollback of something just acquired.
func (c *cleanup) Add(f func() error) { c.undo = append(c.undo, f) }

// Release keeps everything acquired: the operation succeeded.
func (c *cleanup) Release() { c.undo = nil }

// Clean rolls back every acquisition, newest first, and joins their errors.
func (c *cleanup) Clean() error {
	var errs []error
	for i := len(c.undo) - 1; i >= 0; i-- {
		errs = append(errs, c.undo[i]())
	}
	c.undo = nil
	return errors.Join(errs...)
}
