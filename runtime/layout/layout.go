// Package layout is where peapod keeps things on disk: every path under
// --root and --run-root is spelled here and only here, so the CLI, the
// manifest translation, the supervisor and gc agree by construction.
//
// The supervisor links this package, so it imports the standard library
// only (see cmd/peapod-supervisor/lean_test.go).
//
//	--root/                      persistent, survives a reboot
//	  lock                       the root's flock
//	  images/                    the image store
//	  names/NS_NAME              a pod's uid, by namespace and name
//	  network.json               the root's network
//	  net/BRIDGE/, net/cni-cache the IPAM leases, the CNI cache
//	  pods/UID/                  a pod (Pod)
//	--run-root/                  volatile, a tmpfs
//	  boot_id                    the boot the run root was made in
//	  bin/2/peapod-init          the read-only init helper bind (HelperMount)
//	  pods/UID/                  a pod's run dir (Run)
//	    exec/CONTAINER, .default what `peapod exec` reads (ExecDir)
package layout

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strconv"
)

// Root is a peapod root: the persistent Root and the volatile RunRoot.
type Root struct {
	Root, RunRoot string
}

// ID is a short hash of Root that host-global names (network namespaces,
// cgroups) carry, so two roots never collide.
func (r Root) ID() string {
	sum := sha256.Sum256([]byte(filepath.Clean(r.Root)))
	return hex.EncodeToString(sum[:])[:6]
}

// LockPath is the root's lock, held while names, records and sweeps change.
func (r Root) LockPath() string { return filepath.Join(r.Root, "lock") }

// ImagesDir holds the image store.
func (r Root) ImagesDir() string { return filepath.Join(r.Root, "images") }

// NetworkConfig is the root's network, fixed by its first run.
func (r Root) NetworkConfig() string { return filepath.Join(r.Root, "network.json") }

// NetDataDir holds the IPAM leases of a bridge.
func (r Root) NetDataDir(bridge string) string { return NetDataDir(r.Root, bridge) }

// NetDataDir is Root.NetDataDir for a bare root path (cni's defaults).
func NetDataDir(root, bridge string) string { return filepath.Join(root, "net", bridge) }

// CNICacheDir is the cache of a CNI plugin chain's results.
func (r Root) CNICacheDir() string { return filepath.Join(r.Root, "net", "cni-cache") }

// SeccompDir holds the Localhost seccomp profiles pods name by a path
// relative to it (the kubelet's <root-dir>/seccomp). peapod only reads it.
func (r Root) SeccompDir() string { return filepath.Join(r.Root, "seccomp") }

// PodsDir holds one directory per pod, named by uid.
func (r Root) PodsDir() string { return filepath.Join(r.Root, "pods") }

// PodDir is the persistent directory of pod uid.
func (r Root) PodDir(uid string) string { return filepath.Join(r.PodsDir(), uid) }

// RecordPath is the record of pod uid.
func (r Root) RecordPath(uid string) string { return Pod(r.PodDir(uid)).Record() }

// NamesDir holds the name index: one file per pod name.
func (r Root) NamesDir() string { return filepath.Join(r.Root, "names") }

// NameIndex is the file holding the uid of pod ns/name.
func (r Root) NameIndex(ns, name string) string {
	return filepath.Join(r.NamesDir(), NameIndexFile(ns, name))
}

// Bounds of a name index file name.
const (
	// fileNameMax is NAME_MAX: a namespace (a DNS label, up to 63 bytes) and
	// a pod name (a DNS subdomain, up to 253) can be longer together.
	fileNameMax = 255
	// nameIndexKept is how much of a longer key stays readable.
	nameIndexKept = 150
)

// NameIndexFile is "NS_NAME", or for a key longer than a file name may be,
// its first nameIndexKept bytes, '@' and the SHA-256 of the whole key: '@'
// is in no valid namespace or name, so a hashed key never equals one
// stored whole.
func NameIndexFile(ns, name string) string {
	key := ns + "_" + name
	if len(key) <= fileNameMax {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return key[:nameIndexKept] + "@" + hex.EncodeToString(sum[:])
}

// RunPodsDir holds one run dir per pod, named by uid.
func (r Root) RunPodsDir() string { return filepath.Join(r.RunRoot, "pods") }

// RunDir is the volatile directory of pod uid.
func (r Root) RunDir(uid string) string { return filepath.Join(r.RunPodsDir(), uid) }

// BootIDMarker records the boot the run root was made in: a different
// boot id means the run root was lost with a reboot.
func (r Root) BootIDMarker() string { return filepath.Join(r.RunRoot, "boot_id") }

// ApplyLock serialises `peapod apply` runs of a root: each compares and
// replaces pods under it, so two never replace one pod at once.
func (r Root) ApplyLock() string { return filepath.Join(r.RunRoot, "apply.lock") }

// QoSLock serialises the updates of the root's burstable cgroup's
// cpu.shares, each a read of every Burstable pod and one write.
func (r Root) QoSLock() string { return filepath.Join(r.RunRoot, "qos.lock") }

// HelperMount is the read-only bind of peapod-init that pods exec. Its
// directory is the helper protocol's version (HelperProtocol), so that a
// supervisor of an older release keeps the helper it speaks with, while
// this release's callers use theirs: the bind of one path is replaced when
// the installed helper changes (namespaces.BindHelperReadOnly).
func (r Root) HelperMount() string {
	return filepath.Join(r.RunRoot, "bin", HelperProtocol, "peapod-init")
}

// HelperProtocol versions what callers hand peapod-init: "2" is the exec
// stage in C with the caller-resolved profile (namespaces.NewExecProfile).
const HelperProtocol = "2"

// LegacyHelperMount is where releases before HelperProtocol bound the
// helper; their supervisors keep executing it until the root is idle.
func (r Root) LegacyHelperMount() string { return filepath.Join(r.RunRoot, "bin", "peapod-init") }

// NetnsName is the name under /run/netns of pod uid's network namespace.
func (r Root) NetnsName(uid string) string { return r.NetnsPrefix() + uid[:8] }

// NetnsPrefix begins the name of every network namespace of the root.
func (r Root) NetnsPrefix() string { return "peapod-" + r.ID() + "-" }

// NetnsDir is where iproute2 looks for named network namespaces.
const NetnsDir = "/run/netns"

// NetnsPath is the pin of a named network namespace.
func NetnsPath(name string) string { return filepath.Join(NetnsDir, name) }

// Pod is a pod's persistent directory, --root/pods/UID.
type Pod string

// Record is the pod's record.
func (p Pod) Record() string { return filepath.Join(string(p), "pod.json") }

// Sources holds the ConfigMaps and Secrets the pod references: peapod has
// no API server to read them from again. It is written mode 0600
// (state.WriteJSON), as it may hold secret values, and goes with the pod
// dir on rm.
func (p Pod) Sources() string { return filepath.Join(string(p), "sources.json") }

// Volume is the backing directory of a disk emptyDir volume.
func (p Pod) Volume(name string) string { return filepath.Join(string(p), "volumes", name) }

// Upper is the overlay upper dir of container ctr.
func (p Pod) Upper(ctr string) string { return filepath.Join(string(p), "containers", ctr, "upper") }

// Work is the overlay work dir of container ctr.
func (p Pod) Work(ctr string) string { return filepath.Join(string(p), "containers", ctr, "work") }

// Log is the log of container ctr's first instance; InstanceLog names the others.
func (p Pod) Log(ctr string) string { return filepath.Join(string(p), "logs", ctr, "0.log") }

// InstanceLog is the log of the restartCount-th instance of the container
// whose log is log: <dir>/<n>.log, as the kubelet names them, so
// --previous reads n-1.
func InstanceLog(log string, restartCount int) string {
	return filepath.Join(filepath.Dir(log), strconv.Itoa(restartCount)+".log")
}

// Run is a pod's volatile directory, --run-root/pods/UID.
type Run string

// File names in a run dir that processes of different versions share.
const (
	SpecFile      = "spec.json"
	StatusFile    = "status.json"
	EventsFile    = "events.json"
	SocketFile    = "supervisor.sock"
	AdoptLockFile = "adopt.lock"
	SupervisorLog = "supervisor.log"
)

// Spec is the pod's runtime spec, written by the CLI for the supervisor.
func (r Run) Spec() string { return filepath.Join(string(r), SpecFile) }

// Status is the supervisor's status of the pod.
func (r Run) Status() string { return filepath.Join(string(r), StatusFile) }

// Events are the pod's events.
func (r Run) Events() string { return filepath.Join(string(r), EventsFile) }

// Socket is the supervisor's control socket.
func (r Run) Socket() string { return filepath.Join(string(r), SocketFile) }

// SupervisorLog is the supervisor's stderr, shown when it fails to start.
func (r Run) SupervisorLog() string { return filepath.Join(string(r), SupervisorLog) }

// AdoptLock serialises the replacement of a pod's lost supervisor (and
// rm/stop against it): two commands that both find the supervisor lost
// must not start two. It is the last lock in peapod's lock order (name,
// root, adopt.lock; see runtime/pod's lockPath).
func (r Run) AdoptLock() string { return filepath.Join(string(r), AdoptLockFile) }

// ExecDir holds what `peapod exec` reads instead of the spec and status:
// one profile per running container (namespaces.WriteExecProfile), named
// after it, and DefaultContainerFile.
func (r Run) ExecDir() string { return filepath.Join(string(r), "exec") }

// ExecProfile is the exec profile of container ctr; only a ctr that
// IsLabel has one (any other could name a path outside ExecDir).
func (r Run) ExecProfile(ctr string) string { return filepath.Join(r.ExecDir(), ctr) }

// IsLabel reports whether name is an RFC 1123 label, as every container
// name of a manifest is (package manifest validates them with k8s.io's
// rules, which the supervisor must not link).
func IsLabel(name string) bool {
	if len(name) == 0 || len(name) > 63 || name[0] == '-' || name[len(name)-1] == '-' {
		return false
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}

// DefaultContainerFile names, in ExecDir, the file holding the container
// `exec` picks without -c (first line) and kubectl's note about the choice
// (the rest). Its leading dot is in no container name.
const DefaultContainerFile = ".default"

// Shm is the pod's /dev/shm tmpfs.
func (r Run) Shm() string { return filepath.Join(string(r), "shm") }

// Etc holds the pod's generated /etc files (hosts, hostname, resolv.conf).
func (r Run) Etc() string { return filepath.Join(string(r), "etc") }

// EtcFile is one generated /etc file.
func (r Run) EtcFile(name string) string { return filepath.Join(r.Etc(), name) }

// Volume is the tmpfs of a memory emptyDir volume, or the files of a
// configMap, secret, downwardAPI or projected volume.
func (r Run) Volume(name string) string { return filepath.Join(string(r), "volumes", name) }

// Rootfs is the overlay mount point of container ctr.
func (r Run) Rootfs(ctr string) string { return filepath.Join(string(r), "rootfs", ctr) }

// NSDir holds the pod's namespace pins.
func (r Run) NSDir() string { return filepath.Join(string(r), "ns") }

// NSPin is the pin of the pod's namespace kind ("ipc", "uts").
func (r Run) NSPin(kind string) string { return filepath.Join(r.NSDir(), kind) }

// FIFOs are the stdout and stderr FIFOs of the restartCount-th instance of
// container id: an adopting supervisor finds them by the container id and
// the restart count in the status.
func (r Run) FIFOs(id string, restartCount int) [2]string {
	base := filepath.Join(string(r), "io", id+"-"+strconv.Itoa(restartCount))
	return [2]string{base + ".out", base + ".err"}
}
