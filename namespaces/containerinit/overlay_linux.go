package containerinit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/runtime/spec"

	"github.com/peapod/peapod/internal/ktrace"

	"github.com/peapod/peapod/internal/kfeature"
)

// MaxOverlayLowers is overlayfs's OVL_MAX_STACK: one overlay stacks at most
// this many lower layers, whichever way they are passed.
const MaxOverlayLowers = 500

// fsconfigMaxString is the longest value fsconfig(FSCONFIG_SET_STRING)
// copies in (strndup_user(value, 256) in fs/fsopen.c, NUL included).
const fsconfigMaxString = 255

// overlayMethod is one way of handing the layers to the kernel.
type overlayMethod int

const (
	// overlayData is mount(2) with absolute paths in the option data.
	overlayData overlayMethod = iota
	// overlayLowerdirPlus is the new mount API, one lowerdir+ per layer.
	overlayLowerdirPlus
	// overlayFdNames is mount(2) from /proc/self/fd, layers named by fd.
	overlayFdNames
)

// String names the method in errors.
func (m overlayMethod) String() string {
	return [...]string{"mount(2)", "lowerdir+", "mount(2) through /proc/self/fd"}[m]
}

// mount mounts an overlay of r at target by method m.
func (m overlayMethod) mount(target string, r spec.Rootfs) error {
	switch m {
	case overlayLowerdirPlus:
		return mountOverlayLowerdirPlus(target, r)
	case overlayFdNames:
		return mountOverlayFdNames(target, r)
	}
	return mountOverlayData(target, r)
}

// mountOverlay mounts r at target; upper and work are created if missing.
//
// mount(2) copies one page of option data, which a deep image's absolute
// lower paths overflow (60 layers of a store under /var/lib/peapod already
// do). Such an overlay is built with the new mount API instead, one
// lowerdir+ per layer (Linux 6.8), or, on older kernels, with mount(2) from
// /proc/self/fd naming each layer by a descriptor of a few bytes, as
// containerd's mount helper shortens lowers by mounting from a short
// working directory.
func mountOverlay(target string, r spec.Rootfs) error {
	if err := checkRootfs(r); err != nil {
		return fmt.Errorf("failed to mount overlay on %q: %w", target, err)
	}
	for _, dir := range []string{r.Upper, r.Work, target} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("failed to create overlay directory %q: %w", dir, err)
		}
	}
	m := pickOverlayMethod(r, kernelAtLeast(6, 8))
	if err := m.mount(target, r); err != nil {
		return fmt.Errorf("failed to mount overlay of %d layers on %q with %s: %w", len(r.Lowers), target, m, kfeature.Overlay.Wrap(err))
	}
	return nil
}

// pickOverlayMethod chooses the plainest way that can pass r to the kernel;
// lowerdirPlus says whether the kernel has lowerdir+.
func pickOverlayMethod(r spec.Rootfs, lowerdirPlus bool) overlayMethod {
	if len(overlayOptions(r.Lowers, r)) < os.Getpagesize() {
		return overlayData
	}
	if lowerdirPlus && lowerdirPlusFits(r) {
		return overlayLowerdirPlus
	}
	return overlayFdNames
}

// checkRootfs refuses an overlay the kernel could never mount, and paths
// the option syntax cannot carry.
func checkRootfs(r spec.Rootfs) error {
	if len(r.Lowers) == 0 || r.Upper == "" || r.Work == "" {
		return errors.New("overlay needs at least one lower, an upper and a work dir")
	}
	if len(r.Lowers) > MaxOverlayLowers {
		return fmt.Errorf("%d lower layers, more than overlayfs stacks (%d)", len(r.Lowers), MaxOverlayLowers)
	}
	for _, p := range append([]string{r.Upper, r.Work}, r.Lowers...) {
		// ',' separates mount options and ':' lowers; the kernel's escaping
		// is not worth supporting for paths peapod generates itself.
		if !filepath.IsAbs(p) || strings.ContainsAny(p, ",:") {
			return fmt.Errorf("overlay path %q must be absolute without ',' or ':'", p)
		}
	}
	return nil
}

// overlayOptions builds overlayfs mount data naming the layers by lowers
// (top-first, as lowerdir wants them).
func overlayOptions(lowers []string, r spec.Rootfs) string {
	return "lowerdir=" + strings.Join(lowers, ":") + ",upperdir=" + r.Upper + ",workdir=" + r.Work
}

// mountOverlayData mounts with mount(2) and absolute paths: what every
// kernel takes, as long as the data fits in a page.
func mountOverlayData(target string, r spec.Rootfs) error {
	return mountData(target, overlayOptions(r.Lowers, r))
}

// mountData mounts an overlay at target with opts as mount(2) data.
func mountData(target, opts string) error {
	// mount(2) copies at most one page of data, the NUL included.
	if len(opts) >= os.Getpagesize() {
		return fmt.Errorf("overlay options are %d bytes, more than mount(2) accepts (%d)", len(opts), os.Getpagesize()-1)
	}
	return ktrace.Mount("overlay", target, "overlay", 0, opts)
}

// mountOverlayFdNames mounts with mount(2) from /proc/self/fd as working
// directory, each lower named by the number of a descriptor open on it: at
// most 4 bytes a layer, so even MaxOverlayLowers layers fit in a page on
// any kernel. The init stage runs in its own mount namespace and pivots
// (changing directory) right after, so the chdir costs nothing.
func mountOverlayFdNames(target string, r spec.Rootfs) (err error) {
	names := make([]string, 0, len(r.Lowers))
	for _, l := range r.Lowers {
		fd, err := unix.Open(l, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("failed to open lower layer %q: %w", l, err)
		}
		defer unix.Close(fd)
		names = append(names, strconv.Itoa(fd))
	}
	// Absolute upper, work and target: they do not depend on the cwd.
	opts := overlayOptions(names, r)
	cwd, err := unix.Open(".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("failed to open the working directory: %w", err)
	}
	defer unix.Close(cwd)
	if err := unix.Chdir("/proc/self/fd"); err != nil {
		return fmt.Errorf("failed to enter /proc/self/fd: %w", err)
	}
	defer func() {
		if cerr := unix.Fchdir(cwd); cerr != nil && err == nil {
			err = fmt.Errorf("failed to return to the working directory: %w", cerr)
		}
	}()
	// overlayfs resolves each lower once, at mount time, following the
	// magic link to the layer directory itself.
	return mountData(target, opts)
}

// lowerdirPlusFits reports whether every path fits in one fsconfig string.
func lowerdirPlusFits(r spec.Rootfs) bool {
	for _, p := range append([]string{r.Upper, r.Work}, r.Lowers...) {
		if len(p) > fsconfigMaxString {
			return false
		}
	}
	return true
}

// mountOverlayLowerdirPlus builds the overlay with the new mount API, one
// lowerdir+ per layer (Linux 6.8), which has no limit on the total length;
// mountinfo still lists each layer's path.
func mountOverlayLowerdirPlus(target string, r spec.Rootfs) error {
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("failed to open an overlay filesystem context: %w", err)
	}
	defer unix.Close(fsfd)
	set := func(key, value string) error {
		if err := unix.FsconfigSetString(fsfd, key, value); err != nil {
			return fmt.Errorf("failed to set overlay %s=%q: %w%s", key, value, err, fsLog(fsfd))
		}
		return nil
	}
	// The source mount(2) would show, so mountinfo reads the same.
	if err := set("source", "overlay"); err != nil {
		return err
	}
	for _, l := range r.Lowers {
		if err := set("lowerdir+", l); err != nil {
			return err
		}
	}
	if err := set("upperdir", r.Upper); err != nil {
		return err
	}
	if err := set("workdir", r.Work); err != nil {
		return err
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fmt.Errorf("failed to create overlay: %w%s", err, fsLog(fsfd))
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("failed to make overlay mount: %w%s", err, fsLog(fsfd))
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("failed to attach overlay mount: %w", err)
	}
	return nil
}

// fsLog drains the messages the filesystem left in its context (overlayfs
// says there which option or layer it refused), as ": msg; msg".
func fsLog(fsfd int) string {
	var msgs []string
	buf := make([]byte, 1024)
	for {
		n, err := unix.Read(fsfd, buf)
		if err != nil || n <= 0 {
			break
		}
		// Each message is one read, prefixed "e ", "w " or "i ".
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	if len(msgs) == 0 {
		return ""
	}
	return " (" + strings.Join(msgs, "; ") + ")"
}

// kernelAtLeast reports whether the running kernel is major.minor or newer.
func kernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	maj, mnr, ok := parseKernelVersion(unix.ByteSliceToString(u.Release[:]))
	return ok && (maj > major || maj == major && mnr >= minor)
}

// parseKernelVersion reads "6.8.0-31-generic" as 6, 8.
func parseKernelVersion(release string) (major, minor int, ok bool) {
	majS, rest, found := strings.Cut(release, ".")
	if !found {
		return 0, 0, false
	}
	end := strings.IndexFunc(rest, func(c rune) bool { return c < '0' || c > '9' })
	if end >= 0 {
		rest = rest[:end]
	}
	maj, err1 := strconv.Atoi(majS)
	mnr, err2 := strconv.Atoi(rest)
	return maj, mnr, err1 == nil && err2 == nil
}
