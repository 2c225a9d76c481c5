package testutil

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/peapod/peapod/internal/procfs"
)

// Section names, in the order String and Diff report them.
const (
	SectionMounts    = "mounts"
	SectionLinks     = "links"
	SectionNetns     = "netns"
	SectionCgroups   = "cgroups"
	SectionNftables  = "nftables"
	SectionLeases    = "leases"
	SectionFiles     = "files"
	SectionProcesses = "processes"
)

// entrySections are the sections held as plain entries; processes are
// judged separately (see leakedProcesses).
var entrySections = []string{
	SectionMounts, SectionLinks, SectionNetns, SectionCgroups,
	SectionNftables, SectionLeases, SectionFiles,
}

// Where the snapshot reads the machine's state.
const (
	mountinfoPath = "/proc/self/mountinfo"
	sysClassNet   = "/sys/class/net"
	netnsDir      = "/run/netns"
	procDir       = "/proc"
)

// How AssertNoLeak waits for the kernel to finish asynchronous teardown.
const (
	leakPollInterval  = 50 * time.Millisecond
	leakSettleTimeout = 5 * time.Second
)

// Roots names the state one peapod instance under test owns.
type Roots struct {
	// Root is the persistent root (--root); every file under it is listed.
	Root string
	// RunRoot is the volatile root (--run-root); every file under it is listed.
	RunRoot string
	// CgroupPrefixes are the cgroup directory names peapod creates (e.g.
	// "peapod-<rootid>"); a cgroup is listed when a component of its path
	// starts with one. Empty lists no cgroup.
	CgroupPrefixes []string
	// NftTablePrefix keeps only the nftables tables whose name starts with
	// it; empty keeps the whole ruleset.
	NftTablePrefix string
	// LeaseDirs are extra IPAM data directories outside both roots (a CNI
	// dataDir); lease files under Root are found without it.
	LeaseDirs []string
	// Ignore holds path.Match patterns, relative to Root or RunRoot (e.g.
	// "net/last_reserved_ip.*"), of state that rightly outlives a pod.
	Ignore []string
	// Mine are further strings that name this test's own state in a diff
	// line (" <bridge> ", a netns name): with SharedHostEnv set, only lines
	// naming the roots, the cgroup prefixes, the nftables prefix or one of
	// these count as leaks.
	Mine []string
}

// SharedHostEnv, when set, narrows AssertNoLeak to the test's own state,
// for development machines where other peapods, podman or tests run at the
// same time. CI never sets it: there the whole machine is compared.
const SharedHostEnv = "PEAPOD_E2E_SHARED_HOST"

// mine tells whether a diff line names state of r's test.
func (r Roots) mine(line string) bool {
	names := append([]string{r.Root, r.RunRoot, "root:/", "run-root:/"}, r.CgroupPrefixes...)
	if r.NftTablePrefix != "" {
		names = append(names, r.NftTablePrefix)
	}
	for _, s := range append(names, r.Mine...) {
		if s != "" && strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// Snapshot is what peapod could leave behind, taken at one moment.
type Snapshot struct {
	// Sections maps each entry section to its sorted entries; an entry may
	// repeat (two mounts stacked on one mount point).
	Sections map[string][]string
	// Processes lists every process but the test's own, sorted by PID.
	Processes []Process
	// Self is the test process's PID.
	Self int
	// CgroupPrefixes are copied from Roots: they tell which processes are
	// peapod's.
	CgroupPrefixes []string
}

// Process is one entry of /proc.
type Process struct {
	// PID is the process id.
	PID int
	// StartTime is /proc/<pid>/stat field 22 (clock ticks after boot); with
	// PID it names the process, so a reused PID is a different process.
	StartTime uint64
	// PPID is the parent's PID.
	PPID int
	// Comm is the command name, at most 15 bytes.
	Comm string
	// Exe is the /proc/<pid>/exe target; empty for kernel threads.
	Exe string
	// Cgroups holds the process's cgroup path in each hierarchy.
	Cgroups []string
	// Zombie is true when the process exited and was not reaped yet.
	Zombie bool
}

// procKey names a process across PID reuse.
type procKey struct {
	pid   int    // process id
	start uint64 // start time in clock ticks after boot
}

// key names p across PID reuse.
func (p Process) key() procKey { return procKey{pid: p.PID, start: p.StartTime} }

// String prints the process for a diff line.
func (p Process) String() string {
	s := fmt.Sprintf("pid=%d start=%d ppid=%d comm=%s", p.PID, p.StartTime, p.PPID, p.Comm)
	if p.Exe != "" {
		s += " exe=" + p.Exe
	}
	if p.Zombie {
		s += " zombie"
	}
	if len(p.Cgroups) > 0 {
		s += " cgroups=" + strings.Join(p.Cgroups, ",")
	}
	return s
}

// TakeSnapshot records the machine-wide state (mounts, links, /run/netns,
// processes) and the state of r (its cgroups, nftables tables, leases and
// files). It needs root (nft, other users' /proc entries) and fails the test
// if a source cannot be read.
func TakeSnapshot(t testing.TB, r Roots) *Snapshot {
	t.Helper()
	s, err := takeSnapshot(r)
	if err != nil {
		t.Fatalf("failed to take leak snapshot: %v", err)
	}
	return s
}

// AssertNoLeak takes a snapshot now and fails the test with the diff if
// anything differs from before.
func AssertNoLeak(t testing.TB, before *Snapshot, r Roots) {
	t.Helper()
	// The kernel finishes some teardown after the call that asked for it
	// returned: a network namespace is destroyed by the cleanup_net
	// workqueue once its last reference goes, and only then do its veths
	// (and their host-side peers) disappear; a reparented process is reaped
	// by its new parent whenever that one runs. Userspace gets no event for
	// all of these, so poll with a deadline instead of failing at once.
	shared := os.Getenv(SharedHostEnv) != ""
	deadline := time.Now().Add(leakSettleTimeout)
	for {
		diff := before.Diff(TakeSnapshot(t, r))
		if shared {
			diff = slices.DeleteFunc(diff, func(l string) bool { return !r.mine(l) })
		}
		if len(diff) == 0 {
			return
		}
		if time.Now().After(deadline) {
			what := "state"
			if shared {
				what = "this test's state (" + SharedHostEnv + " is set)"
			}
			t.Errorf("leak: %s still differs after %v (+ appeared, - disappeared):\n%s",
				what, leakSettleTimeout, strings.Join(diff, "\n"))
			return
		}
		time.Sleep(leakPollInterval)
	}
}

// Diff returns human-readable lines for everything that appeared ("+") or
// disappeared ("-") between s and after, ordered by section and then by
// entry; empty means nothing leaked.
func (s *Snapshot) Diff(after *Snapshot) []string {
	var out []string
	for _, name := range entrySections {
		out = append(out, diffEntries(name, s.Sections[name], after.Sections[name])...)
	}
	return append(out, diffProcesses(s, after)...)
}

// String prints every section, for a test log.
func (s *Snapshot) String() string {
	var b strings.Builder
	for _, name := range entrySections {
		fmt.Fprintf(&b, "== %s ==\n", name)
		for _, e := range s.Sections[name] {
			fmt.Fprintf(&b, "%s\n", e)
		}
	}
	fmt.Fprintf(&b, "== %s ==\n", SectionProcesses)
	for _, p := range s.Processes {
		fmt.Fprintf(&b, "%s\n", p)
	}
	return b.String()
}

// diffEntries compares two entry lists as multisets, so a second mount
// stacked on a mount point shows.
func diffEntries(section string, before, after []string) []string {
	count := make(map[string]int)
	for _, e := range before {
		count[e]--
	}
	for _, e := range after {
		count[e]++
	}
	keys := make([]string, 0, len(count))
	for k, n := range count {
		if n != 0 {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var out []string
	for _, k := range keys {
		sign, n := "+", count[k]
		if n < 0 {
			sign, n = "-", -n
		}
		for range n {
			out = append(out, fmt.Sprintf("%s %s: %s", sign, section, k))
		}
	}
	return out
}

// diffProcesses reports peapod's processes that appeared or disappeared.
//
// Other tests, the Go runtime and the machine start and end processes all
// the time, so a plain diff of /proc is never empty. A process that is in
// only one snapshot is reported when it is provably peapod's:
//   - its comm or exe name starts with "peapod" (CLI, supervisor, helpers);
//   - a cgroup path of it contains one of the CgroupPrefixes (a container's
//     process, also one that double-forked away from its parent).
//
// A process that appeared is also reported when:
//   - its parent is PID 1: it was not there at the before-snapshot, so it
//     started after it, and it was orphaned — a detached leftover such as a
//     daemon a container started that escaped its cgroup;
//   - its parent is itself reported (a child of a leaked supervisor).
//
// The test process and its threads are never listed (/proc lists thread
// group leaders only, and Self is skipped). Children the test started and
// reaped are in neither snapshot; a child that disappeared is the test's own
// business; a zombie child of the test holds nothing and awaits the test's
// own Wait.
//
// Zombies are never reported, in either direction: an exited process holds
// nothing but its pid, and one whose parent died waits for PID 1 to reap it,
// which on some machines (this VM's init among them) happens late or never.
// A leaked supervisor or container shows up alive, not as a zombie.
func diffProcesses(before, after *Snapshot) []string {
	prefixes := slices.Concat(before.CgroupPrefixes, after.CgroupPrefixes)
	var out []string
	for _, p := range leakedProcesses(after.Processes, before.Processes, after.Self, prefixes) {
		if !p.Zombie {
			out = append(out, fmt.Sprintf("+ %s: %s", SectionProcesses, p))
		}
	}
	gone := onlyIn(before.Processes, after.Processes)
	for _, p := range gone {
		if !p.Zombie && p.PPID != before.Self && isPeapodProcess(p, prefixes) {
			out = append(out, fmt.Sprintf("- %s: %s", SectionProcesses, p))
		}
	}
	return out
}

// leakedProcesses returns the processes of after that are not in before and
// are peapod's (see diffProcesses), sorted by PID.
func leakedProcesses(after, before []Process, self int, prefixes []string) []Process {
	fresh := onlyIn(after, before)
	kept := make(map[int]bool)
	// Iterate to a fixed point: a parent may sort after its child.
	for changed := true; changed; {
		changed = false
		for _, p := range fresh {
			if kept[p.PID] || p.PID == self || (p.PPID == self && p.Zombie) {
				continue
			}
			if isPeapodProcess(p, prefixes) || p.PPID == 1 || kept[p.PPID] {
				kept[p.PID] = true
				changed = true
			}
		}
	}
	var out []Process
	for _, p := range fresh {
		if kept[p.PID] {
			out = append(out, p)
		}
	}
	return out
}

// onlyIn returns the processes of a that b does not hold, in a's order.
func onlyIn(a, b []Process) []Process {
	inB := make(map[procKey]bool, len(b))
	for _, p := range b {
		inB[p.key()] = true
	}
	var out []Process
	for _, p := range a {
		if !inB[p.key()] {
			out = append(out, p)
		}
	}
	return out
}

// isPeapodProcess tells whether p is one of peapod's own binaries or lives
// in one of peapod's cgroups.
func isPeapodProcess(p Process, cgroupPrefixes []string) bool {
	if strings.HasPrefix(p.Comm, "peapod") || strings.HasPrefix(filepath.Base(p.Exe), "peapod") {
		return true
	}
	for _, cg := range p.Cgroups {
		for _, prefix := range cgroupPrefixes {
			if prefix != "" && strings.Contains(cg, prefix) {
				return true
			}
		}
	}
	return false
}

// takeSnapshot reads every section.
func takeSnapshot(r Roots) (*Snapshot, error) {
	mounts, err := readMountinfo(mountinfoPath)
	if err != nil {
		return nil, err
	}
	s := &Snapshot{
		Sections:       make(map[string][]string),
		Self:           os.Getpid(),
		CgroupPrefixes: slices.Clone(r.CgroupPrefixes),
	}
	for _, m := range mounts {
		s.Sections[SectionMounts] = append(s.Sections[SectionMounts], m.String())
	}
	collectors := []struct {
		name string                   // section filled
		read func() ([]string, error) // reads it
	}{
		{SectionLinks, func() ([]string, error) { return readLinks(sysClassNet) }},
		{SectionNetns, func() ([]string, error) { return readDirNames(netnsDir) }},
		{SectionCgroups, func() ([]string, error) { return readCgroups(mounts, r.CgroupPrefixes) }},
		{SectionNftables, func() ([]string, error) { return readNftables(r.NftTablePrefix) }},
		{SectionLeases, func() ([]string, error) { return readLeases(r) }},
		{SectionFiles, func() ([]string, error) { return readRootFiles(r) }},
	}
	for _, c := range collectors {
		entries, err := c.read()
		if err != nil {
			return nil, err
		}
		s.Sections[c.name] = entries
	}
	if s.Processes, err = readProcesses(procDir, s.Self); err != nil {
		return nil, err
	}
	for _, name := range entrySections {
		slices.Sort(s.Sections[name])
	}
	return s, nil
}

// mountEntry is one line of mountinfo, without the ids that change with
// every mount.
type mountEntry struct {
	root       string // path of the mount's root inside its filesystem
	mountPoint string // where it is mounted
	fsType     string // filesystem type
	source     string // mount source (device, "tmpfs", "nsfs", ...)
}

// String prints the entry as the mounts section lists it.
func (m mountEntry) String() string {
	return fmt.Sprintf("%s %s %s", m.mountPoint, m.fsType, m.source)
}

// readMountinfo reads and parses a mountinfo file.
func readMountinfo(file string) ([]mountEntry, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("failed to read %q: %w", file, err)
	}
	return parseMountinfo(string(data))
}

// parseMountinfo parses mountinfo lines ("36 35 98:0 /mnt1 /mnt2 rw,noatime
// master:1 - ext3 /dev/root rw"); the optional fields before "-" vary in
// number, so the fields after the separator are found by searching for it.
func parseMountinfo(data string) ([]mountEntry, error) {
	var out []mountEntry
	for line := range strings.Lines(data) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		sep := slices.Index(fields, "-")
		if sep < 6 || len(fields) < sep+3 {
			return nil, fmt.Errorf("failed to parse mountinfo line %q: malformed", strings.TrimSpace(line))
		}
		out = append(out, mountEntry{
			root:       fields[3],
			mountPoint: fields[4],
			fsType:     fields[sep+1],
			source:     fields[sep+2],
		})
	}
	return out, nil
}

// readLinks lists the network interfaces of the test's network namespace
// as "name ifindex=N".
func readLinks(dir string) ([]string, error) {
	names, err := readDirNames(dir)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(names))
	for _, name := range names {
		idx, err := os.ReadFile(filepath.Join(dir, name, "ifindex"))
		// A link being deleted or moved to another namespace while we list
		// answers ENOENT, or EINVAL/ENODEV once unregistered: it is gone.
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENODEV) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("failed to read ifindex of link %q: %w", name, err)
		}
		out = append(out, fmt.Sprintf("%s ifindex=%s", name, strings.TrimSpace(string(idx))))
	}
	return out, nil
}

// readDirNames lists a directory's entries; a missing directory is empty.
func readDirNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to list %q: %w", dir, err)
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out, nil
}

// readCgroups lists, under every cgroup (v1) and cgroup2 mount, the
// directories with a path component that starts with one of prefixes, as
// "<mount point> <path in hierarchy>".
func readCgroups(mounts []mountEntry, prefixes []string) ([]string, error) {
	if len(prefixes) == 0 {
		return nil, nil
	}
	var out []string
	for _, m := range mounts {
		if m.fsType != "cgroup" && m.fsType != "cgroup2" {
			continue
		}
		dirs, err := walkCgroupDirs(m.mountPoint, prefixes)
		if err != nil {
			return nil, err
		}
		for _, d := range dirs {
			out = append(out, m.mountPoint+" "+d)
		}
	}
	return out, nil
}

// walkCgroupDirs returns the matching directories under one hierarchy's
// mount point, relative to it.
func walkCgroupDirs(mountPoint string, prefixes []string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(mountPoint, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // a cgroup removed while we walked
		}
		if err != nil {
			return fmt.Errorf("failed to walk cgroup %q: %w", p, err)
		}
		if !d.IsDir() || p == mountPoint {
			return nil
		}
		rel := strings.TrimPrefix(p, mountPoint)
		if hasComponentPrefix(rel, prefixes) {
			out = append(out, rel)
		}
		return nil
	})
	return out, err
}

// hasComponentPrefix tells whether a component of the slash-separated p
// starts with one of prefixes.
func hasComponentPrefix(p string, prefixes []string) bool {
	for _, c := range strings.Split(p, "/") {
		for _, prefix := range prefixes {
			if c != "" && prefix != "" && strings.HasPrefix(c, prefix) {
				return true
			}
		}
	}
	return false
}

// nftCounters matches the values nftables updates on every packet; they
// would make the ruleset differ without anything leaking.
var nftCounters = regexp.MustCompile(`\b(packets|bytes|expires|used) [0-9][0-9a-z]*`)

// readNftables lists the ruleset's lines, each prefixed with its table.
// Without nft on the machine the section is empty.
func readNftables(tablePrefix string) ([]string, error) {
	nft, err := exec.LookPath("nft")
	if err != nil {
		return nil, nil
	}
	out, err := exec.Command(nft, "list", "ruleset").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("failed to list nftables ruleset: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return parseRuleset(string(out), tablePrefix), nil
}

// parseRuleset turns `nft list ruleset` output into entries "table
// <family> <name>: <line>", keeping the tables whose name starts with
// tablePrefix and dropping bare closing braces.
func parseRuleset(ruleset, tablePrefix string) []string {
	var out []string
	table, keep := "", false
	for line := range strings.Lines(ruleset) {
		if strings.HasPrefix(line, "table ") {
			table = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(line), "{"))
			fields := strings.Fields(table)
			keep = len(fields) == 3 && strings.HasPrefix(fields[2], tablePrefix)
			if keep {
				out = append(out, table)
			}
			continue
		}
		line = strings.TrimSpace(line)
		if !keep || line == "" || line == "}" {
			continue
		}
		out = append(out, table+": "+nftCounters.ReplaceAllString(line, "$1 N"))
	}
	return out
}

// rootDir is one directory tree the snapshot lists, with its label.
type rootDir struct {
	label string // "root", "run-root" or "lease-dir"
	dir   string // absolute path
}

// readLeases lists the IPAM lease files (named by an IP address, in the
// manner of host-local) under Root and LeaseDirs with their content, which
// names the owner: a lease handed to another owner shows too.
func readLeases(r Roots) ([]string, error) {
	trees := []rootDir{{"root", r.Root}}
	for _, d := range r.LeaseDirs {
		trees = append(trees, rootDir{"lease-dir", d})
	}
	var out []string
	for _, tree := range trees {
		err := walkTree(tree, r.Ignore, func(rel string, d fs.DirEntry) error {
			if !d.Type().IsRegular() {
				return nil
			}
			if _, err := netip.ParseAddr(path.Base(rel)); err != nil {
				return nil
			}
			data, err := os.ReadFile(filepath.Join(tree.dir, rel))
			if errors.Is(err, fs.ErrNotExist) {
				return nil // released while we walked
			}
			if err != nil {
				return fmt.Errorf("failed to read lease %q: %w", rel, err)
			}
			out = append(out, fmt.Sprintf("%s:/%s owner=%q", tree.label, rel, strings.Join(strings.Fields(string(data)), " ")))
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readRootFiles lists every file under Root and RunRoot as
// "<label>:/<path> <type>"; contents are not compared.
func readRootFiles(r Roots) ([]string, error) {
	var out []string
	for _, tree := range []rootDir{{"root", r.Root}, {"run-root", r.RunRoot}} {
		err := walkTree(tree, r.Ignore, func(rel string, d fs.DirEntry) error {
			out = append(out, fmt.Sprintf("%s:/%s %s", tree.label, rel, fileType(d.Type())))
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// walkTree calls fn for every entry under tree.dir (not the directory
// itself) with its slash-separated relative path. It skips entries matching
// ignore and does not descend into another filesystem mounted inside (an
// overlay root, a tmpfs): that mount is in the mounts section, and its
// content is not the root's. A missing directory is empty.
func walkTree(tree rootDir, ignore []string, fn func(rel string, d fs.DirEntry) error) error {
	if tree.dir == "" {
		return nil
	}
	var rootDev uint64
	err := filepath.WalkDir(tree.dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while we walked
		}
		if err != nil {
			return fmt.Errorf("failed to walk %q: %w", p, err)
		}
		if p == tree.dir {
			rootDev, err = deviceOf(p)
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, tree.dir+string(filepath.Separator)))
		if matchesAny(rel, ignore) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if err := fn(rel, d); err != nil {
			return err
		}
		if d.IsDir() {
			dev, err := deviceOf(p)
			if errors.Is(err, fs.ErrNotExist) {
				return fs.SkipDir
			}
			if err != nil {
				return err
			}
			if dev != rootDev {
				return fs.SkipDir
			}
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// deviceOf returns the device of the filesystem holding p.
func deviceOf(p string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		return 0, fmt.Errorf("failed to stat %q: %w", p, err)
	}
	return uint64(st.Dev), nil
}

// matchesAny tells whether rel matches one of the path.Match patterns.
func matchesAny(rel string, patterns []string) bool {
	for _, pat := range patterns {
		if ok, _ := path.Match(pat, rel); ok {
			return true
		}
	}
	return false
}

// fileType names a file mode's type.
func fileType(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "file"
	case m.IsDir():
		return "dir"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeNamedPipe != 0:
		return "fifo"
	case m&fs.ModeDevice != 0:
		return "device"
	default:
		return "other"
	}
}

// readProcesses lists every process of the PID namespace but self, sorted
// by PID. A process that exits while it is read is left out.
func readProcesses(dir string, self int) ([]Process, error) {
	names, err := readDirNames(dir)
	if err != nil {
		return nil, err
	}
	var out []Process
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid == self {
			continue
		}
		p, err := readProcess(filepath.Join(dir, name), pid)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Process) int { return a.PID - b.PID })
	return out, nil
}

// readProcess reads one /proc/<pid> directory.
func readProcess(dir string, pid int) (Process, error) {
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return Process{}, fmt.Errorf("failed to read stat of process %d: %w", pid, err)
	}
	st, err := procfs.ParseStat(stat)
	if err != nil {
		return Process{}, fmt.Errorf("failed to parse stat of process %d: %w", pid, err)
	}
	p := processOf(st)
	// Kernel threads have no exe; a process may also exit meanwhile.
	p.Exe, _ = os.Readlink(filepath.Join(dir, "exe"))
	p.Exe = strings.TrimSuffix(p.Exe, " (deleted)")
	if cg, err := os.ReadFile(filepath.Join(dir, "cgroup")); err == nil {
		p.Cgroups = parseProcCgroup(string(cg))
	}
	return p, nil
}

// processOf is the Process a parsed stat line describes.
func processOf(st procfs.Stat) Process {
	return Process{PID: st.PID, StartTime: st.StartTime, PPID: st.PPID, Comm: st.Comm, Zombie: st.State == 'Z'}
}

// parseProcCgroup returns the paths of /proc/<pid>/cgroup lines
// ("4:memory:/peapod-x/app", "0::/peapod-x/app").
func parseProcCgroup(data string) []string {
	var out []string
	for line := range strings.Lines(data) {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) == 3 && parts[2] != "/" {
			out = append(out, parts[2])
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
