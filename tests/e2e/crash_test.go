package e2e

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/peapod/peapod/internal/testutil"
	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/state"
)

// psList returns the rows of `peapod ps -A` in order, repeats kept.
func (e *env) psList() []psRow {
	e.t.Helper()
	out := e.mustRun("ps", "-A")
	var rows []psRow
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := psFields(line)
		if len(f) != 7 {
			e.t.Fatalf("ps line %q: want 7 columns, in\n%s", line, out)
		}
		rows = append(rows, psRow{f[0], f[1], f[2], f[3], f[4], f[5], f[6]})
	}
	return rows
}

// psNamed returns the ps rows of the pods called name.
func (e *env) psNamed(name string) []psRow {
	e.t.Helper()
	var out []psRow
	for _, r := range e.psList() {
		if r.name == name {
			out = append(out, r)
		}
	}
	return out
}

// TestRmRacingRun: `rm -f NAME` issued 0–40 ms into `run -d` of the same
// pod either finds nothing (and the run's pod stays, whole) or removes the
// whole pod (run's or none); there is never more than one pod of a name,
// and rm -f plus gc leave nothing behind. Before runs and removals of one
// name were serialised, rm removed a half-made pod that run then finished:
// a ghost that neither rm (not found) nor gc (nothing to collect) removed.
func TestRmRacingRun(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	manifest := podJSON(newPod("race", ctr("c", "sleep", "1000")))
	const rounds = 15
	for i := 0; i < rounds; i++ {
		type result struct {
			stdout, stderr string
			code           int
			err            error
		}
		ran := make(chan result, 1)
		go func() {
			var r result
			r.stdout, r.stderr, r.code, r.err = e.runNoFail(manifest, "run", "-d", "-f", "-")
			ran <- r
		}()
		// The race is the point: rm lands anywhere in run's creation.
		time.Sleep(time.Duration(rand.IntN(41)) * time.Millisecond)
		rmOut, rmErr, rmCode := e.run("", "rm", "-f", "race")
		r := <-ran
		if r.err != nil {
			t.Fatal(r.err)
		}
		pods := e.psNamed("race")
		switch {
		case len(pods) > 1:
			t.Fatalf("round %d: %d pods named race: %+v\nrun: %s%s\nrm: %s%s", i, len(pods), pods, r.stdout, r.stderr, rmOut, rmErr)
		case rmCode == 0 && len(pods) != 0:
			t.Fatalf("round %d: rm -f said %q, yet ps shows %+v (run: exit %d %s)", i, rmOut, pods, r.code, r.stderr)
		case rmCode != 0 && !strings.Contains(rmErr, "not found"):
			t.Fatalf("round %d: rm -f: exit %d: %s", i, rmCode, rmErr)
		case rmCode != 0 && (r.code != 0 || len(pods) != 1 || pods[0].status != "Running"):
			t.Fatalf("round %d: rm -f found nothing, so run's pod must be whole: run exit %d (%s), ps %+v", i, r.code, r.stderr, pods)
		}
		if len(pods) == 1 {
			e.mustRun("rm", "-f", "race")
		}
		if out := e.mustRun("gc"); strings.TrimSpace(out) != "nothing to collect" {
			t.Fatalf("round %d: gc after rm -f collected:\n%s", i, out)
		}
	}
	e.assertNoLeak(before)
}

// TestUnreadableRecord: garbage in a running pod's pod.json hides nothing
// and breaks nothing: ps lists the pod as RecordUnreadable, gc leaves its
// resources alone and says why (its container keeps running), image rm
// refuses the images it may use, rm refuses without -f, and rm -f removes
// it from what the host still shows.
func TestUnreadableRecord(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	e.runPod(podJSON(newPod("garbled", ctr("c", "sleep", "1000"))))
	v := e.inspect("garbled")
	main := v.container(t, "c").PID
	record := e.dirs().RecordPath(v.UID)
	if err := os.WriteFile(record, []byte("{\x00garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if pods := e.psNamed("garbled"); len(pods) != 1 || pods[0].status != "RecordUnreadable" {
		t.Errorf("ps shows %+v, want one pod garbled, RecordUnreadable", pods)
	}
	out := e.mustRun("gc")
	if !strings.Contains(out, "left pod default/garbled alone") || !strings.Contains(out, "unreadable") {
		t.Errorf("gc did not say it left the pod alone:\n%s", out)
	}
	if err := syscall.Kill(main, 0); err != nil {
		t.Errorf("gc killed the container of a pod with an unreadable record: %v", err)
	}
	if _, err := os.Stat(v.Namespaces["network"].Path); err != nil {
		t.Errorf("gc removed the netns pin of a pod with an unreadable record: %v", err)
	}
	if _, stderr, code := e.run("", "image", "rm", "busybox:latest"); code == 0 || !strings.Contains(stderr, "record unreadable") {
		t.Errorf("image rm while a pod with an unreadable record may use it: exit %d, stderr %q; want a refusal naming it", code, stderr)
	}
	if _, stderr, code := e.run("", "rm", "garbled"); code == 0 || !strings.Contains(stderr, "rm -f") {
		t.Errorf("rm without -f of an unreadable record: exit %d, stderr %q; want a refusal pointing at rm -f", code, stderr)
	}
	e.mustRun("rm", "-f", "garbled")
	waitGone(t, main)
	checkGone(t, e, "garbled")
	if out := e.mustRun("gc"); strings.TrimSpace(out) != "nothing to collect" {
		t.Errorf("gc after rm -f collected:\n%s", out)
	}
	e.assertNoLeak(before)
}

// TestUnreadableStatus: a truncated status.json makes the pod
// StatusUnreadable (not Pending), exec says why it refuses, gc leaves the
// pod alone, and rm -f removes it.
func TestUnreadableStatus(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	e.runPod(podJSON(newPod("truncated", ctr("c", "sleep", "1000"))))
	v := e.inspect("truncated")
	status := layout.Run(e.dirs().RunDir(v.UID)).Status()
	b, err := os.ReadFile(status)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(status, b[:len(b)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	if pods := e.psNamed("truncated"); len(pods) != 1 || pods[0].status != "StatusUnreadable" {
		t.Errorf("ps shows %+v, want one pod truncated, StatusUnreadable", pods)
	}
	if p := e.get("truncated"); !strings.Contains(p.Status.Message, "status.json") || !strings.Contains(p.Status.Message, "is running") {
		t.Errorf("get: status message %q, want the file and that the supervisor runs", p.Status.Message)
	}
	if _, stderr, code := e.exec("truncated", "c", "true"); code == 0 || !strings.Contains(stderr, "StatusUnreadable") {
		t.Errorf("exec into a pod with an unreadable status: exit %d, stderr %q; want a refusal saying why", code, stderr)
	}
	if out := e.mustRun("gc"); strings.TrimSpace(out) != "nothing to collect" {
		t.Errorf("gc collected from a live pod whose status is unreadable:\n%s", out)
	}
	if err := syscall.Kill(v.container(t, "c").PID, 0); err != nil {
		t.Errorf("the container died: %v", err)
	}
	e.mustRun("rm", "-f", "truncated")
	checkGone(t, e, "truncated")
	e.assertNoLeak(before)
}

// faultStep is one step of run or rm, as PEAPOD_TRACE names it.
type faultStep struct {
	// op is run or rm; k its 1-based position; name the trace's name.
	op   string
	k    int
	name string
	// last is set on the operation's last step.
	last bool
}

// traceSteps parses the steps of op from PEAPOD_TRACE output.
func traceSteps(t *testing.T, op, stderr string) []faultStep {
	t.Helper()
	var steps []faultStep
	for _, line := range strings.Split(stderr, "\n") {
		rest, ok := strings.CutPrefix(line, "trace: "+op+" ")
		if !ok {
			continue
		}
		_, rest, _ = strings.Cut(rest, ": ")
		f := strings.Fields(rest)
		if len(f) < 3 {
			t.Fatalf("malformed trace line %q", line)
		}
		name := strings.Join(f[:len(f)-2], " ")
		if name != "total" {
			steps = append(steps, faultStep{op: op, k: len(steps) + 1, name: name})
		}
	}
	if len(steps) < 3 {
		t.Fatalf("only %d %s steps traced:\n%s", len(steps), op, stderr)
	}
	steps[len(steps)-1].last = true
	return steps
}

// TestFaultAtEveryStep makes each step of run and rm, in turn, fail or
// SIGKILL the CLI right after it (a faultinject build, PEAPOD_FAULT), the
// steps being those PEAPOD_TRACE lists, so a step added later is covered at
// once. After each fault ps is honest — the pod is absent, Running and
// whole, or says its run or rm was lost — and then either the pod is whole
// (it runs an exec; rm -f removes it) or ONE gc removes everything of it
// and a second finds nothing; the leak snapshot must match. A third mode
// stops the CLI (SIGSTOP) after the step: ps must then say Creating or
// Terminating, gc must leave the pod to its live creator or remover, and an
// rm -f of a pod being created waits for it and removes it whole.
func TestFaultAtEveryStep(t *testing.T) {
	e := newEnv(t, withBinary(faultBin))
	before := e.snapshot()
	manifest := func(name string) string { return podJSON(newPod(name, ctr("c", "sleep", "1000"))) }
	_, stderr, code := e.withEnv("PEAPOD_TRACE=1").run(manifest("steps"), "run", "-d", "-f", "-")
	if code != 0 {
		t.Fatalf("run: %s", stderr)
	}
	steps := traceSteps(t, "run", stderr)
	_, stderr, code = e.withEnv("PEAPOD_TRACE=1").run("", "rm", "-f", "steps")
	if code != 0 {
		t.Fatalf("rm -f: %s", stderr)
	}
	steps = append(steps, traceSteps(t, "rm", stderr)...)
	for _, s := range steps {
		for _, mode := range []string{"error", "kill", "stop"} {
			t.Run(fmt.Sprintf("%s/%d-%s/%s", s.op, s.k, strings.ReplaceAll(s.name, " ", "-"), mode), func(t *testing.T) {
				e := e.on(t)
				name := fmt.Sprintf("f-%s-%d-%s", s.op, s.k, mode)
				fault := e.withEnv(fmt.Sprintf("PEAPOD_FAULT=%s:%d:%s", s.op, s.k, mode))
				if mode == "stop" {
					fault.checkWhileStopped(name, s, manifest(name))
					e.assertNoLeak(before)
					return
				}
				if s.op == "run" {
					_, stderr, code := fault.run(manifest(name), "run", "-d", "-f", "-")
					checkFaulted(t, s, mode, stderr, code)
				} else {
					e.runPod(manifest(name))
					_, stderr, code := fault.run("", "rm", "-f", name)
					checkFaulted(t, s, mode, stderr, code)
				}
				e.checkAfterFault(name, s, mode)
				e.assertNoLeak(before)
			})
		}
	}
}

// checkWhileStopped runs the operation of s stopped after step s.k (e
// carries PEAPOD_FAULT=...:stop) and checks ps and gc while it is stopped.
// A stopped run gets an rm -f, which must wait for it; then the operation
// resumes and must succeed, and the pod must be gone.
func (e *env) checkWhileStopped(name string, s faultStep, manifest string) {
	t := e.t
	t.Helper()
	args := []string{"run", "-d", "-f", "-"}
	if s.op == "rm" {
		e.runPodPlain(manifest)
		args = []string{"rm", "-f", name}
	}
	op := e.start(manifest, args...)
	defer op.Process.Kill()
	awaitStopped(t, op)
	// After run's last step the record says the pod is made.
	want := map[string]bool{"Creating": true, "Running": s.last}
	if s.op == "rm" {
		want = map[string]bool{"Terminating": true, "": s.last, "Running": s.k == 1}
	}
	pods := e.psNamed(name)
	status := ""
	if len(pods) == 1 {
		status = pods[0].status
	}
	if len(pods) > 1 || !want[status] {
		t.Errorf("%s stopped after step %d (%s): ps shows %+v", s.op, s.k, s.name, pods)
	}
	if out := e.mustRun("gc"); strings.TrimSpace(out) != "nothing to collect" {
		t.Errorf("gc collected while %s was stopped after step %d (%s):\n%s", s.op, s.k, s.name, out)
	}
	var rm *exec.Cmd
	if s.op == "run" {
		rm = e.start("", "rm", "-f", name)
		defer rm.Process.Kill()
		awaitBlockedFlock(t, rm)
	}
	if err := op.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := op.Wait(); err != nil {
		t.Errorf("%s resumed after step %d (%s): %v\n%s", s.op, s.k, s.name, err, op.Stderr)
	}
	if rm != nil {
		if err := rm.Wait(); err != nil {
			t.Errorf("rm -f of a pod being created: %v\n%s", err, rm.Stderr)
		}
	}
	if pods := e.psNamed(name); len(pods) != 0 {
		t.Errorf("after %s resumed (and rm -f): ps shows %+v", s.op, pods)
	}
}

// runPodPlain is runPod without the instance's extra environment.
func (e *env) runPodPlain(manifest string) {
	e.t.Helper()
	c := *e
	c.extraEnv = nil
	c.runPod(manifest)
}

// start starts peapod with stdin and args and returns it running; its
// stdout and stderr collect in cmd.Stdout and cmd.Stderr (*bytes.Buffer).
func (e *env) start(stdin string, args ...string) *exec.Cmd {
	e.t.Helper()
	cmd := exec.Command(e.bin, e.args(args...)...)
	cmd.Env = append(os.Environ(), e.extraEnv...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &bytes.Buffer{}, &bytes.Buffer{}
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("failed to start peapod %s: %v", strings.Join(args, " "), err)
	}
	return cmd
}

// awaitStopped waits until cmd is stopped (state T in /proc/PID/stat).
func awaitStopped(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	pid := cmd.Process.Pid
	deadline := time.Now().Add(cliTimeout)
	for {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatalf("pid %d: %v", pid, err)
		}
		_, rest, _ := strings.Cut(string(stat), ") ")
		switch {
		case strings.HasPrefix(rest, "T"):
			return
		case strings.HasPrefix(rest, "Z"):
			err := cmd.Wait()
			t.Fatalf("%s exited before it stopped: %v: %s", strings.Join(cmd.Args, " "), err, cmd.Stderr)
		case time.Now().After(deadline):
			t.Fatalf("pid %d did not stop within %v", pid, cliTimeout)
		}
		// The kernel offers a parent no event for a child's SIGSTOP without
		// wait(WUNTRACED), which would race os/exec's own wait.
		time.Sleep(5 * time.Millisecond)
	}
}

// awaitBlockedFlock waits until cmd is blocked on a flock ("->" in
// /proc/locks marks a waiting request).
func awaitBlockedFlock(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	pid := cmd.Process.Pid
	deadline := time.Now().Add(cliTimeout)
	for {
		b, err := os.ReadFile("/proc/locks")
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 5 && f[1] == "->" && f[2] == "FLOCK" && f[5] == fmt.Sprint(pid) {
				return
			}
		}
		if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err != nil || strings.Contains(string(stat), ") Z") {
			err := cmd.Wait()
			t.Fatalf("%s exited instead of waiting for the name: %v: %s", strings.Join(cmd.Args, " "), err, cmd.Stderr)
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d did not block on a flock within %v:\n%s", pid, cliTimeout, b)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkFaulted fails the test unless the fault happened: an error that
// names it, or death by SIGKILL (exit code -1 from os/exec).
func checkFaulted(t *testing.T, s faultStep, mode, stderr string, code int) {
	t.Helper()
	switch {
	case mode == "error" && (code != 1 || !strings.Contains(stderr, "injected fault after step")):
		t.Fatalf("%s with an error after step %d (%s): exit %d, stderr %q", s.op, s.k, s.name, code, stderr)
	case mode == "kill" && code != -1:
		t.Fatalf("%s killed after step %d (%s): exit %d, stderr %q", s.op, s.k, s.name, code, stderr)
	}
}

// checkAfterFault checks what ps says after a fault and brings the pod to
// nothing the way its state calls for.
func (e *env) checkAfterFault(name string, s faultStep, mode string) {
	t := e.t
	t.Helper()
	pods := e.psNamed(name)
	if len(pods) > 1 {
		t.Fatalf("%d pods named %s: %+v", len(pods), name, pods)
	}
	status := ""
	if len(pods) == 1 {
		status = pods[0].status
	}
	t.Logf("after the fault ps says %q", status)
	switch status {
	case "":
		// Rolled back, or removed before the fault: nothing may be left.
		if out := e.mustRun("gc"); strings.TrimSpace(out) != "nothing to collect" {
			t.Errorf("ps shows no pod %s, yet gc collected:\n%s", name, out)
		}
	case "Running":
		// Whole: it answers an exec, and rm -f removes it.
		if s.op == "run" && mode == "error" {
			t.Errorf("run failed after step %q, yet its pod is Running", s.name)
		}
		e.mustExec(name, "c", "true")
		e.mustRun("rm", "-f", name)
	case "CreatorLost", "RemoverLost", "RecordMissing":
		if s.op == "run" && mode == "error" {
			t.Errorf("run failed after step %q and did not roll back: %s", s.name, status)
		}
		out := e.mustRun("gc")
		if !strings.Contains(out, "default/"+name) {
			t.Errorf("gc did not name pod %s:\n%s", name, out)
		}
		if left := e.psNamed(name); len(left) != 0 {
			t.Errorf("after one gc ps still shows %+v", left)
		}
		if out := e.mustRun("gc"); strings.TrimSpace(out) != "nothing to collect" {
			t.Errorf("second gc collected:\n%s", out)
		}
	default:
		t.Errorf("after a %s after %s step %d (%s), ps says %s", mode, s.op, s.k, s.name, status)
		e.mustRun("rm", "-f", name)
	}
}

// TestFaultHookOnlyInFaultBuild: the fault hooks (and PEAPOD_FAULT,
// PEAPOD_SUPERVISOR_FAULT) exist only in the faultinject builds the tests
// use, never in the peapod and peapod-supervisor that provision.sh and
// BuildPeapod make.
func TestFaultHookOnlyInFaultBuild(t *testing.T) {
	testutil.RequireRoot(t)
	supervisor := filepath.Join(filepath.Dir(peapodBin), "peapod-supervisor")
	for _, tt := range []struct {
		bin   string
		env   []string
		fault bool
	}{
		{peapodBin, []string{"PEAPOD_FAULT", "PEAPOD_SUPERVISOR_FAULT"}, false},
		{faultBin, []string{"PEAPOD_FAULT", "PEAPOD_SUPERVISOR_FAULT"}, true},
		{supervisor, []string{"PEAPOD_SUPERVISOR_FAULT"}, false},
		{faultSupervisorBin(), []string{"PEAPOD_SUPERVISOR_FAULT"}, true},
	} {
		b, err := os.ReadFile(tt.bin)
		if err != nil {
			t.Fatal(err)
		}
		for _, env := range tt.env {
			if got := bytes.Contains(b, []byte(env)); got != tt.fault {
				t.Errorf("%s: holds %s: %v, want %v", tt.bin, env, got, tt.fault)
			}
		}
		out, err := exec.Command(goTool(), "version", "-m", tt.bin).Output()
		if err != nil {
			t.Fatalf("go version -m %s: %v", tt.bin, err)
		}
		if got := strings.Contains(string(out), "-tags=faultinject"); got != tt.fault {
			t.Errorf("%s: built with -tags=faultinject: %v, want %v\n%s", tt.bin, got, tt.fault, out)
		}
	}
}

// TestGCRacingRunEnd: gc decides on a pod's record as it is once gc holds
// the pod's name lock, not as it listed it. gc is stopped right after
// listing the pods, while a run is stopped right after reserving its name
// (record Creating); the run then finishes and exits (its lock free, its
// creator dead), and gc, resumed, must see a Created, running pod — not
// one whose "creation by pid N never finished" — and collect nothing.
func TestGCRacingRunEnd(t *testing.T) {
	e := newEnv(t, withBinary(faultBin))
	before := e.snapshot()
	const name = "gcrace"
	run := e.withEnv("PEAPOD_FAULT=run:1:stop").start(podJSON(newPod(name, ctr("c", "sleep", "1000"))), "run", "-d", "-f", "-")
	defer run.Process.Kill()
	awaitStopped(t, run)
	gc := e.withEnv("PEAPOD_FAULT=gc:1:stop").start("", "gc")
	defer gc.Process.Kill()
	awaitStopped(t, gc)
	if err := run.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := run.Wait(); err != nil {
		t.Fatalf("run resumed: %v\n%s", err, run.Stderr)
	}
	if err := gc.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := gc.Wait(); err != nil {
		t.Fatalf("gc resumed: %v\n%s", err, gc.Stderr)
	}
	if out := gc.Stdout.(*bytes.Buffer).String(); strings.TrimSpace(out) != "nothing to collect" {
		t.Errorf("gc that raced the end of run collected:\n%s", out)
	}
	if pods := e.psNamed(name); len(pods) != 1 || pods[0].status != "Running" {
		t.Errorf("after gc raced the end of run: ps shows %+v, want %s Running", pods, name)
	}
	e.mustRun("rm", "-f", name)
	e.assertNoLeak(before)
}

// TestGCRacingRmEnd: a name whose record is gone is debris only while gc
// holds its lock. gc is stopped right after listing the pods, while an rm
// is stopped right after removing the pod dir (the name still there,
// locked); the rm then finishes and removes the name, and gc, resumed,
// must collect nothing (not "name left without a record").
func TestGCRacingRmEnd(t *testing.T) {
	e := newEnv(t, withBinary(faultBin))
	before := e.snapshot()
	const name = "gcrmrace"
	e.runPod(podJSON(newPod(name, ctr("c", "sleep", "1000"))))
	uid := e.inspect(name).UID
	// Step 6 of rm is "pod dir" (PEAPOD_TRACE lists them); checked below.
	rm := e.withEnv("PEAPOD_FAULT=rm:6:stop").start("", "rm", "-f", name)
	defer rm.Process.Kill()
	awaitStopped(t, rm)
	if _, err := os.Stat(e.dirs().PodDir(uid)); !os.IsNotExist(err) {
		t.Fatalf("rm stopped after step 6: pod dir still there (%v): that step is no longer \"pod dir\"", err)
	}
	if _, err := os.Stat(e.dirs().NameIndex("default", name)); err != nil {
		t.Fatalf("rm stopped after step 6: the name is gone already: %v", err)
	}
	gc := e.withEnv("PEAPOD_FAULT=gc:1:stop").start("", "gc")
	defer gc.Process.Kill()
	awaitStopped(t, gc)
	if err := rm.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// rm finishes the pod, name included, then waits for the root's lock
	// (to unbind the helper), which the stopped gc holds: that wait is
	// the moment its removal is complete.
	awaitBlockedFlock(t, rm)
	if _, err := os.Stat(e.dirs().NameIndex("default", name)); !os.IsNotExist(err) {
		t.Fatalf("rm waits for the root's lock with the name still there (%v)", err)
	}
	if err := gc.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := gc.Wait(); err != nil {
		t.Fatalf("gc resumed: %v\n%s", err, gc.Stderr)
	}
	if err := rm.Wait(); err != nil {
		t.Fatalf("rm resumed: %v\n%s", err, rm.Stderr)
	}
	if out := gc.Stdout.(*bytes.Buffer).String(); strings.TrimSpace(out) != "nothing to collect" {
		t.Errorf("gc that raced the end of rm -f collected:\n%s", out)
	}
	e.assertNoLeak(before)
}

// TestRmReleasesAdoptLock: rm -f never waits for the root's lock while
// holding the pod's adopt.lock (gc waits for adopt.lock under the root's
// lock: the two deadlocked). With the root's lock held here, rm -f blocks
// on it at its end (unbinding the helper) holding only the pod's name lock.
func TestRmReleasesAdoptLock(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	const name = "lockorder"
	e.runPod(podJSON(newPod(name, ctr("c", "sleep", "1000"))))
	nameInode := inodeOf(t, e.dirs().NameIndex("default", name))
	rootInode := inodeOf(t, e.dirs().LockPath())
	unlock, err := state.Lock(e.dirs().LockPath())
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	rm := e.start("", "rm", "-f", name)
	defer rm.Process.Kill()
	awaitBlockedFlock(t, rm)
	held, waiting := flocksOf(t, rm.Process.Pid)
	if len(waiting) != 1 || waiting[0] != rootInode {
		t.Errorf("rm -f waits for flocks on inodes %v, want only the root's lock (inode %s)", waiting, rootInode)
	}
	if len(held) != 1 || held[0] != nameInode {
		t.Errorf("rm -f holds flocks on inodes %v while waiting for the root's lock, want only its name lock (inode %s)", held, nameInode)
	}
	unlock()
	if err := rm.Wait(); err != nil {
		t.Fatalf("rm -f: %v\n%s", err, rm.Stderr)
	}
	e.assertNoLeak(before)
}

// inodeOf returns the inode number of path, as /proc/locks shows it.
func inodeOf(t *testing.T, path string) string {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(st.Ino)
}

// flocksOf lists the inodes of the flocks pid holds and of those it waits
// for, from /proc/locks ("1: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE 0 EOF";
// a waiting request has "->" after the number).
func flocksOf(t *testing.T, pid int) (held, waiting []string) {
	t.Helper()
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		wait := len(f) > 1 && f[1] == "->"
		if wait {
			f = f[1:]
		}
		if len(f) < 6 || f[1] != "FLOCK" || f[4] != fmt.Sprint(pid) {
			continue
		}
		ino := f[5][strings.LastIndex(f[5], ":")+1:]
		if wait {
			waiting = append(waiting, ino)
		} else {
			held = append(held, ino)
		}
	}
	return held, waiting
}
