// Package userdb resolves a container process's user — uid, gid,
// supplementary groups and home — from the container's own /etc/passwd and
// /etc/group, as the kubelet's runtimes do. The container's init stage and
// `exec` (which reads the files through the target's /proc/PID/root before
// it enters the container) share it, so both run a process with the same
// identity.
package userdb

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/runtime/spec"
)

// User is the resolved identity a process runs as.
type User struct {
	// UID and GID are the numeric ids.
	UID, GID int
	// Groups are the supplementary groups.
	Groups []int
	// Home is the passwd home directory ("" when unknown).
	Home string
}

// maxDatabase bounds /etc/passwd and /etc/group. The files belong to the
// container, which could make them as large as it likes, and an exec
// probe's caller (the supervisor, outside the container's cgroup) reads
// them on every probe; real ones are a few KiB.
const maxDatabase = 1 << 20

// Lookup resolves the spec's user against root's etc/passwd and etc/group,
// completed as identity says. A username applies when the numeric uid is
// 0, as the manifest leaves it when only the image names a user. root is
// "/" inside the container, or a running container's /proc/PID/root seen
// from the host: the files are opened with every path component resolved
// inside root, so a symlink in the container cannot point the lookup at a
// file of the host.
func Lookup(root string, u specs.User, identity spec.Identity) (User, error) {
	dir, err := os.Open(root)
	if err != nil {
		return User{}, fmt.Errorf("failed to open the container root %s: %w", root, err)
	}
	defer dir.Close()
	entries, err := readDatabase(dir, "etc/passwd", parsePasswd)
	if err != nil {
		return User{}, err
	}
	return resolve(u, identity, entries, func() ([]groupEntry, error) { return readDatabase(dir, "etc/group", parseGroup) })
}

// readDatabase parses the file at path under root with parse; a missing
// file is an empty list (an image may have no /etc/passwd or /etc/group).
func readDatabase[T any](root *os.File, path string, parse func(io.Reader) ([]T, error)) ([]T, error) {
	fd, err := unix.Openat2(int(root.Fd()), path, &unix.OpenHow{
		// O_NONBLOCK: a FIFO in the file's place must not hang the caller.
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to open the container's /%s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), "/"+path)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("failed to stat the container's /%s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("the container's /%s is not a regular file", path)
	}
	if fi.Size() > maxDatabase {
		return nil, fmt.Errorf("the container's /%s is larger than %d bytes", path, maxDatabase)
	}
	return parse(io.LimitReader(f, maxDatabase))
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

// resolve is Lookup with the passwd entries read and
// /etc/group to read when the groups it lists are needed.
func resolve(u specs.User, identity spec.Identity, entries []passwdEntry, readGroups func() ([]groupEntry, error)) (User, error) {
	eu := User{UID: int(u.UID), GID: int(u.GID)}
	for _, g := range u.AdditionalGids {
		eu.Groups = append(eu.Groups, int(g))
	}
	name := ""
	if u.Username != "" && u.UID == 0 {
		e, err := findPasswdUser(entries, u.Username)
		if err != nil {
			return eu, err
		}
		eu.UID, eu.Home, name = e.uid, e.home, e.name
		if u.GID == 0 {
			eu.GID = e.gid
		}
	} else {
		for _, e := range entries {
			if e.uid == eu.UID {
				eu.Home, name = e.home, e.name
				if identity.GIDFromPasswd {
					eu.GID = e.gid
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
	eu.Groups = supplementaryGroups(eu.GID, eu.Groups, member)
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
