package kfeature

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestWrap(t *testing.T) {
	for _, tt := range []struct {
		err     error
		explain bool
	}{
		{nil, false},
		{unix.EINVAL, true},
		{fmt.Errorf("mount: %w", unix.ENODEV), true},
		{unix.EOPNOTSUPP, true},
		{unix.EACCES, false},
		{unix.ENOENT, false}, // a missing layer directory is not a missing overlayfs
	} {
		got := Overlay.Wrap(tt.err)
		if tt.err == nil {
			if got != nil {
				t.Errorf("Wrap(nil) = %v", got)
			}
			continue
		}
		if !errors.Is(got, tt.err) {
			t.Errorf("Wrap(%v) = %v, lost the errno", tt.err, got)
		}
		if has := strings.Contains(got.Error(), Overlay.Fix) && strings.Contains(got.Error(), "peapod check"); has != tt.explain {
			t.Errorf("Wrap(%v) = %q: fix text present %v, want %v", tt.err, got, has, tt.explain)
		}
	}
}

func TestUnshare(t *testing.T) {
	if Unshare(unix.CLONE_NEWNET, nil) != nil {
		t.Error("Unshare(nil) is not nil")
	}
	err := Unshare(unix.CLONE_NEWNET, unix.EPERM)
	if !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), "CAP_SYS_ADMIN") {
		t.Errorf("EPERM: %v", err)
	}
	// This kernel has every namespace type: EINVAL is then not blamed on one.
	if err := Unshare(unix.CLONE_NEWNET|unix.CLONE_NEWUTS, unix.EINVAL); err != unix.EINVAL {
		t.Errorf("EINVAL with every /proc/self/ns file present: %v, want it unchanged", err)
	}
	if f := Namespace("net"); !strings.Contains(f.Fix, "CONFIG_NET_NS") {
		t.Errorf("net namespace fix %q does not name CONFIG_NET_NS", f.Fix)
	}
}
