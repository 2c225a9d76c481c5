package cgroups

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// mount is one line of /proc/self/mountinfo, reduced to what the v1
// driver needs.
type mount struct {
	// dev is the superblock's major:minor; two mounts with the same dev
	// are the same hierarchy (a bind mount, a second mount of it).
	dev string
	// mountpoint is where it is mounted, unescaped.
	mountpoint string
	// fstype is "cgroup" for a v1 hierarchy.
	fstype string
	// superOpts are the super-block options; for cgroup v1 they carry the
	// controllers ("cpu", "cpuacct", "name=systemd").
	superOpts []string
}

func readSelfMountinfo() ([]mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("failed to read mounts: %w", err)
	}
	defer f.Close()
	return parseMountinfo(f)
}

// parseMountinfo parses proc(5) mountinfo:
// "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue".
func parseMountinfo(r io.Reader) ([]mount, error) {
	var mounts []mount
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// The optional fields end at "-"; it is at index 6 or later.
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if len(f) < 7 || sep < 0 || len(f) < sep+4 {
			return nil, fmt.Errorf("failed to parse mountinfo line %q", sc.Text())
		}
		mounts = append(mounts, mount{
			dev:        f[2],
			mountpoint: unescapeOctal(f[4]),
			fstype:     f[sep+1],
			superOpts:  strings.Split(f[sep+3], ","),
		})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("failed to read mountinfo: %w", err)
	}
	return mounts, nil
}

// unescapeOctal undoes the kernel's \ooo escaping of space, tab, newline
// and backslash in mountinfo paths.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
