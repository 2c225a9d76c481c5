package pod

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/peapod/peapod/cgroups"
	"github.com/peapod/peapod/cni"
	"github.com/peapod/peapod/internal/kfeature"
)

// explainCgroups adds `peapod check`'s fix to a cgroup driver that cannot
// work on this host (a missing hierarchy or controller); a bad driver name
// is the user's and passes unchanged.
func explainCgroups(err error) error {
	if errors.Is(err, cgroups.ErrNoController) || errors.Is(err, cgroups.ErrUnsupported) {
		return kfeature.Cgroups.Explain(err)
	}
	return err
}

// nameHolder rewrites a host port conflict to name the pod holding the
// port by namespace/name, as the user knows it, instead of by uid.
func (m *Manager) nameHolder(err error) error {
	var pa *cni.PortAllocatedError
	if !errors.As(err, &pa) {
		return err
	}
	holder := "a pod with uid " + pa.Holder
	if n, ok := m.namesByUID()[pa.Holder]; ok {
		holder = "pod " + n.ns + "/" + n.name
	}
	return fmt.Errorf("hostPort %s: %w: %s holds %s (remove it, or choose another hostPort)", pa.Mapping, cni.ErrPortAllocated, holder, pa.Held)
}

// howToGet tells the user how to put a missing image into the store.
func howToGet(ref string) string {
	return fmt.Sprintf(" (get it into the store with `peapod image pull %s`, or from a file with `peapod image import FILE --name %s`)", ref, ref)
}

// warnedFile, in the network's data directory, holds the host warnings
// already shown for the network, one a line.
const warnedFile = "warned"

// unwarned returns the warnings not shown before for this network and
// records them: each is said once per network, not at every bridge
// creation (after a reboot, or `net rm`, the bridge is made again).
func (m *Manager) unwarned(ws []string) []string {
	path := filepath.Join(m.o.Network.DataDir, warnedFile)
	old, _ := os.ReadFile(path)
	seen := map[string]bool{}
	for _, l := range strings.Split(string(old), "\n") {
		seen[l] = true
	}
	var out []string
	for _, w := range ws {
		if !seen[w] {
			out = append(out, w)
		}
	}
	if len(out) > 0 {
		all := append(strings.Split(strings.TrimSpace(string(old)), "\n"), out...)
		if err := os.MkdirAll(m.o.Network.DataDir, 0o700); err == nil {
			_ = os.WriteFile(path, []byte(strings.TrimSpace(strings.Join(all, "\n"))+"\n"), 0o600) // best effort: at worst a warning repeats
		}
	}
	return out
}
