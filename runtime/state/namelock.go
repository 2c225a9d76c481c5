package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrExists is returned by CreateLocked when the file exists already.
var ErrExists = errors.New("already exists")

// ErrBusy is returned by a non-blocking lock that another process holds.
var ErrBusy = errors.New("locked by another process")

// Held is a file that this process holds an exclusive flock on; the lock
// dies with the process, so a killed holder never leaves it taken.
type Held struct {
	// f is the open, flocked file.
	f *os.File
	// path is where the file was when it was locked.
	path string
	// Data is the file's content when it was locked.
	Data []byte
}

// Unlock releases the lock.
func (h *Held) Unlock() { h.f.Close() }

// Remove deletes the file while still holding its lock, then releases it:
// a process waiting on the old file then finds it gone (see LockExisting).
func (h *Held) Remove() error {
	defer h.f.Close()
	if err := os.Remove(h.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to remove %q: %w", h.path, err)
	}
	return nil
}

// RemoveKeepLocked deletes the file and keeps holding its lock until
// Unlock, for a caller with more to undo under it.
func (h *Held) RemoveKeepLocked() error {
	if err := os.Remove(h.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to remove %q: %w", h.path, err)
	}
	return nil
}

// CreateLocked makes path with data, already locked by this process: it is
// written and flocked under a temporary name and then linked into place, so
// nobody can open it unlocked, and link(2) fails with EEXIST (ErrExists)
// when path exists, which makes it an atomic reservation.
func CreateLocked(path string, data []byte) (*Held, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("failed to create temp file for %q: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := flock(tmp, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("failed to lock %q: %w", tmp.Name(), err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("failed to write %q: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("failed to sync %q: %w", tmp.Name(), err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		tmp.Close()
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("%q: %w", path, ErrExists)
		}
		return nil, fmt.Errorf("failed to link %q to %q: %w", tmp.Name(), path, err)
	}
	return &Held{f: tmp, path: path, Data: data}, nil
}

// LockExisting takes the flock of the file at path, waiting for its holder
// unless nonBlocking (then ErrBusy), and returns it with its content. A
// holder may remove the file before it unlocks (Held.Remove): the lock
// won is then on a file that is gone, so the path is checked to still be
// the locked inode, and a missing path is ErrNotFound.
func LockExisting(path string, nonBlocking bool) (*Held, error) {
	for {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%q: %w", path, ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("failed to open %q: %w", path, err)
		}
		how := unix.LOCK_EX
		if nonBlocking {
			how |= unix.LOCK_NB
		}
		if err := flock(f, how); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("%q: %w", path, ErrBusy)
			}
			return nil, fmt.Errorf("failed to lock %q: %w", path, err)
		}
		var held, now unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &held); err != nil {
			f.Close()
			return nil, fmt.Errorf("failed to stat %q: %w", path, err)
		}
		if err := unix.Stat(path, &now); err != nil || now.Ino != held.Ino || now.Dev != held.Dev {
			// Removed, or removed and made again, while we waited.
			f.Close()
			if err != nil && !errors.Is(err, unix.ENOENT) {
				return nil, fmt.Errorf("failed to stat %q: %w", path, err)
			}
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("failed to read %q: %w", path, err)
		}
		return &Held{f: f, path: path, Data: data}, nil
	}
}

// flock retries flock(2) on EINTR.
func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}
