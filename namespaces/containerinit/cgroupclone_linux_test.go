package containerinit

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/cgroups"
	"github.com/peapod/peapod/internal/testutil"
	"github.com/peapod/peapod/namespaces"
)

// TestStartContainerClonedIntoCgroup: with a unified-hierarchy cgroup to
// clone into (cgroups.CloneTarget), the init stage is born in it: before
// anything joins it (beforeRun), /proc/PID/cgroup already names the
// container's cgroup, so the join has nothing to move and never takes the
// kernel's threadgroup rwsem. Runs on the cgroup2 tree of a hybrid host
// (controller-less, which clone3 does not mind) and on a pure v2 one.
func TestStartContainerClonedIntoCgroup(t *testing.T) {
	testutil.RequireRoot(t)
	d, err := cgroups.New(cgroups.DriverV2, cgroups.DefaultMountRoot)
	if err != nil {
		t.Fatalf("no cgroup2 hierarchy to clone into: %v", err)
	}
	path := "peapod-clonetest-" + testutil.RandHex(t, 4) + "/c"
	t.Cleanup(func() {
		if err := d.DestroyTree(path); err != nil {
			t.Errorf("failed to remove test cgroup %s: %v", path, err)
		}
	})
	if err := d.Create(path); err != nil {
		t.Fatal(err)
	}
	dir, err := cgroups.CloneTarget(d, path)
	if err != nil || dir == nil {
		t.Fatalf("CloneTarget(v2) = %v, %v; want a directory", dir, err)
	}
	defer dir.Close()
	c := newTestContainer(t, makeBusyboxLower(t, t.TempDir()), "true")
	var atBirth string
	pid, err := namespaces.StartContainerIn(testHelper(t), testPod, c, [3]*os.File{}, dir, func(pid int) error {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(data), "\n") {
			if rest, ok := strings.CutPrefix(line, "0::"); ok {
				atBirth = rest
			}
		}
		// The driver's join sees it in place and writes nothing.
		return d.Join(path, pid)
	})
	if err != nil {
		t.Fatalf("StartContainerIn: %v", err)
	}
	var ws unix.WaitStatus
	for {
		if _, err := unix.Wait4(pid, &ws, 0, nil); !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if atBirth != "/"+path {
		t.Errorf("init stage's cgroup before any join = %q, want %q (born in it)", atBirth, "/"+path)
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		t.Errorf("container `true` ended with %v, want exit 0", ws)
	}
	// v1 has no clone target: nothing is opened.
	if v1, err := cgroups.New(cgroups.DriverV1, cgroups.DefaultMountRoot); err == nil {
		if f, err := cgroups.CloneTarget(v1, path); f != nil || err != nil {
			t.Errorf("CloneTarget(v1) = %v, %v; want nil, nil", f, err)
		}
	}
}
