package e2e

import (
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/peapod/peapod/cgroups"
)

// withResources sets a container's requests and limits ("" leaves one out).
func withResources(c corev1.Container, reqCPU, limCPU, limMem string) corev1.Container {
	set := func(l *corev1.ResourceList, name corev1.ResourceName, q string) {
		if q == "" {
			return
		}
		if *l == nil {
			*l = corev1.ResourceList{}
		}
		(*l)[name] = resource.MustParse(q)
	}
	set(&c.Resources.Requests, corev1.ResourceCPU, reqCPU)
	set(&c.Resources.Limits, corev1.ResourceCPU, limCPU)
	set(&c.Resources.Limits, corev1.ResourceMemory, limMem)
	return c
}

// v1File reads a control file of a container's (or, with up > 0, its
// parents') cgroup in the v1 hierarchy of controller.
func v1File(t *testing.T, controller, cgroup, file string) string {
	t.Helper()
	return strings.TrimSpace(readHost(t, filepath.Join(cgroups.DefaultMountRoot, controller, cgroup, file)))
}

// hybridHost tells whether this host's cgroup2 tree is the controller-less
// one of a hybrid layout, where the v2 driver cannot set limits.
func hybridHost(t *testing.T) bool {
	mode, err := cgroups.Detect(cgroups.DefaultMountRoot)
	if err != nil {
		t.Fatal(err)
	}
	return mode == cgroups.ModeHybrid
}

// limitsDriver is the driver that sets resource limits on this host: v1 on
// a hybrid host (CI's), whose cgroup2 tree has no controllers; v2 on a pure
// cgroup v2 host (scripts/vagrant-test.sh's Debian 12 VM), which has no v1.
func limitsDriver(t *testing.T) string {
	t.Helper()
	mode, err := cgroups.Detect(cgroups.DefaultMountRoot)
	if err != nil {
		t.Fatal(err)
	}
	if mode == cgroups.ModeUnified {
		return cgroups.DriverV2
	}
	return cgroups.DriverV1
}

// v2File reads a control file of a cgroup in the unified hierarchy.
func v2File(t *testing.T, cgroup, file string) string {
	t.Helper()
	return strings.TrimSpace(readHost(t, filepath.Join(cgroups.DefaultMountRoot, cgroup, file)))
}

// TestResources_LimitsLand: a Burstable container (250m/500m CPU, 64Mi)
// and a BestEffort sidecar get the kubelet's values in their cgroup files,
// and the pod cgroup above them the pod-level ones. On a hybrid host's
// controller-less cgroup2 tree the v2 driver refuses the pod, naming the
// way out, and leaves nothing behind.
func TestResources_LimitsLand(t *testing.T) {
	for _, driver := range cgroupDrivers {
		t.Run("cgroup-"+driver, func(t *testing.T) {
			e := newEnv(t, withDriver(driver))
			p := newPod("limited", withResources(ctr("app", "sleep", "1000"), "250m", "500m", "64Mi"), ctr("side", "sleep", "1000"))
			if driver == "v2" && hybridHost(t) {
				before := e.snapshot()
				_, stderr, code := e.run(podJSON(p), "run", "-d", "-f", "-")
				if code == 0 || !strings.Contains(stderr, "failed to set pod resources") || !strings.Contains(stderr, "use the v1 driver") {
					t.Fatalf("run on the controller-less cgroup2 tree: exit %d, stderr %q; want a refusal naming the pod's resources and the v1 driver", code, stderr)
				}
				if out, _, _ := e.run("", "ps", "-A"); strings.Contains(out, "limited") {
					t.Errorf("a refused pod is listed:\n%s", out)
				}
				e.assertNoLeak(before)
				return
			}
			e.runPod(podJSON(p))
			if q := e.get("limited").Status.QOSClass; q != corev1.PodQOSBurstable {
				t.Errorf("status.qosClass = %q, want Burstable", q)
			}
			v := e.inspect("limited")
			app, side := v.container(t, "app").Cgroup, v.container(t, "side").Cgroup
			if driver == "v2" {
				root := filepath.Join(cgroups.DefaultMountRoot, app)
				for file, want := range map[string]string{"cpu.weight": "10", "cpu.max": "50000 100000", "memory.max": "67108864"} {
					if got := strings.TrimSpace(readHost(t, filepath.Join(root, file))); got != want {
						t.Errorf("app %s = %q, want %q", file, got, want)
					}
				}
				return
			}
			pod := path.Dir(app)
			for _, tt := range []struct{ ctrl, cgroup, file, want string }{
				{"cpu", app, "cpu.shares", "256"},
				{"cpu", app, "cpu.cfs_period_us", "100000"},
				{"cpu", app, "cpu.cfs_quota_us", "50000"},
				{"memory", app, "memory.limit_in_bytes", "67108864"},
				// No request: the BestEffort minimum; no limit: none.
				{"cpu", side, "cpu.shares", "2"},
				{"cpu", side, "cpu.cfs_quota_us", "-1"},
				// The pod: shares from the summed requests; no quota and
				// no memory limit, as the sidecar has none.
				{"cpu", pod, "cpu.shares", "256"},
				{"cpu", pod, "cpu.cfs_quota_us", "-1"},
			} {
				if got := v1File(t, tt.ctrl, tt.cgroup, tt.file); got != tt.want {
					t.Errorf("%s %s = %q, want %q", tt.cgroup, tt.file, got, tt.want)
				}
			}
			if got := v1File(t, "memory", side, "memory.limit_in_bytes"); len(got) < 15 {
				t.Errorf("sidecar memory.limit_in_bytes = %s, want unlimited", got)
			}
			// memsw exists only with swap accounting (swapaccount=1).
			if got, err := readOptional(filepath.Join(cgroups.DefaultMountRoot, "memory", app, "memory.memsw.limit_in_bytes")); err == nil && got != "67108864" {
				t.Errorf("app memory.memsw.limit_in_bytes = %q, want the memory limit: swap must not stretch it", got)
			}
		})
	}
}

// TestResources_PodLimitIsTheSum: with every container limited, the pod
// cgroup carries the sum, as the kubelet's pod cgroup does, and the pod is
// Guaranteed.
func TestResources_PodLimitIsTheSum(t *testing.T) {
	driver := limitsDriver(t)
	e := newEnv(t, withDriver(driver))
	p := newPod("summed",
		withResources(ctr("a", "sleep", "1000"), "", "300m", "40Mi"),
		withResources(ctr("b", "sleep", "1000"), "", "200m", "24Mi"))
	e.runPod(podJSON(p))
	if q := e.get("summed").Status.QOSClass; q != corev1.PodQOSGuaranteed {
		t.Errorf("status.qosClass = %q, want Guaranteed (limits only: requests default to them)", q)
	}
	pod := path.Dir(e.inspect("summed").container(t, "a").Cgroup)
	if driver == cgroups.DriverV2 {
		// 512 shares in runc's mapping; the quota over the period.
		for file, want := range map[string]string{"cpu.weight": "20", "cpu.max": "50000 100000", "memory.max": strconv.Itoa(64 << 20)} {
			if got := v2File(t, pod, file); got != want {
				t.Errorf("pod %s = %q, want %q", file, got, want)
			}
		}
		return
	}
	for file, want := range map[string]string{"cpu.shares": "512", "cpu.cfs_quota_us": "50000"} {
		if got := v1File(t, "cpu", pod, file); got != want {
			t.Errorf("pod %s = %q, want %q", file, got, want)
		}
	}
	if got := v1File(t, "memory", pod, "memory.limit_in_bytes"); got != strconv.Itoa(64<<20) {
		t.Errorf("pod memory.limit_in_bytes = %s, want %d", got, 64<<20)
	}
}

// TestResources_CPUQuotaThrottles: a busy loop under limits.cpu 200m uses
// 20 % of a CPU (±5 points) over three seconds, measured from cpuacct.usage
// (v1) or cpu.stat's usage_usec (v2), and the CFS throttles it
// (nr_throttled grows); without the quota the loop takes a whole CPU. The
// lower bound holds only where the loop could run whenever its quota
// allowed: a period in which it was throttled is one in which it used its
// whole 20 ms, so the bound is checked when most periods throttled, and
// the figures are logged either way.
func TestResources_CPUQuotaThrottles(t *testing.T) {
	driver := limitsDriver(t)
	e := newEnv(t, withDriver(driver))
	e.runPod(podJSON(newPod("busy", withResources(shell("spin", "while :; do :; done"), "", "200m", ""))))
	cg := e.inspect("busy").container(t, "spin").Cgroup
	// usage is the CPU time used in ns; cpuStat the flat-keyed stat file
	// holding nr_periods and nr_throttled.
	var usage func() int64
	var cpuStat func() string
	if driver == cgroups.DriverV2 {
		if got := v2File(t, cg, "cpu.max"); got != "20000 100000" {
			t.Fatalf("cpu.max = %s, want 20000 100000 (200m of a 100000 µs period)", got)
		}
		cpuStat = func() string { return v2File(t, cg, "cpu.stat") }
		usage = func() int64 { return statField(t, cpuStat(), "usage_usec") * 1000 }
	} else {
		if got := v1File(t, "cpu", cg, "cpu.cfs_quota_us"); got != "20000" {
			t.Fatalf("cpu.cfs_quota_us = %s, want 20000 (200m of a 100000 µs period)", got)
		}
		cpuStat = func() string { return v1File(t, "cpu", cg, "cpu.stat") }
		usage = func() int64 {
			n, err := strconv.ParseInt(v1File(t, "cpuacct", cg, "cpuacct.usage"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	stat0 := cpuStat()
	start, u0 := time.Now(), usage()
	// Sampling CPU use needs wall time to pass; no event stands for it.
	time.Sleep(3 * time.Second)
	u1, wall := usage(), time.Since(start)
	stat1 := cpuStat()
	cpus := float64(u1-u0) / float64(wall.Nanoseconds())
	periods := statField(t, stat1, "nr_periods") - statField(t, stat0, "nr_periods")
	throttled := statField(t, stat1, "nr_throttled") - statField(t, stat0, "nr_throttled")
	t.Logf("busy loop under 200m: %.3f CPU over %v; throttled in %d of %d periods", cpus, wall, throttled, periods)
	if throttled == 0 {
		t.Fatalf("cpu.stat nr_throttled did not grow over a 3 s busy loop under 200m")
	}
	if cpus > 0.25 {
		t.Errorf("busy loop used %.3f CPU under a 200m limit, want 0.20 ± 0.05", cpus)
	}
	if periods > 0 && float64(throttled) >= 0.8*float64(periods) && cpus < 0.15 {
		t.Errorf("busy loop used %.3f CPU under a 200m limit while throttled in %d of %d periods, want 0.20 ± 0.05", cpus, throttled, periods)
	}
}

// TestResources_BadQuantities: each refused with an error naming the field,
// a non-zero exit, and no pod left.
func TestResources_BadQuantities(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct{ name, res, want string }{
		{"one byte", "limits: {memory: '1'}", `spec.containers[0].resources.limits[memory]: Invalid value: "1": must be at least 6Mi`},
		{"negative", "limits: {cpu: '-1'}", `spec.containers[0].resources.limits[cpu]: Invalid value: "-1": must be greater than or equal to 0`},
		{"1e30 cpu", "limits: {cpu: 1e30}", `spec.containers[0].resources.limits[cpu]: Invalid value: "1e+30": must be at most 1M`},
		{"non-numeric", "limits: {memory: lots}", `spec.containers[0].resources.limits[memory]: Invalid value: "lots": quantities must match`},
		{"request above limit", "{requests: {memory: 128Mi}, limits: {memory: 64Mi}}", `must be less than or equal to memory limit of 64Mi`},
		{"hugepages", "limits: {hugepages-2Mi: 2Mi, memory: 64Mi}", `spec.containers[0].resources.limits[hugepages-2Mi]: Forbidden`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := tt.res
			if !strings.HasPrefix(res, "{") {
				res = "{" + res + "}"
			}
			manifest := "apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec:\n  containers:\n  - name: app\n    image: busybox:latest\n    command: [sleep, '1000']\n    resources: " + res + "\n"
			_, stderr, code := e.run(manifest, "run", "-d", "-f", "-")
			if code == 0 || !strings.Contains(stderr, tt.want) {
				t.Errorf("run: exit %d, stderr %q; want non-zero and %q", code, stderr, tt.want)
			}
			if out, _, _ := e.run("", "ps", "-A"); strings.Contains(out, "bad") {
				t.Errorf("a refused pod is listed:\n%s", out)
			}
		})
	}
}

// readOptional reads a file that may not exist, trimmed.
func readOptional(name string) (string, error) {
	b, err := os.ReadFile(name)
	return strings.TrimSpace(string(b)), err
}

// statField returns a "key value" line's value of a flat-keyed file.
func statField(t *testing.T, content, key string) int64 {
	t.Helper()
	for _, line := range strings.Split(content, "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in:\n%s", key, content)
	return 0
}

// TestResources_OOMKilled: a container buffering 100 MiB under a 32Mi limit
// is killed by the kernel and reports OOMKilled with exit code 137, and
// restarts under Always; a container whose child is SIGKILLed (exit 137; PID
// 1 of its namespace cannot SIGKILL itself) is an
// Error, since OOM is read from the cgroup, never guessed from the code; the
// pod's other container is untouched.
func TestResources_OOMKilled(t *testing.T) {
	// OOM kills are read from memory.oom_control on v1, memory.events on v2.
	e := newEnv(t, withDriver(limitsDriver(t)), fastBackoff)
	p := newPod("oom",
		withResources(shell("hog", "head -c 100m /dev/zero | tail"), "", "", "32Mi"),
		withResources(shell("selfkill", "sleep 0.2; sleep 1000 & kill -9 $!; wait $!"), "", "", "32Mi"),
		ctr("bystander", "sleep", "1000"))
	e.runPod(podJSON(p))
	got := e.waitPod("oom", waitTimeout, func(p *corev1.Pod) (bool, string) {
		for _, s := range p.Status.ContainerStatuses {
			if (s.Name == "hog" || s.Name == "selfkill") && (s.RestartCount < 1 || s.LastTerminationState.Terminated == nil) {
				return false, s.Name + " not yet restarted"
			}
		}
		return true, ""
	})
	for name, want := range map[string]string{"hog": "OOMKilled", "selfkill": "Error"} {
		last := containerStatus(t, got, name).LastTerminationState.Terminated
		if last.Reason != want || last.ExitCode != 137 {
			t.Errorf("%s: last terminated reason %q exit %d, want %q 137", name, last.Reason, last.ExitCode, want)
		}
	}
	if s := containerStatus(t, got, "bystander"); s.RestartCount != 0 || s.State.Running == nil {
		t.Errorf("bystander: restarts %d state %+v, want running, never restarted", s.RestartCount, s.State)
	}
}

// qosParentShares reads the CPU weight of a QoS parent cgroup as shares:
// cpu.shares on v1; on v2 cpu.weight, compared against runc's mapping.
func qosParentShares(t *testing.T, driver, cgroup string) string {
	t.Helper()
	if driver == cgroups.DriverV2 {
		return v2File(t, cgroup, "cpu.weight")
	}
	return v1File(t, "cpu", cgroup, "cpu.shares")
}

// sharesAs is the value qosParentShares reads for shares on driver.
func sharesAs(driver string, shares uint64) string {
	if driver == cgroups.DriverV2 {
		return strconv.FormatUint(cgroups.SharesToWeight(shares), 10)
	}
	return strconv.FormatUint(shares, 10)
}

// TestResources_QoSParents: each pod's cgroup sits under its QoS class's,
// as the kubelet arranges them (Guaranteed under the root's cgroup,
// burstable/ and besteffort/ below it); besteffort has the minimum CPU
// weight and burstable the sum of its pods' requests, lowered when one
// goes; status.qosClass names each class; the last pod of a class takes
// its parent with it, and nothing is left behind.
func TestResources_QoSParents(t *testing.T) {
	driver := limitsDriver(t)
	e := newEnv(t, withDriver(driver))
	before := e.snapshot()
	root := "peapod-" + e.rootID()
	pods := []struct {
		name  string
		c     corev1.Container
		class corev1.PodQOSClass
		dir   string
	}{
		{"guaranteed", withResources(ctr("app", "sleep", "1000"), "", "200m", "32Mi"), corev1.PodQOSGuaranteed, root},
		{"burst-a", withResources(ctr("app", "sleep", "1000"), "250m", "", ""), corev1.PodQOSBurstable, root + "/burstable"},
		{"burst-b", withResources(ctr("app", "sleep", "1000"), "500m", "1", ""), corev1.PodQOSBurstable, root + "/burstable"},
		{"best", ctr("app", "sleep", "1000"), corev1.PodQOSBestEffort, root + "/besteffort"},
	}
	for _, p := range pods {
		e.runPod(podJSON(newPod(p.name, p.c)))
	}
	for _, p := range pods {
		got := e.get(p.name)
		if got.Status.QOSClass != p.class {
			t.Errorf("pod %s: status.qosClass = %q, want %s", p.name, got.Status.QOSClass, p.class)
		}
		podCgroup := path.Dir(strings.TrimPrefix(e.inspect(p.name).container(t, "app").Cgroup, "/"))
		if want := p.dir + "/" + string(got.UID); podCgroup != want {
			t.Errorf("pod %s (%s): cgroup %q, want %q", p.name, p.class, podCgroup, want)
		}
	}
	if got, want := qosParentShares(t, driver, root+"/besteffort"), sharesAs(driver, 2); got != want {
		t.Errorf("besteffort CPU weight %s, want %s (the minimum)", got, want)
	}
	// 250m + 500m of requests: 768 shares, as the kubelet's burstable.
	if got, want := qosParentShares(t, driver, root+"/burstable"), sharesAs(driver, 768); got != want {
		t.Errorf("burstable CPU weight %s with 250m and 500m requested, want %s", got, want)
	}
	e.mustRun("rm", "-f", "burst-b")
	if got, want := qosParentShares(t, driver, root+"/burstable"), sharesAs(driver, 256); got != want {
		t.Errorf("burstable CPU weight %s once the 500m pod is gone, want %s", got, want)
	}
	e.mustRun("rm", "-f", "burst-a", "best")
	for _, class := range []string{"burstable", "besteffort"} {
		dir := filepath.Join(cgroups.DefaultMountRoot, root, class)
		if driver == cgroups.DriverV1 {
			dir = filepath.Join(cgroups.DefaultMountRoot, "cpu", root, class)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s outlives the last pod of its class (stat: %v)", dir, err)
		}
	}
	e.mustRun("rm", "-f", "guaranteed")
	e.assertNoLeak(before)
}
