// Package devices installs a container's device allow-list on its cgroup:
// the v1 devices controller, or a BPF_CGROUP_DEVICE program on cgroup2.
//
// It is separate from package cgroups because the BPF library's init would
// otherwise run in every lean supervisor process; only the CLI links it.
package devices

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/cgroups"
)

// maxNumber bounds device numbers: the BPF program compares them as
// 32-bit signed immediates (Linux majors use 12 bits, minors 20).
const maxNumber = 1<<31 - 1

// Wildcard in Rule.Major or Rule.Minor matches any number.
const Wildcard int64 = -1

// Device types of a Rule, as the v1 devices controller spells them.
const (
	// Char is a character device.
	Char = 'c'
	// Block is a block device.
	Block = 'b'
	// All matches both types.
	All = 'a'
)

// Rule allows access to a set of devices; everything no rule allows is
// denied.
type Rule struct {
	// Type is Char, Block or All.
	Type rune
	// Major is the device major number, or Wildcard.
	Major int64
	// Minor is the device minor number, or Wildcard.
	Minor int64
	// Access is a non-empty subset of "rwm": read, write, mknod.
	Access string
}

// ErrInvalidRule means a Rule is malformed.
var ErrInvalidRule = errors.New("invalid device rule")

// Default is the allow-list every container gets. The default capabilities
// include MKNOD: without this list a container could mknod the host's disk
// and read it.
var Default = []Rule{
	{Type: Char, Major: 1, Minor: 3, Access: "rwm"},          // null
	{Type: Char, Major: 1, Minor: 5, Access: "rwm"},          // zero
	{Type: Char, Major: 1, Minor: 7, Access: "rwm"},          // full
	{Type: Char, Major: 1, Minor: 8, Access: "rwm"},          // random
	{Type: Char, Major: 1, Minor: 9, Access: "rwm"},          // urandom
	{Type: Char, Major: 5, Minor: 0, Access: "rwm"},          // tty
	{Type: Char, Major: 5, Minor: 2, Access: "rwm"},          // ptmx
	{Type: Char, Major: 136, Minor: Wildcard, Access: "rwm"}, // /dev/pts/*
}

// AllowAll lets the cgroup's processes create and open every device, as a
// privileged container may (runc's and containerd's "a *:* rwm").
var AllowAll = []Rule{{Type: All, Major: Wildcard, Minor: Wildcard, Access: "rwm"}}

// FromSpec turns a container spec's device cgroup list
// (linux.resources.devices) into Rules; no list gives Default.
func FromSpec(l *specs.Linux) ([]Rule, error) {
	if l == nil || l.Resources == nil {
		return Default, nil
	}
	return fromSpecList(l.Resources.Devices)
}

// fromSpecList converts a device cgroup list; an empty one gives Default.
//
// Rules allow on top of "deny everything", so the deny-all entries that
// open such a list are that baseline. Any other deny cannot be expressed
// and is refused. A list that does not open with a deny-all is read as if
// it did: that denies more than runc would, never less.
func fromSpecList(list []specs.LinuxDeviceCgroup) ([]Rule, error) {
	if len(list) == 0 {
		return Default, nil
	}
	var rules []Rule
	for i, d := range list {
		r, err := fromSpecEntry(d)
		if err != nil {
			return nil, fmt.Errorf("device cgroup entry %d: %w", i, err)
		}
		if !d.Allow {
			if len(rules) > 0 || !r.matchesAll() {
				return nil, fmt.Errorf("device cgroup entry %d denies %q: only a leading deny of every device is supported: %w", i, r, ErrInvalidRule)
			}
			continue
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// fromSpecEntry converts one entry, allow or deny, to a Rule's fields.
func fromSpecEntry(d specs.LinuxDeviceCgroup) (Rule, error) {
	r := Rule{Major: Wildcard, Minor: Wildcard, Access: d.Access}
	switch d.Type {
	case "", "a":
		r.Type = All
	case "c":
		r.Type = Char
	case "b":
		r.Type = Block
	default:
		return Rule{}, fmt.Errorf("device type %q: %w", d.Type, ErrInvalidRule)
	}
	if d.Major != nil {
		r.Major = *d.Major
	}
	if d.Minor != nil {
		r.Minor = *d.Minor
	}
	if r.Access == "" {
		r.Access = "rwm" // the runtime spec's default
	}
	return r, r.validate()
}

// Apply installs rules as the only devices the processes of the cgroup at
// path may mknod or open; the cgroup must exist and have no children.
func Apply(d cgroups.Driver, path string, rules []Rule) error {
	for _, r := range rules {
		if err := r.validate(); err != nil {
			return err
		}
	}
	switch d.Name() {
	case cgroups.DriverV1:
		dir, err := d.Dir("devices", path)
		if err != nil {
			return err
		}
		return applyV1(writeFile, dir, rules)
	case cgroups.DriverV2:
		dir, err := d.Dir("", path)
		if err != nil {
			return err
		}
		return applyBPF(dir, rules)
	}
	return fmt.Errorf("device rules for cgroup driver %q: %w", d.Name(), cgroups.ErrUnsupported)
}

func (r Rule) validate() error {
	switch {
	case r.Type != Char && r.Type != Block && r.Type != All:
		return fmt.Errorf("device type %q: %w", r.Type, ErrInvalidRule)
	case r.Major < Wildcard || r.Minor < Wildcard || r.Major > maxNumber || r.Minor > maxNumber:
		return fmt.Errorf("device number %d:%d: %w", r.Major, r.Minor, ErrInvalidRule)
	case r.Access == "" || strings.Trim(r.Access, "rwm") != "":
		return fmt.Errorf("device access %q: %w", r.Access, ErrInvalidRule)
	}
	return nil
}

// String renders the rule as a v1 devices.allow line ("c 136:* rwm").
func (r Rule) String() string {
	return fmt.Sprintf("%c %s:%s %s", r.Type, number(r.Major), number(r.Minor), r.Access)
}

func number(n int64) string {
	if n == Wildcard {
		return "*"
	}
	return fmt.Sprint(n)
}

// applyV1 denies everything, then allows each rule, one write per line:
// the devices controller parses one rule per write(2).
func applyV1(write func(file, data string) error, dir string, rules []Rule) error {
	if err := write(filepath.Join(dir, "devices.deny"), "a"); err != nil {
		return fmt.Errorf("failed to deny all devices in cgroup %q: %w", dir, err)
	}
	for _, r := range rules {
		if err := write(filepath.Join(dir, "devices.allow"), r.String()); err != nil {
			return fmt.Errorf("failed to allow devices %q in cgroup %q: %w", r, dir, err)
		}
	}
	return nil
}

// writeFile writes data to an existing cgroupfs file in one write(2).
func writeFile(name, data string) error {
	f, err := os.OpenFile(name, os.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	_, werr := f.WriteString(data)
	return errors.Join(werr, f.Close())
}
