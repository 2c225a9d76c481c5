package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

const tmpfsMagic = unix.TMPFS_MAGIC

func TestDetect(t *testing.T) {
	tests := []struct {
		name    string
		statfs  fakeStatfs
		want    Mode
		wantErr bool
	}{
		{name: "pure v2", statfs: fakeStatfs{"/cg": unix.CGROUP2_SUPER_MAGIC}, want: ModeUnified},
		{name: "hybrid", statfs: fakeStatfs{"/cg": tmpfsMagic, "/cg/unified": unix.CGROUP2_SUPER_MAGIC}, want: ModeHybrid},
		{name: "legacy", statfs: fakeStatfs{"/cg": tmpfsMagic}, want: ModeLegacy},
		{name: "unified dir is not cgroup2", statfs: fakeStatfs{"/cg": tmpfsMagic, "/cg/unified": tmpfsMagic}, want: ModeLegacy},
		{name: "root missing", statfs: fakeStatfs{}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := detect("/cg", tt.statfs)
			if (err != nil) != tt.wantErr {
				t.Fatalf("detect: err %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("detect = %v, want %v", got, tt.want)
			}
		})
	}
}

// v1Mounts is a host with cpu,cpuacct co-mounted, a second (bind) mount of
// the freezer, hierarchies peapod ignores, and mounts outside the root.
func v1Mounts(root string) []mount {
	return []mount{
		{dev: "0:20", mountpoint: root, fstype: "tmpfs", superOpts: []string{"rw"}},
		{dev: "0:21", mountpoint: root + "/cpu,cpuacct", fstype: "cgroup", superOpts: []string{"rw", "cpu", "cpuacct"}},
		{dev: "0:22", mountpoint: root + "/freezer", fstype: "cgroup", superOpts: []string{"rw", "freezer"}},
		{dev: "0:22", mountpoint: root + "/freezer-again", fstype: "cgroup", superOpts: []string{"rw", "freezer"}},
		{dev: "0:23", mountpoint: root + "/devices", fstype: "cgroup", superOpts: []string{"rw", "devices"}},
		{dev: "0:24", mountpoint: root + "/hugetlb", fstype: "cgroup", superOpts: []string{"rw", "hugetlb"}},
		{dev: "0:25", mountpoint: root + "/memory", fstype: "cgroup", superOpts: []string{"rw", "memory"}},
		{dev: "0:26", mountpoint: root + "/systemd", fstype: "cgroup", superOpts: []string{"rw", "xattr", "name=systemd"}},
		{dev: "0:27", mountpoint: root + "/unified", fstype: "cgroup2", superOpts: []string{"rw"}},
		{dev: "0:28", mountpoint: "/elsewhere/pids", fstype: "cgroup", superOpts: []string{"rw", "pids"}},
	}
}

func hybridEnv(t *testing.T, root string, fsys cgroupFS, mounts []mount) env {
	t.Helper()
	return env{
		statfs: fakeStatfs{root: tmpfsMagic, root + "/unified": unix.CGROUP2_SUPER_MAGIC},
		mounts: func() ([]mount, error) { return mounts, nil },
		fs:     fsys,
	}
}

func TestNewPicksDriver(t *testing.T) {
	tests := []struct {
		name     string
		driver   string
		statfs   fakeStatfs
		wantName string
		wantRoot string
		wantErr  error
	}{
		{name: "auto on pure v2", driver: "auto", statfs: fakeStatfs{"/cg": unix.CGROUP2_SUPER_MAGIC}, wantName: "v2", wantRoot: "/cg"},
		{name: "auto on hybrid", driver: "auto", statfs: fakeStatfs{"/cg": tmpfsMagic, "/cg/unified": unix.CGROUP2_SUPER_MAGIC}, wantName: "v1"},
		{name: "auto on legacy", driver: "", statfs: fakeStatfs{"/cg": tmpfsMagic}, wantName: "v1"},
		{name: "v2 on hybrid", driver: "v2", statfs: fakeStatfs{"/cg": tmpfsMagic, "/cg/unified": unix.CGROUP2_SUPER_MAGIC}, wantName: "v2", wantRoot: "/cg/unified"},
		{name: "v2 on legacy", driver: "v2", statfs: fakeStatfs{"/cg": tmpfsMagic}, wantErr: ErrUnsupported},
		{name: "v1 on pure v2", driver: "v1", statfs: fakeStatfs{"/cg": unix.CGROUP2_SUPER_MAGIC}, wantErr: ErrUnsupported},
		{name: "unknown", driver: "v3", statfs: fakeStatfs{"/cg": tmpfsMagic}, wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := env{statfs: tt.statfs, mounts: func() ([]mount, error) { return v1Mounts("/cg"), nil }, fs: hostFS{}}
			d, err := newDriver(tt.driver, "/cg", e)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("newDriver(%q): err %v, want %v", tt.driver, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if d.Name() != tt.wantName {
				t.Errorf("Name() = %q, want %q", d.Name(), tt.wantName)
			}
			if v2, ok := d.(*v2Driver); ok && v2.root != tt.wantRoot {
				t.Errorf("v2 root = %q, want %q", v2.root, tt.wantRoot)
			}
		})
	}
}

func TestV1NeedsFreezer(t *testing.T) {
	var mounts []mount
	for _, m := range v1Mounts("/cg") {
		if !strings.HasSuffix(m.mountpoint, "freezer") && !strings.HasSuffix(m.mountpoint, "freezer-again") {
			mounts = append(mounts, m)
		}
	}
	_, err := newDriver("v1", "/cg", hybridEnv(t, "/cg", hostFS{}, mounts))
	if !errors.Is(err, ErrNoController) {
		t.Fatalf("newDriver without freezer: err %v, want ErrNoController", err)
	}
}

func TestV1PathsPerHierarchy(t *testing.T) {
	fsys := newFakeFS(t, true)
	root := fsys.root
	d, err := newDriver("v1", root, hybridEnv(t, root, fsys, v1Mounts(root)))
	if err != nil {
		t.Fatal(err)
	}
	const path = "peapod-r1/pod/ctr"
	for _, h := range []string{"cpu,cpuacct", "freezer", "devices", "hugetlb", "memory", "systemd"} {
		fsys.initRoot(t, filepath.Join(root, h), "")
	}
	if err := d.Create(path); err != nil {
		t.Fatalf("Create: %v", err)
	}
	var want []string
	for _, h := range []string{"cpu,cpuacct", "freezer", "devices", "memory", "systemd"} {
		want = append(want, filepath.Join(root, h, path, "cgroup.procs"))
	}
	if got := d.ProcsFiles(path); !reflect.DeepEqual(got, want) {
		t.Errorf("ProcsFiles =\n%q\nwant\n%q", got, want)
	}
	if exists(filepath.Join(root, "hugetlb", path)) {
		t.Errorf("Create made a cgroup in the unused hugetlb hierarchy")
	}
	if err := d.Join(path, 4242); err != nil {
		t.Fatalf("Join: %v", err)
	}
	for _, f := range want {
		if got := readString(t, f); got != "4242" {
			t.Errorf("%s = %q, want 4242", f, got)
		}
	}
	for ctrl, wantDir := range map[string]string{
		"devices": filepath.Join(root, "devices", path),
		"cpuacct": filepath.Join(root, "cpu,cpuacct", path),
		"cpu":     filepath.Join(root, "cpu,cpuacct", path),
	} {
		if got, err := d.Dir(ctrl, path); err != nil || got != wantDir {
			t.Errorf("Dir(%q) = %q, %v; want %q", ctrl, got, err, wantDir)
		}
	}
	for _, ctrl := range []string{"hugetlb", "pids"} { // ignored, and mounted outside the root
		if _, err := d.Dir(ctrl, path); !errors.Is(err, ErrNoController) {
			t.Errorf("Dir(%q): err %v, want ErrNoController", ctrl, err)
		}
	}
}

func TestV2DelegatesControllersTopDown(t *testing.T) {
	tests := []struct {
		name        string
		mode        Mode
		rootCtrls   string
		wantEnabled string
	}{
		{name: "all delegated", mode: ModeUnified, rootCtrls: "cpuset cpu io memory hugetlb pids rdma misc", wantEnabled: "cpu memory pids"},
		{name: "cpu not delegated", mode: ModeUnified, rootCtrls: "memory pids", wantEnabled: "memory pids"},
		{name: "nothing delegated", mode: ModeUnified, rootCtrls: "", wantEnabled: ""},
		{name: "hybrid tree is left alone", mode: ModeHybrid, rootCtrls: "hugetlb", wantEnabled: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := newFakeFS(t, false)
			fsys.initRoot(t, fsys.root, tt.rootCtrls)
			d := newV2(fsys.root, tt.mode, fsys)
			const path = "peapod-r1/pod/ctr"
			if err := d.Create(path); err != nil {
				t.Fatalf("Create: %v", err)
			}
			for _, parent := range []string{"", "peapod-r1", "peapod-r1/pod"} {
				got := readString(t, filepath.Join(fsys.root, parent, "cgroup.subtree_control"))
				if got != tt.wantEnabled {
					t.Errorf("%q subtree_control = %q, want %q", parent, got, tt.wantEnabled)
				}
			}
			leaf := filepath.Join(fsys.root, path)
			if got := readString(t, filepath.Join(leaf, "cgroup.subtree_control")); got != "" {
				t.Errorf("leaf subtree_control = %q, want empty: processes live there", got)
			}
			if got := readString(t, filepath.Join(leaf, "cgroup.controllers")); got != tt.wantEnabled {
				t.Errorf("leaf controllers = %q, want %q", got, tt.wantEnabled)
			}
			nWrites := len(fsys.writes)
			if err := d.Create(path); err != nil {
				t.Fatalf("second Create: %v", err)
			}
			if len(fsys.writes) != nWrites {
				t.Errorf("second Create wrote %q, want no writes", fsys.writes[nWrites:])
			}
			if err := d.Join(path, 4242); err != nil {
				t.Fatalf("Join: %v", err)
			}
			for _, dir := range []string{"", "peapod-r1", "peapod-r1/pod"} {
				if got := readString(t, filepath.Join(fsys.root, dir, "cgroup.procs")); got != "" {
					t.Errorf("%q has processes %q: only leaves may", dir, got)
				}
			}
			if got, err := d.Pids("peapod-r1"); err != nil || !reflect.DeepEqual(got, []int{4242}) {
				t.Errorf("Pids(parent) = %v, %v; want [4242] from the leaf", got, err)
			}
		})
	}
}

func TestDestroyIdempotent(t *testing.T) {
	for _, v1 := range []bool{false, true} {
		t.Run(map[bool]string{false: "v2", true: "v1"}[v1], func(t *testing.T) {
			fsys := newFakeFS(t, v1)
			var d Driver
			var roots []string
			if v1 {
				for _, h := range []string{"cpu,cpuacct", "freezer", "devices", "hugetlb", "memory", "systemd"} {
					fsys.initRoot(t, filepath.Join(fsys.root, h), "")
				}
				var err error
				d, err = newDriver("v1", fsys.root, hybridEnv(t, fsys.root, fsys, v1Mounts(fsys.root)))
				if err != nil {
					t.Fatal(err)
				}
				roots = []string{"cpu,cpuacct", "freezer", "devices", "memory", "systemd"}
			} else {
				fsys.initRoot(t, fsys.root, "memory pids")
				d = newV2(fsys.root, ModeUnified, fsys)
				roots = []string{""}
			}
			for _, p := range []string{"peapod-r1/pod/ctr/sub", "peapod-r1/pod/sidecar", "peapod-r1/other/ctr"} {
				if err := d.Create(p); err != nil {
					t.Fatalf("Create(%q): %v", p, err)
				}
			}
			if err := d.Destroy("peapod-r1/pod/ctr"); err != nil {
				t.Fatalf("Destroy: %v", err)
			}
			if err := d.Destroy("peapod-r1/pod/ctr"); err != nil {
				t.Fatalf("second Destroy: %v", err)
			}
			if err := d.DestroyTree("peapod-r1/pod/sidecar"); err != nil {
				t.Fatalf("DestroyTree: %v", err)
			}
			if err := d.DestroyTree("peapod-r1/pod/sidecar"); err != nil {
				t.Fatalf("second DestroyTree: %v", err)
			}
			for _, r := range roots {
				base := filepath.Join(fsys.root, r)
				for p, want := range map[string]bool{
					"":                    true, // the hierarchy root is never removed
					"peapod-r1":           true, // still holds "other"
					"peapod-r1/other/ctr": true,
					"peapod-r1/pod":       false,
				} {
					if got := exists(filepath.Join(base, p)); got != want {
						t.Errorf("%q exists = %v, want %v", filepath.Join(r, p), got, want)
					}
				}
			}
		})
	}
}

func TestCPUStat(t *testing.T) {
	t.Run("v2", func(t *testing.T) {
		fsys := newFakeFS(t, false)
		fsys.initRoot(t, fsys.root, "")
		d := newV2(fsys.root, ModeUnified, fsys)
		if err := d.Create("a"); err != nil {
			t.Fatal(err)
		}
		writeTestFile(t, filepath.Join(fsys.root, "a/cpu.stat"), "usage_usec 1234\nuser_usec 1000\nsystem_usec 234\n")
		if got, err := d.CPUStat("a"); err != nil || got != 1234 {
			t.Errorf("CPUStat = %d, %v; want 1234", got, err)
		}
	})
	t.Run("v1", func(t *testing.T) {
		fsys := newFakeFS(t, true)
		fsys.initRoot(t, filepath.Join(fsys.root, "cpu,cpuacct"), "")
		d, err := newDriver("v1", fsys.root, hybridEnv(t, fsys.root, fsys, v1Mounts(fsys.root)))
		if err != nil {
			t.Fatal(err)
		}
		if err := mkdirAll(fsys, filepath.Join(fsys.root, "cpu,cpuacct"), "a", nil); err != nil {
			t.Fatal(err)
		}
		writeTestFile(t, filepath.Join(fsys.root, "cpu,cpuacct/a/cpuacct.usage"), "5000999\n")
		if got, err := d.CPUStat("a"); err != nil || got != 5000 {
			t.Errorf("CPUStat = %d, %v; want 5000", got, err)
		}
	})
}

func writeTestFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCleanPathRefusesEscapes(t *testing.T) {
	for _, p := range []string{"", ".", "/abs", "..", "../x", "a/../../b", "a//b", "a/./b", "a/"} {
		if _, err := cleanPath(p); !errors.Is(err, ErrInvalid) {
			t.Errorf("cleanPath(%q): err %v, want ErrInvalid", p, err)
		}
	}
	for _, p := range []string{"a", "peapod-r1/pod/ctr"} {
		if got, err := cleanPath(p); err != nil || got != p {
			t.Errorf("cleanPath(%q) = %q, %v", p, got, err)
		}
	}
}

func TestMountsOf(t *testing.T) {
	in := "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n" +
		"32 31 0:29 / /sys/fs/cgroup/cpu\\040x rw,relatime shared:8 - cgroup cgroup rw,cpu,cpuacct\n" +
		"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
	infos, err := mountinfo.GetMountsFromReader(strings.NewReader(in), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := mountsOf(infos)
	want := []mount{
		{dev: "98:0", mountpoint: "/mnt2", fstype: "ext3", superOpts: []string{"rw", "errors=continue"}},
		{dev: "0:29", mountpoint: "/sys/fs/cgroup/cpu x", fstype: "cgroup", superOpts: []string{"rw", "cpu", "cpuacct"}},
		{dev: "0:38", mountpoint: "/sys/fs/cgroup/unified", fstype: "cgroup2", superOpts: []string{"rw"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mountsOf =\n%+v\nwant\n%+v", got, want)
	}
}

// racingFS removes a shared parent just before its child is made, as a
// concurrent removal of the parent's last child does (removeEmptyParents).
type racingFS struct {
	*fakeFS
	// parent is removed before the first mkdir of child.
	parent, child string
	raced         int
}

func (r *racingFS) Mkdir(name string) error {
	if name == r.child && r.raced == 0 {
		r.raced++
		if err := r.fakeFS.Rmdir(r.parent); err != nil {
			return err
		}
	}
	return r.fakeFS.Mkdir(name)
}

// TestCreateSurvivesParentRemoval: a pod cgroup is created while the last
// pod of its QoS parent is being removed; Create walks down again and
// makes the parent anew instead of failing with ENOENT.
func TestCreateSurvivesParentRemoval(t *testing.T) {
	fsys := &racingFS{fakeFS: newFakeFS(t, false)}
	fsys.parent = filepath.Join(fsys.root, "peapod-x", "burstable")
	fsys.child = filepath.Join(fsys.parent, "pod")
	fsys.initRoot(t, fsys.root, "cpu memory pids")
	d := newV2(fsys.root, ModeUnified, fsys)
	if err := d.Create("peapod-x/burstable/pod"); err != nil {
		t.Fatalf("Create with its parent removed under it: %v", err)
	}
	if fsys.raced != 1 {
		t.Fatalf("the parent was removed %d times, want once: the race was not exercised", fsys.raced)
	}
	if _, err := os.Stat(filepath.Join(fsys.child, "cgroup.procs")); err != nil {
		t.Errorf("the pod cgroup is missing after Create: %v", err)
	}
}
