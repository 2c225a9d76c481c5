package e2e

import (
	"path"
	"regexp"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/peapod/peapod/cgroups"
)

// cgFile reads a control file of a cgroup on the host's limits driver
// (limitsDriver), named and valued as on v1: on v2 memory.limit_in_bytes
// is memory.max, cpu.cfs_quota_us the quota of cpu.max ("max" is -1),
// cpuacct.usage is cpu.stat's usage_usec in ns, and pids.current is in the
// one unified directory. cpu.shares has no v2 file of the same value:
// callers compare cpu.weight with cgroups.SharesToWeight.
func cgFile(t *testing.T, driver, controller, cgroup, file string) string {
	t.Helper()
	if driver != cgroups.DriverV2 {
		return v1File(t, controller, cgroup, file)
	}
	switch file {
	case "memory.limit_in_bytes":
		return v2File(t, cgroup, "memory.max")
	case "cpu.cfs_quota_us":
		quota, _, _ := strings.Cut(v2File(t, cgroup, "cpu.max"), " ")
		if quota == "max" {
			return "-1"
		}
		return quota
	case "cpuacct.usage":
		return strconv.FormatInt(statField(t, v2File(t, cgroup, "cpu.stat"), "usage_usec")*1000, 10)
	default:
		return v2File(t, cgroup, file)
	}
}

// TestUsage_FiguresMatchCgroups: top, stats --no-stream and metrics show
// what the pod's cgroup files hold: a busy loop under a 200m limit reads
// as at most ~200m and more than nothing, the memory limit and PIDs are
// the files', and the working set sits within the usage.
func TestUsage_FiguresMatchCgroups(t *testing.T) {
	driver := limitsDriver(t)
	e := newEnv(t, withDriver(driver))
	before := e.snapshot()
	e.runPod(podJSON(newPod("figures",
		withResources(shell("spin", "while :; do :; done"), "", "200m", "64Mi"),
		withResources(shell("idle", "exec sleep 1000"), "", "100m", "32Mi"))))
	v := e.inspect("figures")
	spin := v.container(t, "spin").Cgroup
	podCg := path.Dir(spin)

	out := e.mustRun("top", "figures", "--containers", "--window", "1s")
	t.Logf("top:\n%s", out)
	m := regexp.MustCompile(`(?m)^figures\s+spin\s+(\d+)m\s+(\d+)Mi$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("top --containers has no row for spin:\n%s", out)
	}
	// The CFS quota caps the loop at 200m per 100 ms period; a window
	// boundary inside a period may show a little more.
	if milli, _ := strconv.Atoi(m[1]); milli <= 0 || milli > 240 {
		t.Errorf("top: spin used %dm under a 200m limit, want 1..240m\n%s", milli, out)
	}

	out = e.mustRun("stats", "figures", "--no-stream", "--interval", "200ms")
	t.Logf("stats:\n%s", out)
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if len(rows) != 2 || !strings.HasPrefix(rows[1], "figures ") {
		t.Fatalf("stats --no-stream: want a header and the pod's row:\n%s", out)
	}
	// The pod's memory limit is the sum, 96Mi = 100663296 bytes.
	if !strings.Contains(rows[1], "/ 101MB") {
		t.Errorf("stats row %q does not show the pod's 96Mi limit as 101MB", rows[1])
	}
	pids := cgFile(t, driver, "pids", podCg, "pids.current")
	if f := strings.Fields(rows[1]); f[len(f)-1] != pids {
		t.Errorf("stats PIDS %s, want pids.current %s", f[len(f)-1], pids)
	}

	out = e.mustRun("metrics", "figures")
	for _, want := range []string{
		`container_spec_memory_limit_bytes{container="spin",namespace="default",pod="figures"} 6.7108864e+07`,
		`container_spec_memory_limit_bytes{container="idle",namespace="default",pod="figures"} 3.3554432e+07`,
		`container_oom_events_total{container="spin",namespace="default",pod="figures"} 0`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	cpu := regexp.MustCompile(`container_cpu_usage_seconds_total\{container="spin",namespace="default",pod="figures"\} (\S+)`).FindStringSubmatch(out)
	if cpu == nil {
		t.Fatalf("metrics lack spin's container_cpu_usage_seconds_total:\n%s", out)
	}
	after, _ := strconv.ParseFloat(cgFile(t, driver, "cpuacct", spin, "cpuacct.usage"), 64)
	if got, _ := strconv.ParseFloat(cpu[1], 64); got <= 0 || got > after/1e9 {
		t.Errorf("container_cpu_usage_seconds_total %v, want in (0, %v] (cpuacct.usage read after)", got, after/1e9)
	}
	ws := regexp.MustCompile(`container_memory_working_set_bytes\{container="spin",namespace="default",pod="figures"\} (\S+)`).FindStringSubmatch(out)
	if ws == nil {
		t.Fatalf("metrics lack spin's working set:\n%s", out)
	}
	if got, _ := strconv.ParseFloat(ws[1], 64); got <= 0 || got > 64<<20 {
		t.Errorf("spin's working set %v, want in (0, 64Mi]", got)
	}
	// The pod's own processes: its supervisor as the kernel and as its Go
	// runtime account it (issue 16's memory split).
	for _, re := range []string{
		`peapod_pod_process_memory_bytes\{kind="pss",namespace="default",pod="figures",process="peapod-supervisor"\} (\S+)`,
		`peapod_pod_process_memory_bytes\{kind="pss_anon",namespace="default",pod="figures",process="peapod-supervisor"\} (\S+)`,
		`peapod_pod_process_memory_bytes\{kind="page_tables",namespace="default",pod="figures",process="peapod-supervisor"\} (\S+)`,
		`peapod_pod_process_threads\{namespace="default",pod="figures",process="peapod-supervisor"\} (\S+)`,
		`peapod_supervisor_go_memory_bytes\{class="heap/objects",namespace="default",pod="figures"\} (\S+)`,
		`peapod_supervisor_go_memory_bytes\{class="heap/stacks",namespace="default",pod="figures"\} (\S+)`,
		`peapod_supervisor_goroutines\{namespace="default",pod="figures"\} (\S+)`,
	} {
		m := regexp.MustCompile(re).FindStringSubmatch(out)
		if m == nil {
			t.Errorf("metrics lack %s:\n%s", re, out)
			continue
		}
		// Nonzero, and below what no supervisor comes near (64 MiB).
		if v, _ := strconv.ParseFloat(m[1], 64); v <= 0 || v > 64<<20 {
			t.Errorf("%s: %v, want in (0, 64Mi]", re, v)
		}
	}
	// No container process is counted as the pod's own.
	if strings.Contains(out, `process="sh"`) || strings.Contains(out, `process="sleep"`) {
		t.Errorf("metrics count a container's process as the pod's:\n%s", out)
	}
	e.mustRun("rm", "-f", "figures")
	e.assertNoLeak(before)
}

// TestUsage_UpdateInPlace: update rewrites a running container's and its
// pod's limits without restarting it, `get` shows the new resources, and
// a limit below what the container holds, a bad quantity, an unknown
// container and a stopped pod are refused with the field or object named.
func TestUsage_UpdateInPlace(t *testing.T) {
	driver := limitsDriver(t)
	e := newEnv(t, withDriver(driver))
	before := e.snapshot()
	// 24 MB in /dev/shm: tmpfs pages are charged to the container and are
	// not reclaimable page cache, so they are in its working set.
	hold := shell("hold", "head -c 24000000 /dev/zero > /dev/shm/fill && echo filled && exec sleep 1000")
	e.runPod(podJSON(newPod("resize", withResources(hold, "", "200m", "64Mi"))))
	e.waitLog("resize", "hold", "filled")
	cg := e.inspect("resize").container(t, "hold").Cgroup
	podCg := path.Dir(cg)
	pid := e.inspect("resize").container(t, "hold").PID

	out := e.mustRun("update", "resize", "-c", "hold", "--cpu", "300m", "--memory", "96Mi")
	if !strings.Contains(out, "cpu 300m, memory 96Mi") {
		t.Errorf("update said %q", out)
	}
	for _, tt := range []struct{ ctrl, cgroup, file, want string }{
		{"memory", cg, "memory.limit_in_bytes", "100663296"},
		{"memory", podCg, "memory.limit_in_bytes", "100663296"},
		{"cpu", cg, "cpu.cfs_quota_us", "30000"},
		{"cpu", podCg, "cpu.cfs_quota_us", "30000"},
	} {
		if got := cgFile(t, driver, tt.ctrl, tt.cgroup, tt.file); got != tt.want {
			t.Errorf("after update %s %s = %s, want %s", tt.cgroup, tt.file, got, tt.want)
		}
	}
	// Guaranteed (limits only): the request followed the limit, 307 shares
	// (cpu.weight 12 in runc's mapping).
	shares, file := "307", "cpu.shares"
	if driver == cgroups.DriverV2 {
		shares, file = strconv.FormatUint(cgroups.SharesToWeight(307), 10), "cpu.weight"
	}
	if got := cgFile(t, driver, "cpu", cg, file); got != shares {
		t.Errorf("after update %s %s = %s, want %s", cg, file, got, shares)
	}
	c := e.get("resize")
	if lim := c.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory]; lim.String() != "96Mi" {
		t.Errorf("get: memory limit %s after update, want 96Mi", lim.String())
	}
	if q := c.Status.QOSClass; q != corev1.PodQOSGuaranteed {
		t.Errorf("qosClass %s after update, want Guaranteed", q)
	}
	if got := e.inspect("resize").container(t, "hold").PID; got != pid {
		t.Errorf("the container was restarted by update: pid %d, was %d", got, pid)
	}
	// Shrinking: the container first, then the pod.
	e.mustRun("update", "resize", "-c", "hold", "--memory", "48Mi")
	if got := cgFile(t, driver, "memory", podCg, "memory.limit_in_bytes"); got != strconv.Itoa(48<<20) {
		t.Errorf("pod memory.limit_in_bytes %s after shrinking, want %d", got, 48<<20)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"update", "resize", "-c", "hold", "--memory", "16Mi"}, "a memory limit of 16Mi is below it"},
		{[]string{"update", "resize", "-c", "hold", "--memory", "lots"}, `--memory "lots"`},
		{[]string{"update", "resize", "-c", "hold", "--cpu", "-1"}, `--cpu "-1"`},
		{[]string{"update", "resize", "-c", "nope", "--cpu", "1"}, `has no container "nope"`},
		{[]string{"update", "resize", "--cpu", "1"}, "-c/--container is required"},
		{[]string{"update", "missing", "-c", "hold", "--cpu", "1"}, `"missing"`},
	} {
		_, stderr, code := e.run("", tt.args...)
		if code == 0 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want a failure naming %q", tt.args, code, stderr, tt.want)
		}
	}
	if got := cgFile(t, driver, "memory", cg, "memory.limit_in_bytes"); got != strconv.Itoa(48<<20) {
		t.Errorf("a refused update changed memory.limit_in_bytes to %s", got)
	}
	e.mustRun("stop", "resize", "--grace-period", "0")
	if _, stderr, code := e.run("", "update", "resize", "-c", "hold", "--cpu", "1"); code == 0 || !strings.Contains(stderr, "not running") {
		t.Errorf("update of a stopped pod: exit %d, stderr %q", code, stderr)
	}
	if _, stderr, code := e.run("", "top", "resize"); code == 0 || !strings.Contains(stderr, "not running") {
		t.Errorf("top of a stopped pod: exit %d, stderr %q", code, stderr)
	}
	e.mustRun("rm", "resize")
	e.assertNoLeak(before)
}
