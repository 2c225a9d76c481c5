package e2e

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/peapod/peapod/internal/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Churn sizes. CI runs the defaults; a longer soak overrides them, e.g.
//
//	PEAPOD_CHURN_CYCLES=10000 PEAPOD_CHURN_PROBES=100000 \
//	  go test -count=1 -p 1 -timeout 2h -run TestChurn -v ./tests/e2e/
const (
	// churnCyclesEnv is how many pods are created and removed (default 1000).
	churnCyclesEnv = "PEAPOD_CHURN_CYCLES"
	// churnProbesEnv is how many probe runs the long-lived supervisor
	// makes between its two measurements (default 10000).
	churnProbesEnv = "PEAPOD_CHURN_PROBES"
)

const (
	// churnParallel is how many create/delete cycles run at a time.
	churnParallel = 10
	// soakContainers is how many probed containers the long-lived pod
	// has: each runs a readiness and a liveness probe every second (the
	// API's shortest period), so 10,000 probe runs take about 10000 /
	// (2 × soakContainers) seconds.
	soakContainers = 50
	// soakExecEvery puts an exec liveness probe (a process per probe: pipes,
	// a fork, a reap) on every soakExecEvery-th container, an HTTP one on
	// the others.
	soakExecEvery = 10
	// soakWarmupProbes are run before the first measurement, so the
	// supervisor's Go heap, its timers and the kernel's socket caches are
	// at their steady state.
	soakWarmupProbes = 1000
	// soakMemSlack bounds the supervisor's Pss growth over the soak. A
	// running supervisor's Go heap is a few MiB and the GC lets it grow to
	// twice its live size before collecting (GOGC=100), and the runtime
	// returns freed pages to the kernel lazily (its scavenger), so between
	// two samples Pss moves by up to about 2 MiB with nothing leaked. A
	// leak of 512 bytes per probe is 5 MiB over 10,000 probes: above
	// 4 MiB, and detected.
	soakMemSlack = 4 << 20
	// soakStall fails the soak when the probe count did not move for this
	// long: the supervisor stopped probing.
	soakStall = 30 * time.Second
)

// TestChurn is the standing churn test: a long-lived pod probed by 100
// workers (50 containers: TCP readiness, HTTP or exec liveness, each once a
// second), while churnCyclesEnv pods are created and removed, 10 at a
// time, with `gc` and `ps -A` running in a loop beside them. Every command
// succeeds, `ps` always lists the long-lived pod Running and never a name
// twice, `gc` collects nothing (nothing crashed: every pod belongs to a
// live run, supervisor or rm), and afterwards the machine is as before:
// the leak snapshot finds nothing, and the root's state files and IP
// leases are back to where they started. The long-lived supervisor, after
// churnProbesEnv probe runs, holds no more fds than after its warm-up, and
// its Pss grew by less than soakMemSlack.
func TestChurn(t *testing.T) {
	cycles := envCount(t, churnCyclesEnv, 1000)
	probeRuns := envCount(t, churnProbesEnv, 10000)
	e := newEnv(t)
	before := e.snapshot()

	start := time.Now()
	e.runPod(podJSON(soakPod()))
	soak := e.inspect("soak")
	t.Logf("soak pod: %d containers up in %v, supervisor pid %d", len(soak.Containers), time.Since(start).Round(time.Millisecond), soak.SupervisorPID)
	// The snapshot sees leases: the soak pod's one is there.
	if leases := testutil.TakeSnapshot(t, e.roots()).Sections[testutil.SectionLeases]; len(leases) != 1 {
		t.Fatalf("leases with the soak pod running: %q, want its one", leases)
	}
	e.waitProbes("soak", soakWarmupProbes)
	warm := sampleProcess(t, soak.SupervisorPID)
	warmProbes := e.probeRuns("soak")
	t.Logf("after warm-up (%d probe runs): %s", warmProbes, warm)

	start = time.Now()
	e.churn(cycles, soak.SupervisorPID)
	took := time.Since(start)
	t.Logf("churn: %d create/delete cycles, %d at a time, in %v (%.1f cycles/s)",
		cycles, churnParallel, took.Round(time.Millisecond), float64(cycles)/took.Seconds())
	if rows := e.ps(); len(rows) != 1 || rows["soak"].status != "Running" {
		t.Errorf("ps after the churn: %v, want only soak Running", rows)
	}

	e.waitProbes("soak", warmProbes+probeRuns)
	end := sampleProcess(t, soak.SupervisorPID)
	endProbes := e.probeRuns("soak")
	t.Logf("after %d more probe runs: %s", endProbes-warmProbes, end)
	if end.fds > warm.fds {
		t.Errorf("supervisor %d: %d fds after %d probe runs, %d after the warm-up; new ones: %v",
			soak.SupervisorPID, end.fds, endProbes-warmProbes, warm.fds, onlyIn(end.kept, warm.kept))
	}
	if grew := end.pss - warm.pss; grew > soakMemSlack {
		t.Errorf("supervisor %d: Pss grew by %d KiB over %d probe runs (%d → %d KiB), more than the %d KiB the GC's swing explains",
			soak.SupervisorPID, grew>>10, endProbes-warmProbes, warm.pss>>10, end.pss>>10, soakMemSlack>>10)
	}
	if pid := e.inspect("soak").SupervisorPID; pid != soak.SupervisorPID {
		t.Errorf("soak pod's supervisor changed from %d to %d", soak.SupervisorPID, pid)
	}
	p := e.get("soak")
	for _, cs := range p.Status.ContainerStatuses {
		if cs.RestartCount != 0 {
			t.Logf("soak container %s restarted %d times (a liveness probe failed under load)", cs.Name, cs.RestartCount)
		}
	}

	e.mustRun("rm", "-f", "soak")
	waitGone(t, soak.SupervisorPID)
	for _, c := range soak.Containers {
		waitGone(t, c.PID)
	}
	after := testutil.TakeSnapshot(t, e.roots())
	for _, s := range []string{testutil.SectionFiles, testutil.SectionLeases} {
		t.Logf("%s: %d before, %d after", s, len(before.Sections[s]), len(after.Sections[s]))
	}
	e.assertNoLeak(before)
}

// envCount reads a positive count from the environment, or def.
func envCount(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive count", name, s)
	}
	return n
}

// soakPod is the long-lived pod: soakContainers containers, each serving
// HTTP on its own port and probed there. One server for all would not do:
// the network probes of a pod come due at the same instant (their period's
// grid), and busybox httpd's small listen backlog would drop most of 100
// simultaneous SYNs, leaving the probes to the 1 s SYN retransmit.
func soakPod() *corev1.Pod {
	var ctrs []corev1.Container
	for i := range soakContainers {
		port := 8000 + i
		c := shell(fmt.Sprintf("p%02d", i), fmt.Sprintf("mkdir -p /w && echo ok > /w/index.html && exec httpd -f -p %d -h /w", port))
		// A threshold no load reaches: a probe that times out on a busy
		// machine must not restart the container in the middle of the soak.
		c.ReadinessProbe = &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(port)}},
			PeriodSeconds: 1, FailureThreshold: 1000,
		}
		live := corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/index.html", Port: intstr.FromInt(port)}}
		if i%soakExecEvery == 0 {
			live = corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}
		}
		c.LivenessProbe = &corev1.Probe{ProbeHandler: live, PeriodSeconds: 1, FailureThreshold: 1000}
		ctrs = append(ctrs, c)
	}
	return newPod("soak", ctrs...)
}

// probeRuns sums prober_probe_total over every series of `peapod metrics`.
func (e *env) probeRuns(pod string) int {
	e.t.Helper()
	total := 0
	for _, line := range strings.Split(e.mustRun("metrics", pod), "\n") {
		if !strings.HasPrefix(line, "prober_probe_total{") {
			continue
		}
		f := strings.Fields(line)
		n, err := strconv.Atoi(f[len(f)-1])
		if err != nil {
			e.t.Fatalf("metrics line %q: %v", line, err)
		}
		total += n
	}
	return total
}

// waitProbes waits until the pod's probes ran at least n times in all.
// Probes run once a second on their own clock; nothing signals a count, so
// the metrics are read once a second. The soak fails only when the count
// stalls: how long it takes is the machine's business.
func (e *env) waitProbes(pod string, n int) {
	e.t.Helper()
	last, lastMoved := e.probeRuns(pod), time.Now()
	for last < n {
		time.Sleep(time.Second)
		got := e.probeRuns(pod)
		if got > last {
			last, lastMoved = got, time.Now()
		}
		if time.Since(lastMoved) > soakStall {
			e.t.Fatalf("pod %s: probes stalled at %d runs (waiting for %d)", pod, last, n)
		}
	}
}

// churn runs n create/delete cycles, churnParallel at a time, with `gc`
// and `ps -A` in a loop beside them until the last cycle is done. soakPID
// is the supervisor of the pod that must survive it all.
func (e *env) churn(n, soakPID int) {
	e.t.Helper()
	var (
		done   atomic.Bool
		next   atomic.Int64
		errMu  sync.Mutex
		errs   []string
		loops  sync.WaitGroup
		cycles sync.WaitGroup
	)
	fail := func(format string, args ...any) {
		errMu.Lock()
		defer errMu.Unlock()
		errs = append(errs, fmt.Sprintf(format, args...))
		if len(errs) >= 10 {
			done.Store(true) // enough to go on; stop early
		}
	}
	run := func(stdin string, args ...string) (string, bool) {
		out, stderr, code, err := e.runNoFail(stdin, args...)
		if err == nil && code != 0 {
			err = fmt.Errorf("exit code %d\nstdout: %s\nstderr: %s", code, out, stderr)
		}
		if err != nil {
			fail("peapod %s: %v", strings.Join(args, " "), err)
			return "", false
		}
		return out, true
	}
	var gcRuns, psRuns atomic.Int64
	loops.Add(2)
	go func() {
		defer loops.Done()
		for !done.Load() {
			out, _ := run("", "gc")
			gcRuns.Add(1)
			// Nothing crashed: every pod belongs to a live run, supervisor
			// or rm, and none of it is gc's to take.
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, "removed ") {
					fail("gc collected from a live pod: %s", l)
				}
			}
		}
	}()
	go func() {
		defer loops.Done()
		for !done.Load() {
			out, ok := run("", "ps", "-A")
			psRuns.Add(1)
			if ok {
				checkPs(out, fail)
			}
		}
	}()
	for range churnParallel {
		cycles.Add(1)
		go func() {
			defer cycles.Done()
			for !done.Load() {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				name := fmt.Sprintf("churn-%04d", i)
				if _, ok := run(podJSON(newPod(name, ctr("c", "sleep", "1000"))), "run", "-d", "-f", "-"); ok {
					run("", "rm", "-f", name)
				}
			}
		}()
	}
	cycles.Wait()
	done.Store(true)
	loops.Wait()
	e.t.Logf("beside the churn: %d gc and %d ps runs", gcRuns.Load(), psRuns.Load())
	for _, err := range errs {
		e.t.Error(err)
	}
	if len(errs) > 0 {
		e.t.FailNow()
	}
	if err := processAlive(soakPID); err != nil {
		e.t.Fatalf("the soak pod's supervisor did not survive the churn: %v", err)
	}
}

// checkPs reports a `ps -A` output that does not list the soak pod Running
// or lists a name twice.
func checkPs(out string, fail func(string, ...any)) {
	seen := map[string]bool{}
	soakRunning := false
	for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) < 4 {
			fail("ps line %q: too few columns", l)
			continue
		}
		key := f[0] + "/" + f[1]
		if seen[key] {
			fail("ps lists %s twice:\n%s", key, out)
		}
		seen[key] = true
		if f[1] == "soak" && f[3] == "Running" {
			soakRunning = true
		}
	}
	if !soakRunning {
		fail("ps does not list soak Running:\n%s", out)
	}
}

// processAlive says why pid is not a live process.
func processAlive(pid int) error {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return err
	}
	// The state follows the command, which is in parentheses.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i > 0 && i+2 < len(s) && s[i+2] == 'Z' {
		return fmt.Errorf("process %d is a zombie", pid)
	}
	return nil
}

// procSample is a process's fds and memory at one moment.
type procSample struct {
	// fds counts the fds open, with the same target, through every read of
	// the sample; kept lists their targets.
	fds  int
	kept []string
	// most is the most fds one read saw.
	most int
	// rss and pss are from smaps_rollup, in bytes, at the last read.
	rss, pss int
}

func (s procSample) String() string {
	return fmt.Sprintf("%d fds held throughout (up to %d at once), Rss %d KiB, Pss %d KiB", s.fds, s.most, s.rss>>10, s.pss>>10)
}

// sampleProcess reads pid's fds eleven times over 2.5 s and keeps those
// open throughout with one target. A probe in flight holds a socket or
// pipes for at most its 1 s timeout, and a new one gets a new inode; a
// leaked fd stays, pointing at the same thing.
func sampleProcess(t *testing.T, pid int) procSample {
	t.Helper()
	var s procSample
	var held map[string]string // fd number → target
	for i := range 11 {
		if i > 0 {
			time.Sleep(250 * time.Millisecond)
		}
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatalf("failed to list the fds of %d: %v", pid, err)
		}
		s.most = max(s.most, len(ents))
		now := map[string]string{}
		for _, ent := range ents {
			if target, err := os.Readlink(dir + "/" + ent.Name()); err == nil {
				now[ent.Name()] = target
			}
		}
		if held == nil {
			held = now
			continue
		}
		for fd, target := range held {
			if now[fd] != target {
				delete(held, fd)
			}
		}
	}
	for _, target := range held {
		s.kept = append(s.kept, target)
	}
	slices.Sort(s.kept)
	s.fds = len(s.kept)
	rollup := readHost(t, fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	s.rss = smapsKiB(t, rollup, "Rss") << 10
	s.pss = smapsKiB(t, rollup, "Pss") << 10
	return s
}

// smapsKiB returns a "Key:   N kB" field of smaps_rollup.
func smapsKiB(t *testing.T, rollup, key string) int {
	t.Helper()
	for _, line := range strings.Split(rollup, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == key+":" && f[2] == "kB" {
			n, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatalf("smaps_rollup line %q: %v", line, err)
			}
			return n
		}
	}
	t.Fatalf("no %s in smaps_rollup:\n%s", key, rollup)
	return 0
}

// onlyIn returns the entries of a that b lacks (a multiset difference).
func onlyIn(a, b []string) []string {
	left := map[string]int{}
	for _, x := range b {
		left[x]++
	}
	var out []string
	for _, x := range a {
		if left[x] > 0 {
			left[x]--
			continue
		}
		out = append(out, x)
	}
	return out
}
