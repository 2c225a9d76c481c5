package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestSupervisorGate_16: run spawns the pod's supervisor before its sandbox
// and lets it read the spec only through the start gate (issue 16). A
// supervisor that dies before the gate opens, or after it but before its
// report, fails the run with the pod named and a non-zero exit; the run
// rolls back everything it made and frees the name, and the pod then runs
// under the real supervisor.
func TestSupervisorGate_16(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	manifest := podJSON(newPod("gated", ctr("c", "sleep", "1000")))
	dir := t.TempDir()
	for _, tc := range []struct{ name, script string }{
		// Gone before run opens the gate (or at once after: the byte is
		// then written into the pipe and the report pipe ends).
		{"dies-at-the-gate", "exit 3"},
		// Takes the gate's byte, then dies without a report.
		{"dies-after-the-gate", "head -c 1 <&4 >/dev/null; exit 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.on(t)
			sup := filepath.Join(dir, tc.name+".sh")
			if err := os.WriteFile(sup, []byte("#!/bin/sh\n"+tc.script+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			_, stderr, code := e.withEnv("PEAPOD_SUPERVISOR="+sup).run(manifest, "run", "-d", "-f", "-")
			if code == 0 || !strings.Contains(stderr, "supervisor of pod default/gated exited before") {
				t.Fatalf("run with a supervisor that %s: exit %d, stderr:\n%s", tc.name, code, stderr)
			}
			if pods := e.psNamed("gated"); len(pods) != 0 {
				t.Errorf("after the failed run ps shows %+v", pods)
			}
			e.assertNoLeak(before)
		})
	}
	e.runPod(manifest)
	if pods := e.psNamed("gated"); len(pods) != 1 || pods[0].status != "Running" {
		t.Fatalf("the real supervisor's run: ps shows %+v", pods)
	}
	e.mustRun("rm", "-f", "gated")
	e.assertNoLeak(before)
}

// TestMetricsPodProcesses_16: `peapod metrics` counts a pod's own
// processes — the supervisor and, with a shared PID namespace, its reaper
// (both the peapod-supervisor binary) under their roles — and never a
// container's process, even one that names itself like a peapod helper.
func TestMetricsPodProcesses_16(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	p := newPod("counted", shell("fake", `printf peapod-prober > /proc/self/comm && echo renamed && while :; do sleep 1; done`))
	p.Spec.ShareProcessNamespace = ptr(true)
	e.runPod(podJSON(p))
	e.waitLog("counted", "fake", "renamed")
	pid := e.inspect("counted").container(t, "fake").PID
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err != nil || strings.TrimSpace(string(b)) != "peapod-prober" {
		t.Fatalf("the container's process is not named peapod-prober (%q, %v): the test proves nothing", b, err)
	}
	out := e.mustRun("metrics", "counted")
	for _, process := range []string{"peapod-supervisor", "peapod-reaper"} {
		re := regexp.MustCompile(`peapod_pod_process_memory_bytes\{kind="pss",namespace="default",pod="counted",process="` + process + `"\} (\S+)`)
		m := re.FindStringSubmatch(out)
		if m == nil {
			t.Errorf("metrics lack the %s's pss:\n%s", process, out)
			continue
		}
		if v, _ := strconv.ParseFloat(m[1], 64); v <= 0 || v > 64<<20 {
			t.Errorf("%s pss %v, want in (0, 64Mi]", process, v)
		}
	}
	if strings.Contains(out, `process="peapod-prober"`) {
		t.Errorf("metrics count the container's process as the pod's prober:\n%s", out)
	}
	e.mustRun("rm", "-f", "counted")
	e.assertNoLeak(before)
}
