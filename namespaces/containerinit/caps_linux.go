package containerinit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/runtime/spec"
)

// execUser is the resolved identity the workload runs as.
type execUser struct {
	// uid and gid are the numeric ids.
	uid, gid int
	// groups are the supplementary groups.
	groups []int
	// home is the passwd home directory ("" when unknown).
	home string
}

// passwdEntry is one parsed /etc/passwd line.
type passwdEntry struct {
	// name is the login name.
	name string
	// uid and gid are the numeric ids.
	uid, gid int
	// home is the home directory.
	home string
}

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
func applyCredentials(caps capability.Capabilities, user execUser, req *specs.LinuxCapabilities) error {
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
// the caller is locked to this thread (InitMain, ExecMain), capset and
// the bounding set are per thread anyway, the process is non-dumpable, and
// execve, on this thread, ends the other threads before the workload runs.
func setIDsKeepingCaps(u execUser) error {
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("failed to set keepcaps: %w", err)
	}
	if err := setThreadGroups(u.groups); err != nil {
		return fmt.Errorf("failed to set supplementary groups %v: %w", u.groups, err)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.gid), uintptr(u.gid), uintptr(u.gid)); e != 0 {
		return fmt.Errorf("failed to set gid %d: %w", u.gid, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.uid), uintptr(u.uid), uintptr(u.uid)); e != 0 {
		return fmt.Errorf("failed to set uid %d: %w", u.uid, e)
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

// lookupExecUser resolves the spec's user against the container's
// /etc/passwd and /etc/group (the process is already inside the new root),
// completed as identity says. A username applies when the numeric uid is 0,
// as the manifest leaves it when only the image names a user.
func lookupExecUser(u specs.User, identity spec.Identity) (execUser, error) {
	entries, err := readDatabase("/etc/passwd", parsePasswd)
	if err != nil {
		return execUser{}, err
	}
	return resolveExecUser(u, identity, entries, func() ([]groupEntry, error) { return readDatabase("/etc/group", parseGroup) })
}

// resolveExecUser is lookupExecUser with the passwd entries read and
// /etc/group to read when the groups it lists are needed.
func resolveExecUser(u specs.User, identity spec.Identity, entries []passwdEntry, readGroups func() ([]groupEntry, error)) (execUser, error) {
	eu := execUser{uid: int(u.UID), gid: int(u.GID)}
	for _, g := range u.AdditionalGids {
		eu.groups = append(eu.groups, int(g))
	}
	name := ""
	if u.Username != "" && u.UID == 0 {
		e, err := findPasswdUser(entries, u.Username)
		if err != nil {
			return eu, err
		}
		eu.uid, eu.home, name = e.uid, e.home, e.name
		if u.GID == 0 {
			eu.gid = e.gid
		}
	} else {
		for _, e := range entries {
			if e.uid == eu.uid {
				eu.home, name = e.home, e.name
				if identity.GIDFromPasswd {
					eu.gid = e.gid
				}
				break
			}
		}
	}
	if identity.SupplementalGroupsPolicy == "" {
		return eu, nil
	}
	var member []int
	if identity.SupplementalGroupsPolicy == spec.GroupsMerge && name != "" {
		groups, err := readGroups()
		if err != nil {
			return eu, err
		}
		member = groupsOf(groups, name)
	}
	eu.groups = supplementaryGroups(eu.gid, eu.groups, member)
	return eu, nil
}

// supplementaryGroups is the process's supplementary groups, as
// containerd's CRI makes them: the primary gid, the ones the spec lists,
// then those /etc/group adds (member), each once.
func supplementaryGroups(gid int, listed, member []int) []int {
	out := []int{gid}
	for _, g := range slices.Concat(listed, member) {
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

// groupEntry is one parsed /etc/group line.
type groupEntry struct {
	// name is the group's name and gid its number.
	name string
	gid  int
	// members are the user names listed in it.
	members []string
}

// groupsOf is the gids of the groups listing user as a member, but the
// user's own group of the same name (containerd's rule).
func groupsOf(groups []groupEntry, user string) []int {
	var out []int
	for _, g := range groups {
		if g.name != user && slices.Contains(g.members, user) {
			out = append(out, g.gid)
		}
	}
	return out
}

// parseGroup parses group(5) lines, skipping malformed ones as libc does.
func parseGroup(r io.Reader) ([]groupEntry, error) {
	var out []groupEntry
	err := scanDatabase(r, 4, "group", func(f []string) {
		gid, err := strconv.Atoi(f[2])
		if err != nil || gid < 0 || gid > 1<<32-2 {
			return
		}
		e := groupEntry{name: f[0], gid: gid}
		for _, m := range strings.Split(f[3], ",") {
			if m = strings.TrimSpace(m); m != "" {
				e.members = append(e.members, m)
			}
		}
		out = append(out, e)
	})
	return out, err
}

// findPasswdUser finds a user by name, or by number for a numeric name.
func findPasswdUser(entries []passwdEntry, name string) (passwdEntry, error) {
	for _, e := range entries {
		if e.name == name {
			return e, nil
		}
	}
	if uid, err := strconv.Atoi(name); err == nil && uid >= 0 {
		return passwdEntry{name: name, uid: uid, gid: uid}, nil
	}
	return passwdEntry{}, fmt.Errorf("user %q not found in the container's /etc/passwd", name)
}

// readDatabase parses the file at path with parse; a missing file is an
// empty list (an image may have no /etc/passwd or /etc/group).
func readDatabase[T any](path string, parse func(io.Reader) ([]T, error)) ([]T, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to open %q: %w", path, err)
	}
	defer f.Close()
	return parse(f)
}

// scanDatabase calls each with the colon-separated fields of every line of
// r that has at least minFields, skipping blank, comment and short lines as
// libc does; name ("passwd", "group") is for the read error.
func scanDatabase(r io.Reader, minFields int, name string, each func(f []string)) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if f := strings.Split(line, ":"); len(f) >= minFields {
			each(f)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("failed to read %s: %w", name, err)
	}
	return nil
}

// parsePasswd parses passwd(5) lines, skipping malformed ones as libc does.
func parsePasswd(r io.Reader) ([]passwdEntry, error) {
	var out []passwdEntry
	err := scanDatabase(r, 7, "passwd", func(f []string) {
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || uid < 0 || gid < 0 {
			return
		}
		out = append(out, passwdEntry{name: f[0], uid: uid, gid: gid, home: f[5]})
	})
	return out, err
}

// rlimitsByName maps OCI rlimit names to resources.
var rlimitsByName = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

// applyRlimits sets each limit, clamped so no hard limit is ever raised:
// without CAP_SYS_RESOURCE (missing on this kind of host) that is EPERM.
func applyRlimits(limits []specs.POSIXRlimit) error {
	for _, l := range limits {
		res, ok := rlimitsByName[l.Type]
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
