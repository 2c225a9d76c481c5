package procfs

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// IDs is a process's identity as /proc/PID/status shows it
// (proc_pid_status(5)): its real uid and gid and its supplementary groups,
// in the kernel's (sorted) order.
type IDs struct {
	UID, GID uint32
	Groups   []uint32
}

// ReadIDs reads the identity of pid from /proc/<pid>/status.
func ReadIDs(pid int) (IDs, error) { return readParsed(pid, "status", ParseIDs) }

// scanStatus calls fn with the key, the value and the value's fields of
// each "Key:\tvalue" line of a /proc/PID/status, until fn fails.
func scanStatus(b []byte, fn func(key, val string, fields []string) error) error {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		if err := fn(key, val, strings.Fields(val)); err != nil {
			return err
		}
	}
	return nil
}

// ParseIDs parses the Uid:, Gid: and Groups: lines of a /proc/PID/status;
// each must be there (Groups: may be empty).
func ParseIDs(b []byte) (IDs, error) {
	var ids IDs
	var seen int
	err := scanStatus(b, func(key, val string, fields []string) error {
		switch key {
		case "Uid", "Gid":
			if len(fields) != 4 {
				return fmt.Errorf("%w: %s: %q", ErrMalformed, key, val)
			}
			v, err := strconv.ParseUint(fields[0], 10, 32)
			if err != nil {
				return fmt.Errorf("%w: %s: %q", ErrMalformed, key, val)
			}
			if key == "Uid" {
				ids.UID = uint32(v)
				seen |= 1
			} else {
				ids.GID = uint32(v)
				seen |= 2
			}
		case "Groups":
			ids.Groups = []uint32{}
			for _, f := range fields {
				v, err := strconv.ParseUint(f, 10, 32)
				if err != nil {
					return fmt.Errorf("%w: Groups: %q", ErrMalformed, val)
				}
				ids.Groups = append(ids.Groups, uint32(v))
			}
			seen |= 4
		}
		return nil
	})
	if err != nil {
		return IDs{}, err
	}
	if seen != 7 {
		return IDs{}, fmt.Errorf("%w: no Uid, Gid or Groups line", ErrMalformed)
	}
	return ids, nil
}

// Signals is what /proc/PID/status tells of how a process takes signals.
type Signals struct {
	// NSInit: the process is PID 1 of its innermost PID namespace (the last
	// field of NSpid:), whose default-action signals the kernel discards.
	NSInit bool
	// Caught is the SigCgt: mask: bit sig-1 is set while a handler is
	// installed for sig.
	Caught uint64
}

// Catches reports whether a handler for sig was installed.
func (s Signals) Catches(sig int) bool {
	return sig >= 1 && sig <= 64 && s.Caught&(1<<(sig-1)) != 0
}

// ReadSignals reads the signal dispositions of pid from /proc/<pid>/status.
func ReadSignals(pid int) (Signals, error) { return readParsed(pid, "status", ParseSignals) }

// ParseSignals parses the NSpid: and SigCgt: lines of a /proc/PID/status;
// both must be there.
func ParseSignals(b []byte) (Signals, error) {
	var s Signals
	var seen int
	err := scanStatus(b, func(key, val string, fields []string) error {
		switch key {
		case "NSpid":
			if len(fields) == 0 {
				return fmt.Errorf("%w: NSpid: %q", ErrMalformed, val)
			}
			s.NSInit = fields[len(fields)-1] == "1"
			seen |= 1
		case "SigCgt":
			if len(fields) != 1 {
				return fmt.Errorf("%w: SigCgt: %q", ErrMalformed, val)
			}
			v, err := strconv.ParseUint(fields[0], 16, 64)
			if err != nil {
				return fmt.Errorf("%w: SigCgt: %q", ErrMalformed, val)
			}
			s.Caught = v
			seen |= 2
		}
		return nil
	})
	if err != nil {
		return Signals{}, err
	}
	if seen != 3 {
		return Signals{}, fmt.Errorf("%w: no NSpid or SigCgt line", ErrMalformed)
	}
	return s, nil
}
