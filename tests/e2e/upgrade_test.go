package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/peapod/peapod/internal/testutil"
	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/supervisor"
	corev1 "k8s.io/api/core/v1"
)

// upgradeFromEnv overrides the baseline commit of testdata/upgrade-baseline.
const upgradeFromEnv = "PEAPOD_UPGRADE_FROM"

// baselineCommit returns the commit the upgrade test builds the old
// binaries from.
func baselineCommit(t *testing.T) string {
	t.Helper()
	if c := os.Getenv(upgradeFromEnv); c != "" {
		return c
	}
	data, err := os.ReadFile("testdata/upgrade-baseline")
	if err != nil {
		t.Fatalf("failed to read the upgrade baseline: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			return line
		}
	}
	t.Fatal("testdata/upgrade-baseline names no commit")
	return ""
}

// buildBaseline extracts the baseline commit's tree with git archive (the
// clone's history must hold it) and builds its binaries into a temp dir.
func buildBaseline(t *testing.T, commit string) string {
	t.Helper()
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("git", "-C", root, "cat-file", "-e", commit+"^{commit}").CombinedOutput(); err != nil {
		msg := fmt.Sprintf("the upgrade baseline %s is not in this clone's history (shallow clone?): %v %s; "+
			"fetch it, or set %s to a commit that is", commit, err, out, upgradeFromEnv)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	src := shortTempDir(t)
	archive := exec.Command("bash", "-c", `set -o pipefail; git -C "$1" archive --format=tar "$2" | tar -x -C "$3"`, "archive", root, commit, src)
	if out, err := archive.CombinedOutput(); err != nil {
		t.Fatalf("failed to extract %s: %v\n%s", commit, err, out)
	}
	bin := shortTempDir(t)
	if _, err := testutil.BuildPeapodFrom(src, bin); err != nil {
		t.Fatalf("failed to build the baseline %s: %v", commit, err)
	}
	return filepath.Join(bin, "peapod")
}

// TestUpgrade: pods started by the baseline release's binaries keep
// running and are listed, inspected, exec'd into, stopped and removed by
// this tree's binaries, leaving nothing behind.
func TestUpgrade(t *testing.T) {
	testutil.RequireRoot(t)
	commit := baselineCommit(t)
	oldBin := buildBaseline(t, commit)

	e := newEnv(t, withBinary(oldBin))
	before := e.snapshot()
	ready := shell("web", `echo up > /tmp/up; while :; do sleep 1; done`)
	ready.ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/tmp/up"}}},
		PeriodSeconds: 1,
	}
	p := newPod("old", ready, ctr("side", "sleep", "1000"))
	p.Spec.TerminationGracePeriodSeconds = ptr(int64(2))
	e.runPod(podJSON(p))
	old := e.waitPod("old", waitTimeout, func(p *corev1.Pod) (bool, string) {
		c := condition(p, corev1.PodReady)
		return c == corev1.ConditionTrue, fmt.Sprintf("Ready %q", c)
	})
	oldView := e.inspect("old")

	// From here on, this tree's CLI (and its helpers) drive the old pod.
	e.bin = peapodBin
	ps := e.mustRun("ps")
	if !strings.Contains(ps, "old") || !strings.Contains(ps, "2/2") || !strings.Contains(ps, "Running") {
		t.Errorf("new ps does not show the old pod 2/2 Running:\n%s", ps)
	}
	p2 := e.get("old")
	if p2.Status.PodIP != old.Status.PodIP || p2.UID != old.UID {
		t.Errorf("new get: ip %q uid %q, old get: ip %q uid %q", p2.Status.PodIP, p2.UID, old.Status.PodIP, old.UID)
	}
	if v := e.inspect("old"); v.SupervisorPID != oldView.SupervisorPID {
		t.Errorf("new inspect: supervisor pid %d, the old supervisor is %d", v.SupervisorPID, oldView.SupervisorPID)
	}
	if got := strings.TrimSpace(e.mustExec("old", "web", "cat", "/tmp/up")); got != "up" {
		t.Errorf("new exec into the old pod printed %q, want %q", got, "up")
	}
	e.mustRun("stop", "old")
	stopped := e.get("old")
	for _, cs := range stopped.Status.ContainerStatuses {
		if cs.State.Terminated == nil {
			t.Errorf("container %s after the new stop: %+v, want terminated", cs.Name, cs.State)
		}
	}
	e.mustRun("rm", "old")
	waitGone(t, oldView.SupervisorPID)
	e.assertNoLeak(before)
}

// TestVersionMismatch: a supervisor speaking a protocol this peapod does not
// know (a newer one, here a stand-in on the pod's socket) is reported with
// both versions and what to do, and rm -f still removes the pod.
func TestVersionMismatch(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	e.runPod(podJSON(newPod("future", ctr("c", "sleep", "1000"))))
	v := e.inspect("future")
	sock := layout.Run(e.dirs().RunDir(v.UID)).Socket()
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("the pod's supervisor socket: %v", err)
	}
	// Put a stand-in in front: move the real socket aside and answer every
	// request as a future supervisor would.
	real := sock + ".real"
	if err := os.Rename(sock, real); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	const future = "peapod.dev/sock/v99"
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = bufio.NewReader(c).ReadBytes('\n')
			_ = json.NewEncoder(c).Encode(map[string]string{"version": future})
			c.Close()
		}
	}()
	_, stderr, code := e.run("", "stop", "future")
	if code == 0 {
		t.Fatalf("stop through a %s supervisor exited 0", future)
	}
	for _, want := range []string{future, supervisor.ProtocolVersion, "rm -f"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stop's error does not name %q:\n%s", want, stderr)
		}
	}
	l.Close()
	if err := os.Rename(real, sock); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitTimeout)
	e.mustRun("rm", "-f", "future")
	waitGone(t, v.SupervisorPID)
	if time.Now().After(deadline) {
		t.Logf("rm -f took longer than %v", waitTimeout)
	}
	e.assertNoLeak(before)
}
