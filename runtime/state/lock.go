package state

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Lock takes an exclusive flock on path (created if missing) and returns
// the function that releases it. flock locks die with the process, so a
// crashed `run` never leaves the root locked. (os.OpenFile sets O_CLOEXEC.)
func Lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("failed to open lock %q: %w", path, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("failed to lock %q: %w", path, err)
	}
	return func() { f.Close() }, nil
}
