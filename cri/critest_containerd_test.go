package cri_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/peapod/peapod/internal/testutil"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// sandboxImage is containerd's sandbox ("pause") image, pushed to the
// registry for TestCritestContainerd only: busybox with the critest
// helper as /pause. It has a name of its own, not critest's
// registry.k8s.io/pause:3.9, which critest pulls and removes in its image
// specs (and which is a busybox without a long-running command here).
const sandboxImage = "registry.k8s.io/peapod-critest/pause:1"

// critestCgroupParent is where critest puts its sandboxes when the
// runtime's RuntimeConfig does not say cgroupfs: containerd 1.6 answers
// Unimplemented, so critest asks for common.DefaultSystemdCgroupSlice,
// which runc's cgroupfs driver makes on every hierarchy.
const critestCgroupParent = "test.slice"

// TestCritestContainerd runs the same critest as TestCritest (the same
// binary, focus and skip expressions, images, registry mirror and egress
// guard) against Debian's containerd with its built-in CRI plugin and
// runc: the anchor issue 15 compares peapod with. The daemon is private
// (root, state, socket, runc root, CNI bridge and subnet of its own, its
// network namespaces under its state), killed by PID, and what it leaves
// is removed after the test: shims, mounts, bridge, cgroups, portmap's
// rules. containerd's failed specs are logged, not failed: they are the
// anchor's figures; the test fails only if the daemon cannot be set up,
// passes no spec, reaches beyond loopback or leaves something behind.
//
// It runs only with PEAPOD_CRITEST_CONTAINERD=1, as scenario 10 of
// scripts/bench.sh sets it (with PEAPOD_CRITEST_RESULTS, which gets the
// counts as containerd.json, for the table beside TestCritest's, and
// containerd's log): containerd is a comparison, not a property of
// peapod; provision.sh does not install it, and CI's budget (15 minutes
// on 2 cores) has no room for another minute and a half of critest on
// every run.
func TestCritestContainerd(t *testing.T) {
	if os.Getenv("PEAPOD_CRITEST_CONTAINERD") != "1" {
		t.Skip("the containerd anchor runs with PEAPOD_CRITEST_CONTAINERD=1 (scripts/bench.sh 10 sets it)")
	}
	testutil.RequireRoot(t)
	bin, err := exec.LookPath("containerd")
	if err != nil {
		t.Fatalf("containerd is not installed (apt-get install containerd; scripts/bench.sh 10 does): %v", err)
	}
	e := setupCritest(t)
	pushSandboxImage(t, e)
	c := startContainerd(t, bin, e)
	e.checkEgress(t, "containerd", c.try)
	res := e.run(t, "unix://"+c.sock)
	c.removePods()
	res.report(t, c.version, "containerd")
	for _, f := range res.Failed {
		t.Logf("critest against containerd: %s", f)
	}
}

// pushSandboxImage pushes sandboxImage to e's registry.
func pushSandboxImage(t *testing.T, e *critestEnv) {
	t.Helper()
	base, err := os.ReadFile(busyboxTar)
	if err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(base)), nil })
	if err != nil {
		t.Fatal(err)
	}
	helper, err := os.ReadFile(e.helper)
	if err != nil {
		t.Fatal(err)
	}
	img := critestImageOf(t, layer, nil, []tarEntry{{name: "pause", body: string(helper), mode: 0o755}}, "", []string{"/pause"})
	if err := remote.Write(mustRef(t, e.reg.Host+"/"+localPath(t, sandboxImage)), img); err != nil {
		t.Fatalf("failed to push %s: %v", sandboxImage, err)
	}
}

// containerdDaemon is a private containerd of the test.
type containerdDaemon struct {
	t                                   *testing.T
	dir, root, state, sock, crictl      string
	bridge, network, ipForward, version string
	subnet                              netip.Prefix
	cmd                                 *exec.Cmd
	exited                              chan error
	log                                 *testutil.SyncBuffer
	// newCgroups are the hierarchies' critestCgroupParent dirs that did
	// not exist before the daemon: the cleanup removes them.
	newCgroups []string
	// newRunDir says /run/containerd did not exist before (containerd
	// 1.6 puts its shims' sockets in /run/containerd/s whatever its
	// state dir).
	newRunDir bool
}

// startContainerd writes the configuration and starts containerd with
// HTTP(S) through e's guard; it is stopped and cleaned up after the test.
func startContainerd(t *testing.T, bin string, e *critestEnv) *containerdDaemon {
	t.Helper()
	dir := shortTempDir(t)
	c := &containerdDaemon{
		t: t, dir: dir, root: filepath.Join(dir, "root"), state: filepath.Join(dir, "state"), sock: filepath.Join(dir, "c.sock"),
		crictl: crictl(t), bridge: "pd" + testutil.RandHex(t, 4), subnet: subnets.Pick(t),
		log: &testutil.SyncBuffer{},
	}
	c.network = "ppcritest-" + c.bridge
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("containerd --version: %v", err)
	}
	c.version = "containerd " + versionField(string(out), 2)
	if out, err := exec.Command("runc", "--version").Output(); err == nil {
		c.version += ", runc " + versionField(string(out), 2)
	}
	// The bridge plugin's isGateway turns ip_forward on: the cleanup puts
	// back what was there.
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	c.ipForward = strings.TrimSpace(string(b))
	hierarchies, err := filepath.Glob("/sys/fs/cgroup/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range append(hierarchies, "/sys/fs/cgroup") {
		p := filepath.Join(h, critestCgroupParent)
		if _, err := os.Stat(p); os.IsNotExist(err) {
			c.newCgroups = append(c.newCgroups, p)
		}
	}
	if _, err := os.Stat("/run/containerd"); os.IsNotExist(err) {
		c.newRunDir = true
	}
	cfg := c.writeConfig(e.reg.Host)
	cmd := exec.Command(bin, "--config", cfg)
	// Its overlay unpacks mount under TMPDIR: the test's dir, unmounted
	// by the cleanup if anything is left.
	cmd.Env = append(append(os.Environ(), e.guard.env()...), "TMPDIR="+filepath.Join(dir, "tmp"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = c.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("failed to start containerd: %v", err)
	}
	c.cmd, c.exited = cmd, make(chan error, 1)
	t.Cleanup(c.cleanup)
	booted := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		said := false
		for sc.Scan() {
			c.log.Write([]byte(sc.Text() + "\n"))
			if !said && strings.Contains(sc.Text(), "containerd successfully booted") {
				said = true
				booted <- true
			}
		}
		if !said {
			booted <- false
		}
		c.exited <- cmd.Wait()
	}()
	select {
	case ok := <-booted:
		if !ok {
			t.Fatalf("containerd exited before it booted:\n%s", c.log.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("containerd did not boot in 60 s:\n%s", c.log.String())
	}
	// The CRI plugin initialises after the boot message; Version answers
	// once its service is registered.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := c.try("version")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd's CRI did not answer in 30 s: %v\n%s\n%s", err, out, c.log.String())
		}
		time.Sleep(100 * time.Millisecond) // no event to await: its socket is there before the service
	}
	return c
}

// versionField is the n-th word (from 0) of a tool's --version's first
// line.
func versionField(out string, n int) string {
	line, _, _ := strings.Cut(out, "\n")
	f := strings.Fields(line)
	if len(f) <= n {
		return strings.TrimSpace(line)
	}
	return f[n]
}

// writeConfig writes containerd's configuration, its registry hosts and
// its CNI conflist under c.dir and returns the configuration's path.
func (c *containerdDaemon) writeConfig(registry string) string {
	t := c.t
	t.Helper()
	write := func(p, s string) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// containerd 1.6's registry hosts: the local registry first, then
	// the registry itself (through the guard) for what it lacks.
	certs := filepath.Join(c.dir, "certs.d")
	for _, r := range mirrored {
		write(filepath.Join(certs, r, "hosts.toml"), fmt.Sprintf("server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n",
			"https://"+r, "http://"+registry))
	}
	cni := filepath.Join(c.dir, "cni")
	gw := c.subnet.Addr().Next()
	// bridge + host-local + portmap (for the host-port spec), as
	// containerd's own example configuration; no masquerade (nothing
	// leaves the machine). Its cache stays in /var/lib/cni (libcni's
	// default; the cleanup removes this network's entries).
	write(filepath.Join(cni, "10-critest.conflist"), fmt.Sprintf(`{"cniVersion":"0.4.0","name":%q,"plugins":[
{"type":"bridge","bridge":%q,"isGateway":true,"ipMasq":false,"ipam":{"type":"host-local","dataDir":%q,"routes":[{"dst":"0.0.0.0/0"}],"ranges":[[{"subnet":%q,"gateway":%q}]]}},
{"type":"portmap","capabilities":{"portMappings":true}}]}
`, c.network, c.bridge, filepath.Join(c.dir, "ipam"), c.subnet.String(), gw.String()))
	cfg := filepath.Join(c.dir, "containerd.toml")
	write(cfg, fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  # CAP_SYS_RESOURCE is missing here: without this every runc start fails.
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # Its network namespaces under its state, not /var/run/netns.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = %q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = %q
`, c.root, c.state, c.sock, c.sock+".ttrpc", sandboxImage, filepath.Join(c.state, "runc"), cni, certs))
	if err := os.MkdirAll(filepath.Join(c.dir, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// try runs crictl against the daemon and returns its output and error.
func (c *containerdDaemon) try(args ...string) (string, error) {
	ep := "unix://" + c.sock
	out, err := exec.Command(c.crictl, append([]string{"--runtime-endpoint", ep, "--image-endpoint", ep, "--timeout", "60s"}, args...)...).CombinedOutput()
	return string(out), err
}

// removePods stops and removes every sandbox the daemon has (what failed
// specs left).
func (c *containerdDaemon) removePods() {
	if out, err := c.try("rmp", "-a", "-f"); err != nil {
		c.t.Errorf("crictl rmp -a -f against containerd: %v\n%s", err, out)
	}
}

// cleanup stops the daemon by its PID and removes everything it left:
// its shims and their processes, the mounts under its dir, the bridge,
// portmap's rules, libcni's cache entries, the cgroups critest's parent
// made, /run/containerd if it made it; ip_forward goes back. Each step is
// best effort; what is left after all of them fails the test.
func (c *containerdDaemon) cleanup() {
	t := c.t
	select {
	case err := <-c.exited:
		c.exited <- err
	default:
		c.removePods()
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
		t.Errorf("containerd did not exit 30 s after SIGTERM")
	}
	// The shims name the daemon's socket; they outlive it by design.
	for _, pid := range pidsWith(c.sock) {
		for _, child := range childrenOf(pid) {
			killAndAwait(t, child)
		}
		killAndAwait(t, pid)
	}
	mounts, err := mountsUnder(c.dir)
	if err != nil {
		t.Error(err)
	}
	for _, m := range mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			t.Errorf("failed to unmount %s: %v", m, err)
		}
	}
	if l, err := netlink.LinkByName(c.bridge); err == nil {
		if err := netlink.LinkDel(l); err != nil {
			t.Errorf("failed to delete bridge %s: %v", c.bridge, err)
		}
	}
	c.removePortmapRules()
	if caches, _ := filepath.Glob(filepath.Join("/var/lib/cni/results", c.network+"-*")); len(caches) > 0 {
		for _, f := range caches {
			os.Remove(f)
		}
	}
	for _, cg := range c.newCgroups {
		removeCgroupTree(t, cg)
	}
	if c.newRunDir {
		// Only if empty: another containerd may have come meanwhile.
		os.Remove("/run/containerd/s")
		os.Remove("/run/containerd")
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte(c.ipForward), 0o644); err != nil {
		t.Errorf("failed to restore ip_forward: %v", err)
	}
	// What is left.
	if pids := pidsWith(c.sock); len(pids) > 0 {
		t.Errorf("containerd's processes left: %v", pids)
	}
	if m, _ := mountsUnder(c.dir); len(m) > 0 {
		t.Errorf("containerd's mounts left: %q", m)
	}
	if _, err := netlink.LinkByName(c.bridge); err == nil {
		t.Errorf("bridge %s left", c.bridge)
	}
	if rules := c.portmapRules(); len(rules) > 0 {
		t.Errorf("portmap's rules left: %q", rules)
	}
	for _, cg := range c.newCgroups {
		if _, err := os.Stat(cg); err == nil {
			t.Errorf("cgroup %s left", cg)
		}
	}
	if t.Failed() {
		t.Logf("containerd's log:\n%s", c.log.String())
	}
	// Its shims' messages are in it too: why a spec failed.
	if dir := os.Getenv("PEAPOD_CRITEST_RESULTS"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, "containerd.log"), []byte(c.log.String()), 0o644); err != nil {
			t.Errorf("failed to write containerd's log: %v", err)
		}
	}
}

// pidsWith lists the processes whose command line holds s.
func pidsWith(s string) []int {
	var pids []int
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || !bytes.Contains(b, []byte(s)) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(d)); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// childrenOf lists pid's children.
func childrenOf(pid int) []int {
	var kids []int
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so after ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			if k, err := strconv.Atoi(filepath.Base(d)); err == nil {
				kids = append(kids, k)
			}
		}
	}
	return kids
}

// killAndAwait SIGKILLs pid through a pidfd (no reuse of the number can
// misdirect it) and waits for it to be gone.
func killAndAwait(t *testing.T, pid int) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return // gone already
	}
	defer unix.Close(fd)
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		t.Errorf("failed to kill %d: %v", pid, err)
		return
	}
	// A pidfd is readable once its process has exited.
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if n, err := unix.Poll(fds, 10000); err != nil || n == 0 {
		t.Errorf("process %d did not exit 10 s after SIGKILL (%v)", pid, err)
	}
}

// mountsUnder lists the mount points under dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var ms []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		// Octal escapes (\040 for a space) do not occur in the test's paths.
		if p := f[4]; p == dir || strings.HasPrefix(p, dir+"/") {
			ms = append(ms, p)
		}
	}
	// Deepest first; a path mounted twice is listed twice.
	slices.SortStableFunc(ms, func(a, b string) int { return len(b) - len(a) })
	return ms, nil
}

// portmapRules are the nat table's rules of the daemon's network
// (portmap's comment names it) as iptables-save prints them.
func (c *containerdDaemon) portmapRules() []string {
	out, err := exec.Command("iptables-save", "-t", "nat").Output()
	if err != nil {
		return nil // no iptables: portmap could not have added any
	}
	var rules []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "-A ") && strings.Contains(line, `\"`+c.network+`\"`) {
			rules = append(rules, line)
		}
	}
	return rules
}

// removePortmapRules deletes the rules of portmapRules and the per-pod
// chains they jump to (what a daemon killed before its CNI DEL leaves).
func (c *containerdDaemon) removePortmapRules() {
	for _, rule := range c.portmapRules() {
		// iptables-save's quoting is a shell's: let a shell split it.
		if out, err := exec.Command("sh", "-c", "iptables -t nat -D "+strings.TrimPrefix(rule, "-A ")).CombinedOutput(); err != nil {
			c.t.Errorf("failed to delete %q: %v\n%s", rule, err, out)
		}
		if _, chain, ok := strings.Cut(rule, " -j "); ok && strings.HasPrefix(chain, "CNI-DN-") {
			exec.Command("iptables", "-t", "nat", "-F", chain).Run()
			exec.Command("iptables", "-t", "nat", "-X", chain).Run()
		}
	}
}

// removeCgroupTree removes the cgroup dir p and those under it, deepest
// first (a cgroup dir is removed with rmdir, its files are the kernel's).
func removeCgroupTree(t *testing.T, p string) {
	var dirs []string
	filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := unix.Rmdir(dirs[i]); err != nil && !errors.Is(err, unix.ENOENT) {
			t.Errorf("failed to remove cgroup %s: %v", dirs[i], err)
		}
	}
}
