package manifest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// hostDevices lists the device nodes of the host's /dev, which a privileged
// container gets as containerd's CRI gives them (oci.WithHostDevices). A
// variable so tests can stand in for the host.
var hostDevices = func() ([]specs.LinuxDevice, error) { return walkDevices("/dev") }

// skippedDevDirs hold nothing to hand over, as runc and containerd skip
// them: every container mounts its own pts, shm and mqueue, fd is the
// reading process's own, and the rest are other managers' private state.
var skippedDevDirs = map[string]bool{
	"pts": true, "shm": true, "fd": true, "mqueue": true, ".lxc": true, ".lxd-mounts": true, ".udev": true,
}

// skippedDevNodes are set up per container instead: its console is its own
// terminal (or none), and /dev/ptmx must be the link to its own devpts
// instance, never the host's multiplexer.
var skippedDevNodes = map[string]bool{"console": true, "ptmx": true}

// walkDevices returns every block and character device below dir, which
// is also where the container gets it. Symlinks (udev's by-id names) are
// not followed, so each node comes once; FIFOs are not devices to hand over.
func walkDevices(dir string) ([]specs.LinuxDevice, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("failed to list host devices in %q: %w", dir, err)
	}
	var out []specs.LinuxDevice
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		switch {
		case e.IsDir():
			if skippedDevDirs[e.Name()] {
				continue
			}
			sub, err := walkDevices(p)
			if errors.Is(err, os.ErrNotExist) {
				continue // unplugged meanwhile
			}
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
		case skippedDevNodes[e.Name()] && dir == "/dev":
		default:
			d, ok, err := deviceAt(p)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("failed to stat host device %q: %w", p, err)
			}
			if ok {
				out = append(out, d)
			}
		}
	}
	return out, nil
}

// deviceAt describes the node at p, with the host's mode and owner; ok is
// false when p is not a block or character device.
func deviceAt(p string) (d specs.LinuxDevice, ok bool, err error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return d, false, err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		d.Type = "b"
	case unix.S_IFCHR:
		d.Type = "c"
	default:
		return d, false, nil
	}
	mode := os.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	d.Path, d.Major, d.Minor = p, int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	d.FileMode, d.UID, d.GID = &mode, &uid, &gid
	return d, true, nil
}

// withDevices returns base with extra added, an extra device replacing a
// base one of the same path.
func withDevices(base, extra []specs.LinuxDevice) []specs.LinuxDevice {
	byPath := make(map[string]bool, len(extra))
	for _, d := range extra {
		byPath[d.Path] = true
	}
	var out []specs.LinuxDevice
	for _, d := range base {
		if !byPath[d.Path] {
			out = append(out, d)
		}
	}
	return append(out, extra...)
}
