// Package cleanup is a rollback stack: each acquired resource registers its
// undo right after it exists; on failure Clean runs them newest first; on
// success Release forgets them.
package cleanup

import "errors"

// Stack holds undo functions.
type Stack struct {
	// undo, oldest first.
	undo []func() error
}

// Add registers f to run on Clean.
func (s *Stack) Add(f func() error) { s.undo = append(s.undo, f) }

// Release forgets every registered undo: the acquisition succeeded.
func (s *Stack) Release() { s.undo = nil }

// Clean runs every undo newest first and joins their errors; it runs all of
// them even when some fail, so one stuck resource does not leak the rest.
func (s *Stack) Clean() error {
	var errs []error
	for i := len(s.undo) - 1; i >= 0; i-- {
		if err := s.undo[i](); err != nil {
			errs = append(errs, err)
		}
	}
	s.undo = nil
	return errors.Join(errs...)
}
