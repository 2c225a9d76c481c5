package namespaces

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/spec"

	"github.com/peapod/peapod/internal/ktrace"

	"github.com/peapod/peapod/internal/kfeature"
)

const (
	// netnsDir is where iproute2 looks for named network namespaces.
	netnsDir = layout.NetnsDir
	// hostNameMax is the kernel's HOST_NAME_MAX.
	hostNameMax = 64
)

// ErrNotPinned is returned by PinInode for a path that is not a mounted
// namespace file (a leftover plain file, or nothing at all).
var ErrNotPinned = errors.New("not a pinned namespace")

// SandboxOptions names the pins of one pod's shared namespaces.
type SandboxOptions struct {
	// RunDir is the pod's volatile dir; the uts and ipc pins go to RunDir/ns/{uts,ipc}.
	RunDir string
	// NetnsName pins the network namespace at /run/netns/<NetnsName> so `ip netns` lists it.
	NetnsName string
	// Hostname is set in the new UTS namespace; "" keeps the host's name.
	Hostname string
	// HostNetwork shares the host's net and uts namespaces: only ipc is pinned.
	HostNetwork bool
	// HostIPC shares the host's ipc namespace: it is not pinned.
	HostIPC bool
}

// Sandbox is a pod's set of pinned namespaces.
type Sandbox struct {
	// Paths maps spec.NSNet, spec.NSUTS and spec.NSIPC to the pinned file.
	Paths map[string]string
}

// sandboxPin is one namespace to unshare and where to pin it.
type sandboxPin struct {
	// key is the spec.NS* name of the namespace.
	key string
	// proc is the namespace's name under /proc/<pid>/task/<tid>/ns.
	proc string
	// flag is its CLONE_NEW* flag for unshare(2).
	flag int
	// path is the pin file.
	path string
}

// pins lists the namespaces o asks for, in the order they are pinned.
func (o SandboxOptions) pins() []sandboxPin {
	run := layout.Run(o.RunDir)
	var pins []sandboxPin
	if !o.HostNetwork {
		pins = append(pins,
			sandboxPin{spec.NSNet, "net", unix.CLONE_NEWNET, layout.NetnsPath(o.NetnsName)},
			sandboxPin{spec.NSUTS, "uts", unix.CLONE_NEWUTS, run.NSPin("uts")})
	}
	if !o.HostIPC {
		pins = append(pins, sandboxPin{spec.NSIPC, "ipc", unix.CLONE_NEWIPC, run.NSPin("ipc")})
	}
	return pins
}

// validate checks what CreateSandbox needs before it touches anything.
func (o SandboxOptions) validate() error {
	if o.RunDir == "" {
		return errors.New("sandbox needs a run dir")
	}
	if o.HostNetwork {
		return nil
	}
	if o.NetnsName == "" || o.NetnsName != filepath.Base(o.NetnsName) || o.NetnsName[0] == '.' {
		return fmt.Errorf("invalid netns name %q", o.NetnsName)
	}
	if len(o.Hostname) > hostNameMax {
		return fmt.Errorf("hostname %q is longer than %d bytes", o.Hostname, hostNameMax)
	}
	return nil
}

// CreateSandbox creates and pins the pod's net, uts and ipc namespaces (no
// net and uts for a host-network pod, no ipc for a host-IPC one). It is
// all-or-nothing: on failure no pin file and no mount is left.
func CreateSandbox(o SandboxOptions) (*Sandbox, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if !o.HostNetwork {
		if err := ensureNetnsDir(); err != nil {
			return nil, err
		}
	}
	nsDir := layout.Run(o.RunDir).NSDir()
	if err := os.MkdirAll(nsDir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create namespace dir %q: %w", nsDir, err)
	}
	// unshare(2) of net/uts/ipc changes only the calling thread, which is
	// then discarded (never reused) so no other goroutine runs in the pod's
	// namespaces.
	var err error
	onSpareThread(func() bool {
		err = pinOnThisThread(o)
		return false
	})
	if err != nil {
		os.Remove(nsDir) // only if empty: other pins may live there
		return nil, err
	}
	sb := &Sandbox{Paths: map[string]string{}}
	for _, p := range o.pins() {
		sb.Paths[p.key] = p.path
	}
	return sb, nil
}

// pinOnThisThread unshares and pins on the locked calling thread, undoing
// every pin it made when a later step fails.
func pinOnThisThread(o SandboxOptions) (err error) {
	var undo []func()
	defer func() {
		if err == nil {
			return
		}
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}()
	pins := o.pins()
	flags := 0
	for _, p := range pins {
		flags |= p.flag
	}
	if flags == 0 {
		return nil // every namespace is the host's
	}
	if err := ktrace.Unshare(flags); err != nil {
		return fmt.Errorf("failed to unshare namespaces: %w", kfeature.Unshare(flags, err))
	}
	if !o.HostNetwork && o.Hostname != "" {
		if err := unix.Sethostname([]byte(o.Hostname)); err != nil {
			return fmt.Errorf("failed to set hostname %q: %w", o.Hostname, err)
		}
	}
	tid := strconv.Itoa(unix.Gettid())
	for _, p := range pins {
		src := filepath.Join("/proc/self/task", tid, "ns", p.proc)
		if err := pinNamespace(src, p.path, &undo); err != nil {
			return err
		}
	}
	return nil
}

// pinNamespace bind-mounts the namespace file src onto a new file at dst and
// registers each step's undo right after it succeeds.
func pinNamespace(src, dst string, undo *[]func()) error {
	// O_EXCL: an existing file is another pod's pin, never ours to reuse or remove.
	f, err := os.OpenFile(dst, os.O_RDONLY|os.O_CREATE|os.O_EXCL|unix.O_CLOEXEC, 0o444)
	if err != nil {
		return fmt.Errorf("failed to create namespace pin %q: %w", dst, err)
	}
	f.Close()
	*undo = append(*undo, func() { os.Remove(dst) })
	if err := ktrace.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("failed to bind %q onto %q: %w", src, dst, err)
	}
	*undo = append(*undo, func() { unmountPin(dst) })
	return nil
}

// ensureNetnsDir makes /run/netns a shared mount, as `ip netns add` does, so
// that unmounting a pin (ours or `ip netns del`'s) reaches every mount
// namespace that copied it; otherwise a container's copy keeps the netns alive.
func ensureNetnsDir() error {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return fmt.Errorf("failed to create %q: %w", netnsDir, err)
	}
	dir, err := os.Open(netnsDir)
	if err != nil {
		return fmt.Errorf("failed to open %q: %w", netnsDir, err)
	}
	defer dir.Close()
	// Serialise with other peapod processes so two do not stack two
	// self-binds. The lock is on the directory inode, the same before and
	// after the bind.
	if err := unix.Flock(int(dir.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("failed to lock %q: %w", netnsDir, err)
	}
	defer unix.Flock(int(dir.Fd()), unix.LOCK_UN)
	err = ktrace.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if !errors.Is(err, unix.EINVAL) {
		return wrapMountErr("make shared", netnsDir, err)
	}
	// EINVAL: not a mount point yet. Bind it onto itself, then retry.
	if err := ktrace.Mount(netnsDir, netnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return wrapMountErr("bind", netnsDir, err)
	}
	return wrapMountErr("make shared", netnsDir,
		ktrace.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, ""))
}

// wrapMountErr returns nil for a nil err, or err naming what failed on path.
func wrapMountErr(verb, path string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("failed to %s %q: %w", verb, path, err)
}

// RemoveSandbox unmounts and removes every pin o could have created. It is
// idempotent, and works after a CreateSandbox that failed half-way or never ran.
func RemoveSandbox(o SandboxOptions) error {
	if o.RunDir == "" {
		return errors.New("sandbox needs a run dir")
	}
	nsDir := layout.Run(o.RunDir).NSDir()
	// Both shapes of pin set, whatever HostNetwork says now: a pod record
	// might not say how the sandbox was made.
	paths := []string{layout.Run(o.RunDir).NSPin("uts"), layout.Run(o.RunDir).NSPin("ipc")}
	if o.NetnsName != "" && o.NetnsName == filepath.Base(o.NetnsName) {
		paths = append(paths, layout.NetnsPath(o.NetnsName))
	}
	var errs []error
	for _, p := range paths {
		errs = append(errs, removePin(p))
	}
	// Other pins (the shared pid ns) may still live in ns/: not ours to force.
	if err := os.Remove(nsDir); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.ENOTEMPTY) {
		errs = append(errs, fmt.Errorf("failed to remove namespace dir %q: %w", nsDir, err))
	}
	return errors.Join(errs...)
}

// removePin unmounts and deletes one pin file; absence is success.
func removePin(path string) error {
	if err := unmountPin(path); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to remove namespace pin %q: %w", path, err)
	}
	return nil
}

// unmountPin detaches every mount stacked on path. EINVAL (not a mount
// point) and ENOENT (no file) mean there is nothing (left) to unmount.
func unmountPin(path string) error {
	for {
		err := ktrace.Unmount(path, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("failed to unmount namespace pin %q: %w", path, err)
		}
	}
}

// PinInode returns the inode of the namespace that the pin file at path
// holds, or ErrNotPinned when no namespace is mounted there.
func PinInode(path string) (uint64, error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return 0, fmt.Errorf("namespace pin %q: %w", path, ErrNotPinned)
		}
		return 0, fmt.Errorf("failed to statfs namespace pin %q: %w", path, err)
	}
	if fs.Type != unix.NSFS_MAGIC {
		return 0, fmt.Errorf("namespace pin %q: %w", path, ErrNotPinned)
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("failed to stat namespace pin %q: %w", path, err)
	}
	return st.Ino, nil
}
