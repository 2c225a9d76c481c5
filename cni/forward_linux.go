package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/ktrace"
)

// ip_forward is one switch for the whole host (for its network namespace),
// while every peapod root has networks that need it. If each network saved
// and restored it on its own, root A's last pod would turn it off under root
// B's pods. So the networks that need it are holders in one registry per
// network namespace, changed only under one host-wide lock: the first holder
// records the value it found, the last one puts it back. A holder whose
// bridge or data directory is gone (a root deleted or crashed for good) is
// dropped whenever the registry is read, so it cannot keep forwarding on for
// ever. The files live in /run, which a reboot empties, as it resets
// ip_forward.
const (
	ipForwardSysctl     = "/proc/sys/net/ipv4/ip_forward"
	forwardRegistryLock = "/run/peapod-forward.lock"
	// legacyForwardSaved, in DataDir, is where peapod kept ip_forward per
	// network before the registry; adopted once, then removed
	legacyForwardSaved = "ip_forward.saved"
)

// forwardRegistryFile is the registry of the calling thread's network
// namespace, named by the namespace's inode: the host's is always the same
// file, and a test's own namespace gets its own.
func forwardRegistryFile() (string, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return "", fmt.Errorf("failed to identify the network namespace: %w", err)
	}
	return fmt.Sprintf("/run/peapod-forward-%d.json", st.Ino), nil
}

// forwardRegistry is the content of a forwardRegistryFile.
type forwardRegistry struct {
	Before  string          `json:"before"`  // ip_forward before the first holder
	Holders []forwardHolder `json:"holders"` // the networks whose pods need it
	path    string          // the file it was read from
}

// forwardHolder is one network that has pods and masquerades.
type forwardHolder struct {
	Bridge  string `json:"bridge"`  // the network's bridge
	DataDir string `json:"dataDir"` // its IPAM directory, in its root
}

// holder is c as a registry entry.
func holder(c Config) forwardHolder { return forwardHolder{Bridge: c.Bridge, DataDir: c.DataDir} }

// holdForwarding registers c as needing ip_forward and turns it on; the
// first holder records the value it replaces.
func holdForwarding(c Config) error {
	return withForwardRegistry(func(r *forwardRegistry) error {
		if err := r.prune(); err != nil {
			return err
		}
		// Before stays when every holder was pruned: they left forwarding
		// as they found it recorded there
		if err := r.adoptLegacy(c); err != nil {
			return err
		}
		if r.Before == "" {
			b, err := os.ReadFile(ipForwardSysctl)
			if err != nil {
				return fmt.Errorf("failed to read %s: %w", ipForwardSysctl, err)
			}
			r.Before = strings.TrimSpace(string(b))
		}
		if !slices.Contains(r.Holders, holder(c)) {
			r.Holders = append(r.Holders, holder(c))
		}
		// recorded before the switch: a crash between leaves a holder
		// that the next pod or gc settles, never an unrecorded change
		if err := r.write(); err != nil {
			return err
		}
		if err := ktrace.Do("sysctl write", ipForwardSysctl+" = 1", func() error { return os.WriteFile(ipForwardSysctl, []byte("1"), 0o644) }); err != nil {
			return fmt.Errorf("failed to enable %s for network %s: %w", ipForwardSysctl, c.Bridge, err)
		}
		return nil
	})
}

// releaseForwarding drops c from the holders and, if no holder is left, puts
// back the value the first one found. A network that holds nothing is a
// no-op.
func releaseForwarding(c Config) error {
	return withForwardRegistry(func(r *forwardRegistry) error {
		r.Holders = slices.DeleteFunc(r.Holders, func(h forwardHolder) bool { return h == holder(c) })
		if err := r.prune(); err != nil {
			return err
		}
		if err := r.adoptLegacy(c); err != nil {
			return err
		}
		if len(r.Holders) > 0 {
			return r.write()
		}
		if r.Before != "" {
			if err := ktrace.Do("sysctl write", ipForwardSysctl+" = "+r.Before, func() error { return os.WriteFile(ipForwardSysctl, []byte(r.Before), 0o644) }); err != nil {
				return fmt.Errorf("failed to restore %s to %s: %w", ipForwardSysctl, r.Before, err)
			}
		}
		if err := os.Remove(r.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("failed to remove %q: %w", r.path, err)
		}
		return nil
	})
}

// prune drops the holders whose bridge or data directory no longer exists.
func (r *forwardRegistry) prune() error {
	var kept []forwardHolder
	for _, h := range r.Holders {
		if _, err := os.Stat(h.DataDir); errors.Is(err, os.ErrNotExist) {
			continue
		}
		_, err := netlink.LinkByName(h.Bridge)
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			continue
		}
		if err != nil {
			return fmt.Errorf("failed to look up bridge %q of forwarding holder %s: %w", h.Bridge, h.DataDir, err)
		}
		kept = append(kept, h)
	}
	r.Holders = kept
	return nil
}

// adoptLegacy takes over the ip_forward that an older peapod saved in c's
// DataDir: it is the value before that network's first pod, the right one to
// restore if no other holder recorded one.
func (r *forwardRegistry) adoptLegacy(c Config) error {
	path := filepath.Join(c.DataDir, legacyForwardSaved)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to read saved ip_forward %q: %w", path, err)
	}
	if r.Before == "" {
		r.Before = strings.TrimSpace(string(b))
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("failed to remove %q: %w", path, err)
	}
	return nil
}

// write stores the registry atomically.
func (r *forwardRegistry) write() error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("failed to encode forwarding registry: %w", err)
	}
	return writeAtomic(r.path, b)
}

// withForwardRegistry runs fn on the registry under the host-wide lock; a
// missing file is an empty registry. fn writes back what it changes.
func withForwardRegistry(fn func(r *forwardRegistry) error) error {
	f, err := os.OpenFile(forwardRegistryLock, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("failed to open forwarding lock %q: %w", forwardRegistryLock, err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("failed to lock %q: %w", forwardRegistryLock, err)
	}
	path, err := forwardRegistryFile()
	if err != nil {
		return err
	}
	r := forwardRegistry{path: path}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("failed to read forwarding registry %q: %w", path, err)
	default:
		// a registry that cannot be parsed is started afresh: forwarding
		// stays on until the holders re-register and go
		if json.Unmarshal(b, &r) != nil {
			r = forwardRegistry{path: path}
		}
	}
	return fn(&r)
}
