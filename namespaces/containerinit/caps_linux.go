package containerinit

import (
	"fmt"
	"strings"
	"unsafe"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/namespaces"
	"github.com/peapod/peapod/namespaces/userdb"
)

// loadOwnCaps reads this thread's capability sets and the kernel's last
// capability while the host's /proc is still reachable.
func loadOwnCaps() (capability.Capabilities, error) {
	if _, err := capability.LastCap(); err != nil {
		return nil, fmt.Errorf("failed to read the last capability: %w", err)
	}
	caps, err := capability.NewPid2(0)
	if err != nil {
		return nil, fmt.Errorf("failed to init capabilities: %w", err)
	}
	if err := caps.Load(); err != nil {
		return nil, fmt.Errorf("failed to load own capabilities: %w", err)
	}
	return caps, nil
}

// capsByName maps "CAP_CHOWN" style names to capabilities.
var capsByName = func() map[string]capability.Cap {
	m := make(map[string]capability.Cap)
	for _, c := range capability.ListKnown() {
		m["CAP_"+strings.ToUpper(c.String())] = c
	}
	return m
}()

// capSets are the sets to apply, as capabilities.
type capSets struct {
	// bounding, effective, permitted, inheritable and ambient mirror
	// specs.LinuxCapabilities.
	bounding, effective, permitted, inheritable, ambient []capability.Cap
}

// resolveCapSets turns names into capabilities and drops those the runtime
// itself does not hold (have returns false): a privileged container gets
// the runtime's own bounding set, never an error for CAP_SYS_RESOURCE on a
// host that lacks it. Unknown names are an error.
func resolveCapSets(req *specs.LinuxCapabilities, have func(capability.Cap) bool) (capSets, error) {
	var s capSets
	if req == nil {
		return s, nil
	}
	lists := []struct {
		names []string
		dst   *[]capability.Cap
	}{
		{req.Bounding, &s.bounding}, {req.Effective, &s.effective}, {req.Permitted, &s.permitted},
		{req.Inheritable, &s.inheritable}, {req.Ambient, &s.ambient},
	}
	for _, l := range lists {
		for _, name := range l.names {
			c, ok := capsByName[strings.ToUpper(name)]
			if !ok {
				return s, fmt.Errorf("unknown capability %q", name)
			}
			if have(c) {
				*l.dst = append(*l.dst, c)
			}
		}
	}
	return s, nil
}

// applyCredentials switches to user and its capabilities in runc's order:
// bounding set → keepcaps → groups/gid/uid → capset(E, P, I) → ambient.
func applyCredentials(caps capability.Capabilities, user userdb.User, req *specs.LinuxCapabilities) error {
	sets, err := resolveCapSets(req, func(c capability.Cap) bool {
		return caps.Get(capability.BOUNDING, c) && caps.Get(capability.PERMITTED, c)
	})
	if err != nil {
		return err
	}
	caps.Clear(capability.BOUNDS)
	caps.Set(capability.BOUNDING, sets.bounding...)
	if err := caps.Apply(capability.BOUNDS); err != nil {
		return fmt.Errorf("failed to drop bounding capabilities: %w", err)
	}
	if err := setIDsKeepingCaps(user); err != nil {
		return err
	}
	caps.Clear(capability.CAPS)
	caps.Set(capability.EFFECTIVE, sets.effective...)
	caps.Set(capability.PERMITTED, sets.permitted...)
	caps.Set(capability.INHERITABLE, sets.inheritable...)
	if err := caps.Apply(capability.CAPS); err != nil {
		return fmt.Errorf("failed to set capabilities: %w", err)
	}
	caps.Clear(capability.AMBS)
	caps.Set(capability.AMBIENT, sets.ambient...)
	if err := caps.Apply(capability.AMBS); err != nil {
		return fmt.Errorf("failed to set ambient capabilities: %w", err)
	}
	return nil
}

// setIDsKeepingCaps changes groups, gid and uid without losing the
// permitted set, which capset narrows right after.
//
// Only this thread changes, with raw system calls, as runc's init does. The
// set*id of package syscall apply to every thread, as POSIX wants, which in
// this cgo binary means glibc's setxid broadcast: a signal to each of the Go
// runtime's threads and a wait for all, three times — the largest cost of
// an exec probe after the Go runtime's start-up. Here that buys nothing:
// the caller is locked to this thread (InitMain), capset and
// the bounding set are per thread anyway, the process is non-dumpable, and
// execve, on this thread, ends the other threads before the workload runs.
func setIDsKeepingCaps(u userdb.User) error {
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("failed to set keepcaps: %w", err)
	}
	if err := setThreadGroups(u.Groups); err != nil {
		return fmt.Errorf("failed to set supplementary groups %v: %w", u.Groups, err)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); e != 0 {
		return fmt.Errorf("failed to set gid %d: %w", u.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); e != 0 {
		return fmt.Errorf("failed to set uid %d: %w", u.UID, e)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("failed to clear keepcaps: %w", err)
	}
	return nil
}

// setThreadGroups is setgroups(2) for the calling thread only.
func setThreadGroups(groups []int) error {
	gids := make([]uint32, len(groups))
	for i, g := range groups {
		gids[i] = uint32(g)
	}
	var p unsafe.Pointer
	if len(gids) > 0 {
		p = unsafe.Pointer(&gids[0])
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(gids)), uintptr(p), 0); e != 0 {
		return e
	}
	return nil
}

// applyRlimits sets each limit, clamped so no hard limit is ever raised:
// without CAP_SYS_RESOURCE (missing on this kind of host) that is EPERM.
func applyRlimits(limits []specs.POSIXRlimit) error {
	for _, l := range limits {
		res, ok := namespaces.RlimitResources[l.Type]
		if !ok {
			return fmt.Errorf("unknown rlimit %q", l.Type)
		}
		var cur unix.Rlimit
		if err := unix.Prlimit(0, res, nil, &cur); err != nil {
			return fmt.Errorf("failed to read rlimit %s: %w", l.Type, err)
		}
		want := clampRlimit(unix.Rlimit{Cur: l.Soft, Max: l.Hard}, cur)
		if err := unix.Prlimit(0, res, &want, nil); err != nil {
			return fmt.Errorf("failed to set rlimit %s to %d/%d: %w", l.Type, want.Cur, want.Max, err)
		}
	}
	return nil
}

// clampRlimit keeps want's hard limit at or below cur's, and soft ≤ hard.
func clampRlimit(want, cur unix.Rlimit) unix.Rlimit {
	if want.Max > cur.Max {
		want.Max = cur.Max
	}
	if want.Cur > want.Max {
		want.Cur = want.Max
	}
	return want
}
