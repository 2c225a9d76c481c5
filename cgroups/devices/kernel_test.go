package devices_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/cgroups"
	"github.com/peapod/peapod/cgroups/devices"
	"github.com/peapod/peapod/internal/testutil"
)

// helperEnv makes the test binary act as the process inside the cgroup:
// it holds "dir type:major:minor ..." and the helper mknods and opens each.
const helperEnv = "PEAPOD_DEVICES_TEST_HELPER"

func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" {
		os.Exit(runHelper(spec))
	}
	os.Exit(m.Run())
}

// runHelper waits for a byte on stdin (the parent has then put it in the
// cgroup), then for each node prints "<mknod errno> <open errno>", 0 for
// success and -1 for "not tried".
func runHelper(spec string) int {
	if _, err := os.Stdin.Read(make([]byte, 1)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	f := strings.Fields(spec)
	for i, n := range f[1:] {
		var typ rune
		var major, minor uint32
		if _, err := fmt.Sscanf(n, "%c:%d:%d", &typ, &major, &minor); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		mode := uint32(unix.S_IFCHR)
		if typ == 'b' {
			mode = unix.S_IFBLK
		}
		path := filepath.Join(f[0], fmt.Sprint(i))
		mknodErr := errno(unix.Mknod(path, mode|0o600, int(unix.Mkdev(major, minor))))
		openErr := -1
		if mknodErr == 0 {
			fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
			openErr = errno(err)
			if err == nil {
				unix.Close(fd)
			}
		}
		fmt.Println(mknodErr, openErr)
	}
	return 0
}

func errno(err error) int {
	var e unix.Errno
	if errors.As(err, &e) {
		return int(e)
	}
	if err != nil {
		return -2
	}
	return 0
}

// node is one device the helper tries.
type node struct {
	typ          rune
	major, minor uint32
}

// result is what happened to one node in the helper.
type result struct {
	mknod, open unix.Errno
}

// denied reports whether the device cgroup refused to create the node. The
// mknod check is the one that tells: some hosts (this VM among them) refuse
// to open their root disk even to root, filter or not.
func (r result) denied() bool { return r.mknod == unix.EPERM }

// runInCgroup runs the helper inside the cgroup and returns its results.
func runInCgroup(t *testing.T, d cgroups.Driver, path string, nodes []node) []result {
	t.Helper()
	spec := []string{t.TempDir()}
	for _, n := range nodes {
		spec = append(spec, fmt.Sprintf("%c:%d:%d", n.typ, n.major, n.minor))
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+strings.Join(spec, " "))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("failed to start helper: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := d.Join(path, cmd.Process.Pid); err != nil {
		t.Fatalf("Join(%q): %v", path, err)
	}
	if _, err := stdin.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v: %s", err, stderr.String())
	}
	var res []result
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var m, o int
		if _, err := fmt.Sscan(sc.Text(), &m, &o); err != nil {
			t.Fatalf("helper output %q: %v", sc.Text(), err)
		}
		res = append(res, result{mknod: unix.Errno(m), open: unix.Errno(o)})
	}
	if len(res) != len(nodes) {
		t.Fatalf("helper printed %d results for %d nodes: %q", len(res), len(nodes), stdout.String())
	}
	return res
}

// rootDisk returns the block device holding "/" (or, where / is on an
// anonymous device such as overlayfs, the first real disk).
func rootDisk(t *testing.T) node {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err != nil {
		t.Fatal(err)
	}
	if unix.Major(st.Dev) != 0 {
		return node{'b', unix.Major(st.Dev), unix.Minor(st.Dev)}
	}
	devs, _ := filepath.Glob("/sys/block/*/dev")
	for _, f := range devs {
		name := filepath.Base(filepath.Dir(f))
		if strings.HasPrefix(name, "loop") || strings.HasPrefix(name, "zram") || strings.HasPrefix(name, "ram") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var n node
		if _, err := fmt.Sscanf(string(data), "%d:%d", &n.major, &n.minor); err == nil {
			n.typ = 'b'
			return n
		}
	}
	t.Fatal("no disk found to mknod")
	return node{}
}

// newTestCgroup creates a unique leaf and removes its tree in t.Cleanup.
func newTestCgroup(t *testing.T, driver string) (cgroups.Driver, string) {
	t.Helper()
	d, err := cgroups.New(driver, cgroups.DefaultMountRoot)
	if err != nil {
		t.Fatalf("New(%q): %v", driver, err)
	}
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	path := "peapod-test-" + hex.EncodeToString(b) + "/ctr"
	t.Cleanup(func() {
		if err := d.DestroyTree(path); err != nil {
			t.Errorf("cleanup: DestroyTree(%q): %v", path, err)
		}
	})
	if err := d.Create(path); err != nil {
		t.Fatalf("Create(%q): %v", path, err)
	}
	return d, path
}

func TestDefaultDeniesHostDisk(t *testing.T) {
	testutil.RequireRoot(t)
	nodes := []node{
		rootDisk(t),
		{'c', 1, 1},   // /dev/mem: a char device outside the list
		{'b', 1, 3},   // block 1:3: null's numbers, wrong type
		{'c', 1, 3},   // null
		{'c', 136, 7}, // a pts slave: the wildcard minor
	}
	wantDenied := []bool{true, true, true, false, false}
	for _, driver := range []string{cgroups.DriverV1, cgroups.DriverV2} {
		t.Run(driver, func(t *testing.T) {
			d, path := newTestCgroup(t, driver)
			if err := devices.Apply(d, path, devices.Default); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			res := runInCgroup(t, d, path, nodes)
			for i, r := range res {
				if r.denied() != wantDenied[i] {
					t.Errorf("%c %d:%d: mknod errno %d, want denied=%v",
						nodes[i].typ, nodes[i].major, nodes[i].minor, r.mknod, wantDenied[i])
				}
				if !wantDenied[i] && r.open == unix.EPERM {
					t.Errorf("%c %d:%d: open refused by an allowed rule", nodes[i].typ, nodes[i].major, nodes[i].minor)
				}
			}
			if res[3].open != 0 {
				t.Errorf("/dev/null: open errno %d, want success", res[3].open)
			}
		})
	}
}

// TestAllowAllAdmitsEveryDevice: the privileged list lets the cgroup
// create and open devices the default denies, under both drivers.
func TestAllowAllAdmitsEveryDevice(t *testing.T) {
	testutil.RequireRoot(t)
	nodes := []node{rootDisk(t), {'c', 1, 11}, {'b', 7, 0}} // the disk, /dev/kmsg, loop0
	for _, driver := range []string{cgroups.DriverV1, cgroups.DriverV2} {
		t.Run(driver, func(t *testing.T) {
			d, path := newTestCgroup(t, driver)
			if err := devices.Apply(d, path, devices.Default); err != nil {
				t.Fatalf("Apply(Default): %v", err)
			}
			// Replacing the default, as the privileged spec's list does.
			if err := devices.Apply(d, path, devices.AllowAll); err != nil {
				t.Fatalf("Apply(AllowAll): %v", err)
			}
			for i, r := range runInCgroup(t, d, path, nodes) {
				// Only the mknod of the disk tells: this VM refuses to
				// open its root disk even to root, filter or not.
				if r.denied() || i > 0 && r.open == unix.EPERM {
					t.Errorf("%c %d:%d: mknod errno %d, open errno %d; want both allowed",
						nodes[i].typ, nodes[i].major, nodes[i].minor, r.mknod, r.open)
				}
			}
		})
	}
}

// TestWithoutFilterMknodSucceeds is the control: without a filter the
// same helper creates the disk node, so the denial above is the filter's.
func TestWithoutFilterMknodSucceeds(t *testing.T) {
	testutil.RequireRoot(t)
	for _, driver := range []string{cgroups.DriverV1, cgroups.DriverV2} {
		t.Run(driver, func(t *testing.T) {
			d, path := newTestCgroup(t, driver)
			r := runInCgroup(t, d, path, []node{rootDisk(t)})[0]
			if r.mknod != 0 {
				t.Fatalf("without a filter: mknod errno %d, want success", r.mknod)
			}
		})
	}
}

// TestAccessBits checks that a rule grants only the accesses it lists.
func TestAccessBits(t *testing.T) {
	testutil.RequireRoot(t)
	tests := []struct {
		access   string
		wantOpen unix.Errno
	}{
		{access: "m", wantOpen: unix.EPERM},
		{access: "mw", wantOpen: unix.EPERM},
		{access: "mr", wantOpen: 0},
	}
	null := node{'c', 1, 3}
	for _, driver := range []string{cgroups.DriverV1, cgroups.DriverV2} {
		for _, tt := range tests {
			t.Run(driver+"/"+tt.access, func(t *testing.T) {
				d, path := newTestCgroup(t, driver)
				rules := []devices.Rule{{Type: devices.Char, Major: 1, Minor: 3, Access: tt.access}}
				if err := devices.Apply(d, path, rules); err != nil {
					t.Fatalf("Apply: %v", err)
				}
				r := runInCgroup(t, d, path, []node{null})[0]
				if r.mknod != 0 || r.open != tt.wantOpen {
					t.Errorf("null with %q: mknod errno %d, open errno %d; want 0, %d", tt.access, r.mknod, r.open, tt.wantOpen)
				}
			})
		}
	}
}

func TestApplyV2Replaces(t *testing.T) {
	testutil.RequireRoot(t)
	d, path := newTestCgroup(t, cgroups.DriverV2)
	for i := 0; i < 2; i++ {
		if err := devices.Apply(d, path, devices.Default); err != nil {
			t.Fatalf("Apply #%d: %v", i+1, err)
		}
	}
	dir, err := d.Dir("", path)
	if err != nil {
		t.Fatal(err)
	}
	cg, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	q, err := link.QueryPrograms(link.QueryOptions{Target: int(cg.Fd()), Attach: ebpf.AttachCGroupDevice})
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Programs) != 1 {
		t.Fatalf("%d device programs attached after two Applies, want 1", len(q.Programs))
	}
}
