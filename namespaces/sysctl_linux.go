package namespaces

import (
	"fmt"
	"os"
	"strings"

	"github.com/peapod/peapod/internal/ktrace"
)

// Sysctl is one kernel parameter in the dotted form (a dot inside a
// segment, as in an interface name, written as a slash).
type Sysctl struct {
	// Name is e.g. "net.ipv4.ip_local_port_range".
	Name string
	// Value is written as is.
	Value string
}

// SetSysctls writes sysctls from a thread inside the namespace at nsPath
// (nstype CLONE_NEWNET or CLONE_NEWIPC). /proc/sys shows, for net.* and the
// IPC sysctls, the namespaces of the task that opens the file, so the
// writes reach the pod's namespace although /proc is the host's.
func SetSysctls(nsPath string, nstype int, sysctls []Sysctl) error {
	if len(sysctls) == 0 {
		return nil
	}
	return Do(nsPath, nstype, func() error {
		for _, s := range sysctls {
			if err := writeSysctl(s); err != nil {
				return err
			}
		}
		return nil
	})
}

// SysctlError is a sysctl the kernel did not take: no such parameter
// (ENOENT) or a value it refuses (EINVAL and the like).
type SysctlError struct {
	// Sysctl is the parameter and value (Name in the dotted form).
	Sysctl
	// Err is the open's or the write's error.
	Err error
}

func (e *SysctlError) Error() string {
	return fmt.Sprintf("failed to set sysctl %q to %q: %v", e.Name, e.Value, e.Err)
}

func (e *SysctlError) Unwrap() error { return e.Err }

// writeSysctl writes one parameter under /proc/sys.
func writeSysctl(s Sysctl) error {
	// Callers pass validated names: segments of [-_a-z0-9], never "..".
	file := "/proc/sys/" + sysctlPath(s.Name)
	return ktrace.Do("sysctl write", file+" = "+s.Value, func() error {
		f, err := os.OpenFile(file, os.O_WRONLY, 0)
		if err != nil {
			return &SysctlError{Sysctl: s, Err: err}
		}
		_, err = f.WriteString(s.Value)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return &SysctlError{Sysctl: s, Err: err}
		}
		return nil
	})
}

// sysctlPath is the dotted name as a path: dots become slashes and the
// slashes standing for dots inside a segment become dots again.
func sysctlPath(name string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '.':
			return '/'
		case '/':
			return '.'
		}
		return r
	}, name)
}
