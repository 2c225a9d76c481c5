// Package pod is the CLI's pod manager: it turns validated v1 Pods into
// running sandboxes (namespace pins, network, cgroups, a supervisor), and
// stops, removes, lists and garbage-collects them. Every acquisition
// registers its rollback at once, so a failed run leaves nothing; every
// teardown is idempotent, so rm and gc can run again after a crash.
package pod

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/peapod/peapod/cgroups"
	"github.com/peapod/peapod/cni"
	"github.com/peapod/peapod/cni/chain"
	"github.com/peapod/peapod/image"
	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/state"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Sentinel errors.
var (
	// ErrNotFound: no pod by that namespace/name.
	ErrNotFound = errors.New("pod not found")
	// ErrExists: a pod by that namespace/name exists.
	ErrExists = errors.New("pod already exists")
	// ErrRunning: the operation needs a stopped pod.
	ErrRunning = errors.New("pod is running")
)

// maxSocketPath is the longest unix socket path bind(2) accepts
// (sizeof(sun_path) - 1 for the terminating NUL).
const maxSocketPath = 107

// Options configure a Manager.
type Options struct {
	// Root is the persistent root (images, pod records, leases, logs).
	Root string
	// RunRoot is the volatile root (specs, status, sockets, pins).
	RunRoot string
	// CgroupDriver is auto, v1 or v2.
	CgroupDriver string
	// Network is the root's pod network (the built-in bridge).
	Network cni.Config
	// Chain, when set, replaces the built-in network with an external CNI
	// chain run through libcni.
	Chain *chain.Chain
	// Supervisor is the path of peapod-supervisor.
	Supervisor string
	// Init is the path of peapod-init (the init and exec stages).
	Init string
	// BackoffInitialSeconds and BackoffMaxSeconds tune crash-loop backoff.
	BackoffInitialSeconds, BackoffMaxSeconds float64
	// Warn receives warnings (nil: discarded).
	Warn io.Writer
	// Trace, when set, receives how long each step of run and rm took.
	Trace io.Writer
	// Pods are the kubelet-level settings applied to the pods created.
	Pods PodDefaults
}

// PodDefaults are what the kubelet's configuration decides for every pod
// it creates: `peapod run` sets them from its flags (SetPodDefaults).
type PodDefaults struct {
	// SeccompDefault applies RuntimeDefault to containers naming no
	// seccomp profile (the kubelet's SeccompDefault).
	SeccompDefault bool
	// PidsLimit is the pod cgroup's pids.max (the kubelet's podPidsLimit):
	// 0 means DefaultPodPidsLimit, -1 unlimited.
	PidsLimit int64
	// PidsLimitSet says PidsLimit was asked for: a host without the pids
	// controller then fails the pod instead of running it unlimited.
	PidsLimitSet bool
	// AllowedUnsafeSysctls are the kubelet's --allowed-unsafe-sysctls
	// patterns ("net.core.somaxconn", "net.core.*"), on top of the safe set.
	AllowedUnsafeSysctls []string
}

// DefaultPodPidsLimit is the pids.max of a pod when run is given none.
const DefaultPodPidsLimit = 4096

// SetPodDefaults changes the settings of the pods created from now on.
func (m *Manager) SetPodDefaults(d PodDefaults) { m.o.Pods = d }

// Manager manages the pods of one root.
type Manager struct {
	// o are the options, with defaults filled in.
	o Options
	// id is a short hash of Root, used in host-global names so two roots
	// never collide.
	id string
	// cg is the cgroup driver.
	cg cgroups.Driver
	// images is the image store, opened on first use (ps, stop and rm do
	// not need it); imagesMu guards its opening (the CRI server calls
	// from many goroutines).
	images   *image.Store
	imagesMu sync.Mutex
}

// Open prepares a Manager, creating the roots and sweeping what a reboot
// left behind.
func Open(o Options) (*Manager, error) {
	// A pod's control socket lives in its run dir; sun_path holds 107
	// bytes, and bind(2) says only EINVAL when the path is longer.
	dirs := layout.Root{Root: o.Root, RunRoot: o.RunRoot}
	sock := layout.Run(dirs.RunDir("01234567-89ab-cdef-0123-456789abcdef")).Socket()
	if len(sock) > maxSocketPath {
		return nil, fmt.Errorf("--run-root %q is too long: pod sockets under it would take %d bytes, unix sockets allow %d", o.RunRoot, len(sock), maxSocketPath)
	}
	for _, d := range []string{o.Root, o.RunRoot, dirs.PodsDir(), dirs.NamesDir(), dirs.RunPodsDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("failed to create %q: %w", d, err)
		}
	}
	if o.Warn == nil {
		o.Warn = io.Discard
	}
	cg, err := cgroups.New(o.CgroupDriver, "/sys/fs/cgroup")
	if err != nil {
		return nil, explainCgroups(err)
	}
	m := &Manager{o: o, id: dirs.ID(), cg: cg}
	if err := m.sweepAfterReboot(); err != nil {
		return nil, err
	}
	return m, nil
}

// Images opens the image store on first use.
func (m *Manager) Images() (*image.Store, error) {
	m.imagesMu.Lock()
	defer m.imagesMu.Unlock()
	if m.images == nil {
		s, err := image.Open(m.dirs().ImagesDir())
		if err != nil {
			return nil, err
		}
		m.images = s
	}
	return m.images, nil
}

// RootID is the short id host-global names carry.
func (m *Manager) RootID() string { return m.id }

// CgroupRoot is the peapod parent cgroup of this root.
func (m *Manager) CgroupRoot() string { return "peapod-" + m.id }

// dirs is the on-disk layout of the manager's root.
func (m *Manager) dirs() layout.Root { return layout.Root{Root: m.o.Root, RunRoot: m.o.RunRoot} }

// Dirs is the manager's root and run root (a watcher of its pods' state
// files watches them).
func (m *Manager) Dirs() layout.Root { return m.dirs() }

// Paths of a pod.
func (m *Manager) podDir(uid string) string     { return m.dirs().PodDir(uid) }
func (m *Manager) runDir(uid string) string     { return m.dirs().RunDir(uid) }
func (m *Manager) recordPath(uid string) string { return m.dirs().RecordPath(uid) }

// nameIndex is the file holding the uid of pod ns/name.
func (m *Manager) nameIndex(ns, name string) string { return m.dirs().NameIndex(ns, name) }

// lockPath is the root's lock. Lock order, one for every command: a pod's
// name lock (lockName), then the root's lock, then a pod's adopt.lock
// (holdAdoption, adopt). gc takes name locks under the root's lock, but
// only with LOCK_NB, skipping a busy one; nobody waits for the root's lock
// while holding an adopt.lock (rm -f releases it before unbinding the
// helper), since gc waits for adopt.lock under the root's lock.
func (m *Manager) lockPath() string { return m.dirs().LockPath() }

func (m *Manager) netnsName(uid string) string { return m.dirs().NetnsName(uid) }

// validIndex is nameIndex for a namespace and name a manifest could have:
// only valid names were ever stored, and anything else (a CLI argument
// with a '/' or "..") must not become a path.
func (m *Manager) validIndex(ns, name string) (string, error) {
	if len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
		return "", fmt.Errorf("pod %q in namespace %q: %w", name, ns, ErrNotFound)
	}
	return m.nameIndex(ns, name), nil
}

// lockName takes the name lock of ns/name: the flock on its name index,
// which run holds from the reservation of the name until the pod is fully
// created (or rolled back), and rm until the pod is gone. So rm, issued
// while a run of the same name is under way, waits for it — as podman's
// per-container lock does — and then removes a whole pod, never half of
// one. The lock dies with its holder, so a killed run or rm never leaves
// it taken.
func (m *Manager) lockName(ns, name string) (*state.Held, error) {
	idx, err := m.validIndex(ns, name)
	if err != nil {
		return nil, err
	}
	h, err := state.LockExisting(idx, true)
	if errors.Is(err, state.ErrBusy) {
		fmt.Fprintf(m.o.Warn, "peapod: pod %s/%s is being created or removed by another peapod; waiting for it\n", ns, name)
		h, err = state.LockExisting(idx, false)
	}
	if errors.Is(err, state.ErrNotFound) {
		return nil, fmt.Errorf("pod %q in namespace %q: %w", name, ns, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to lock pod %s/%s: %w", ns, name, err)
	}
	return h, nil
}

// entry is one pod of the root as its files show it, readable or not.
type entry struct {
	// UID is the pod's uid (its directory's name).
	UID string
	// Namespace and Name come from the record, or from the name index
	// when the record cannot be read ("" when neither names it; a name too
	// long for a file name is then its index's shortened key).
	Namespace, Name string
	// Index is the name index file naming the uid ("" when none does).
	Index string
	// Rec is the record; nil when Err is set.
	Rec *state.Record
	// Err says why the record could not be read: ErrNotFound when only
	// the name index is left (a run or rm killed between the name and the
	// record), a decode error when the record is garbage.
	Err error
	// Created is when the pod's directory was made (for an unreadable record).
	Created time.Time
}

// entries lists every pod of the root: each pod dir, readable or not, and
// each name whose pod dir is gone. A record that cannot be read is listed
// with its error, never skipped: skipped, its live resources would look
// orphaned to gc.
func (m *Manager) entries() ([]entry, error) {
	// Names before pod dirs: rm and a failed run's rollback remove a pod's
	// dir and then its name, without the root's lock. Read the other way,
	// a removal finishing between the two reads left a listed dir with no
	// name and no record, which gc took for an interrupted run's debris.
	names := m.namesByUID()
	dirs, err := os.ReadDir(m.dirs().PodsDir())
	if err != nil {
		return nil, fmt.Errorf("failed to list pods: %w", err)
	}
	var out []entry
	seen := map[string]bool{}
	for _, d := range dirs {
		uid := d.Name()
		seen[uid] = true
		e := entry{UID: uid}
		e.Rec, e.Err = state.ReadRecord(m.recordPath(uid))
		if e.Rec != nil {
			e.Namespace, e.Name = e.Rec.Namespace, e.Rec.Name
		} else {
			e.Namespace, e.Name = names[uid].ns, names[uid].name
			if fi, err := d.Info(); err == nil {
				e.Created = fi.ModTime()
			}
		}
		e.Index = names[uid].index
		out = append(out, e)
	}
	for uid, nn := range names {
		if !seen[uid] {
			out = append(out, entry{UID: uid, Namespace: nn.ns, Name: nn.name, Index: nn.index,
				Err: fmt.Errorf("name index %q names uid %s, which has no record: %w", nn.index, uid, state.ErrNotFound)})
		}
	}
	return out, nil
}

// indexName is what one name index file says.
type indexName struct {
	// ns and name are from the file's name (see layout.NameIndexFile).
	ns, name string
	// index is the file's path.
	index string
}

// namesByUID reads the name index backwards: uid → (namespace, name).
// Index files are named NAMESPACE_NAME; neither part may hold "_" (both
// are DNS labels or subdomains).
func (m *Manager) namesByUID() map[string]indexName {
	dir := m.dirs().NamesDir()
	files, _ := os.ReadDir(dir)
	out := map[string]indexName{}
	for _, f := range files {
		ns, name, ok := strings.Cut(f.Name(), "_")
		if !ok || strings.HasPrefix(f.Name(), ".") {
			continue // a reservation being linked into place
		}
		uid, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err == nil && len(uid) > 0 {
			out[string(uid)] = indexName{ns: ns, name: name, index: filepath.Join(dir, f.Name())}
		}
	}
	return out
}

// records lists every readable pod record of the root.
func (m *Manager) records() ([]*state.Record, error) {
	es, err := m.entries()
	if err != nil {
		return nil, err
	}
	var out []*state.Record
	for _, e := range es {
		if e.Rec != nil {
			out = append(out, e.Rec)
		}
	}
	return out, nil
}

// sweepAfterReboot removes the leftovers of pods whose volatile state is
// gone: --run-root is a tmpfs, so after a reboot it is empty while --root
// still names pods. Their processes, pins and veths died with the old
// kernel; their leases and upper dirs did not.
func (m *Manager) sweepAfterReboot() error {
	bootID, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	marker := m.dirs().BootIDMarker()
	old, err := os.ReadFile(marker)
	if err == nil && string(old) == string(bootID) {
		return nil
	}
	unlock, err := state.Lock(m.lockPath())
	if err != nil {
		return err
	}
	defer unlock()
	if old, err := os.ReadFile(marker); err == nil && string(old) == string(bootID) {
		return nil
	}
	es, err := m.entries()
	if err != nil {
		return err
	}
	for _, e := range es {
		if _, err := os.Stat(m.podDir(e.UID)); err != nil {
			continue // a name whose pod dir is gone holds nothing
		}
		if _, err := os.Stat(m.runDir(e.UID)); err == nil {
			continue // same boot, older peapod without a marker: leave it
		}
		rec := e.Rec
		if rec == nil {
			// Only the record written when the pod was reserved is
			// synced; a later rewrite that a power cut caught half-done
			// (empty, on a file system that does not order a rename
			// after the data) still names the pod by its dir and its
			// name, and every resource is derived from its uid.
			rec = &state.Record{UID: e.UID, Namespace: e.Namespace, Name: e.Name}
		}
		fmt.Fprintf(m.o.Warn, "peapod: sweeping pod %s/%s left from before a reboot\n", rec.Namespace, rec.Name)
		m.releaseResources(rec, newTracer(m.o.Trace, "gc", rec.Namespace+"/"+rec.Name))
	}
	// The QoS lock is made with the run root, not at its first use, so
	// that a root's files do not change as its pods come and go.
	if err := os.WriteFile(m.dirs().QoSLock(), nil, 0o600); err != nil {
		return fmt.Errorf("failed to create the QoS lock: %w", err)
	}
	return os.WriteFile(marker, bootID, 0o600)
}
