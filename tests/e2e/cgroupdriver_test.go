package e2e

import (
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/peapod/peapod/cgroups"
)

// TestCgroupDriverAuto: without --cgroup-driver, peapod picks v2 on a pure
// cgroup v2 host (Debian 12 under systemd: scripts/vagrant-test.sh runs this
// in such a VM) and v1 on a hybrid or legacy one (CI's host), and each
// container's process sits in the cgroup inspect names, in that hierarchy;
// stop and rm leave nothing.
func TestCgroupDriverAuto(t *testing.T) {
	e := newEnv(t)
	mode, err := cgroups.Detect(cgroups.DefaultMountRoot)
	if err != nil {
		t.Fatalf("failed to detect the host's cgroup layout: %v", err)
	}
	before := e.snapshot()
	e.runPod(podJSON(newPod("auto", shell("app", "echo ready; while :; do sleep 1; done"))))
	v := e.inspect("auto")
	e.checkCgroupPrefix(v)
	c := v.container(t, "app")
	var dir string
	if mode == cgroups.ModeUnified {
		dir = filepath.Join(cgroups.DefaultMountRoot, c.Cgroup)
		// cgroup.controllers exists only in a v2 hierarchy; the delegated
		// controllers must reach the container's cgroup for limits to work.
		ctrls := strings.Fields(readHost(t, filepath.Join(dir, "cgroup.controllers")))
		for _, want := range []string{"cpu", "memory", "pids"} {
			if !slices.Contains(ctrls, want) {
				t.Errorf("controller %s not delegated to %s: cgroup.controllers is %v", want, dir, ctrls)
			}
		}
	} else {
		dir = filepath.Join(cgroups.DefaultMountRoot, "pids", c.Cgroup)
	}
	procs := strings.Fields(readHost(t, filepath.Join(dir, "cgroup.procs")))
	if !slices.Contains(procs, strconv.Itoa(c.PID)) {
		t.Errorf("host cgroup layout %s: container pid %d not in %s/cgroup.procs (%v): auto picked the wrong driver", mode, c.PID, dir, procs)
	}
	e.mustRun("stop", "auto", "--grace-period", "0")
	e.mustRun("rm", "auto")
	checkGone(t, e, "auto")
	e.assertNoLeak(before)
}
