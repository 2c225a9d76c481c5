package containerinit

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/testutil"
	"github.com/peapod/peapod/namespaces"
	"github.com/peapod/peapod/runtime/spec"
	"github.com/peapod/peapod/seccomp"
)

// denyMkdirFilter compiles a profile letting everything through but
// mkdir, which fails with EACCES.
func denyMkdirFilter(tb testing.TB) []byte {
	tb.Helper()
	eacces := uint(13)
	prog, err := seccomp.Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: &eacces}}})
	if err != nil {
		tb.Fatal(err)
	}
	return prog
}

// runtimeDefaultFilter is the default profile for the test container's
// capabilities.
func runtimeDefaultFilter(tb testing.TB, c *specs.Process) []byte {
	tb.Helper()
	p, err := seccomp.RuntimeDefault(c)
	if err != nil {
		tb.Fatal(err)
	}
	prog, err := seccomp.Compile(p)
	if err != nil {
		tb.Fatal(err)
	}
	return prog
}

// TestSeccompLoadedBeforeExec: the init stage loads the container's filter
// for the workload, early without no_new_privs (while it still holds
// CAP_SYS_ADMIN, which the workload's 14 default capabilities lack: loaded
// after the drop, seccomp(2) would fail with EACCES) and last with
// no_new_privs.
func TestSeccompLoadedBeforeExec(t *testing.T) {
	testutil.RequireRoot(t)
	lower := makeBusyboxLower(t, t.TempDir())
	for _, tt := range []struct {
		name string
		nnp  bool
	}{{"without no_new_privs", false}, {"no_new_privs", true}} {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestContainer(t, lower)
			c.OCI.Process.NoNewPrivileges = tt.nnp
			c.Seccomp = denyMkdirFilter(t)
			out := runScript(t, c, "grep Seccomp: /proc/self/status; mkdir /tmp/x 2>&1; touch /tmp/f && echo touched")
			for _, want := range []string{"Seccomp:\t2", "Permission denied", "touched"} {
				if !strings.Contains(out, want) {
					t.Errorf("output %q lacks %q", out, want)
				}
			}
		})
	}
}

// TestSeccompInExec: an exec runs under the filter it is given.
func TestSeccompInExec(t *testing.T) {
	testutil.RequireRoot(t)
	target := startExecTarget(t)
	proc := specs.Process{Args: []string{"sh", "-c", "mkdir /tmp/x-$$ 2>&1; grep Seccomp: /proc/self/status"}, Env: []string{"PATH=/bin"}, Cwd: "/"}
	res := execFiltered(t, target, nil, proc, denyMkdirFilter(t))
	if !strings.Contains(res.stdout, "Permission denied") || !strings.Contains(res.stdout, "Seccomp:\t2") {
		t.Errorf("exec under the filter printed %q (stderr %q)", res.stdout, res.stderr)
	}
	// A malformed filter never reaches the helper (TestExecRefusesBadConfig
	// feeds one to the constructor directly).
	cmd := namespaces.ExecCommand(namespaces.ExecOptions{Helper: "/nonexistent", Target: target.pid, Process: proc, Seccomp: []byte{1, 2, 3}})
	if err := cmd.Start(); err == nil || !strings.Contains(err.Error(), "invalid seccomp filter") {
		t.Errorf("a malformed filter: Start = %v, want an invalid filter error", err)
	}
}

// BenchmarkStartContainerSeccomp is BenchmarkStartContainer with the
// default profile loaded: the filter's cost on a container start.
func BenchmarkStartContainerSeccomp(b *testing.B) {
	testutil.RequireRoot(b)
	lower := makeBusyboxLower(b, b.TempDir())
	c := newTestContainer(b, lower, "true")
	c.Seccomp = runtimeDefaultFilter(b, c.OCI.Process)
	helper := testHelper(b)
	pod := &spec.Pod{Name: "bench"}
	defer reportChildCPU(b)()
	for b.Loop() {
		startAndWait(b, helper, pod, c)
	}
}

// BenchmarkExecSeccomp is BenchmarkExec under the default profile.
func BenchmarkExecSeccomp(b *testing.B) {
	testutil.RequireRoot(b)
	target := startExecTarget(b)
	proc := specs.Process{Args: []string{"/bin/true"}, Cwd: "/", Capabilities: &specs.LinuxCapabilities{}}
	filter := runtimeDefaultFilter(b, &proc)
	defer reportChildCPU(b)()
	for b.Loop() {
		if res := execFiltered(b, target, []string{target.cgroupProcs}, proc, filter); res.code != 0 {
			b.Fatalf("exec exited %d: %s", res.code, res.stderr)
		}
	}
}

// BenchmarkSyscallsSeccomp: what the filter costs a workload, 200000
// one-byte reads and writes through dd, with and without the default
// profile.
func BenchmarkSyscallsSeccomp(b *testing.B) {
	testutil.RequireRoot(b)
	lower := makeBusyboxLower(b, b.TempDir())
	helper := testHelper(b)
	pod := &spec.Pod{Name: "bench"}
	for _, filtered := range []bool{false, true} {
		b.Run(map[bool]string{false: "unconfined", true: "RuntimeDefault"}[filtered], func(b *testing.B) {
			c := newTestContainer(b, lower, "busybox", "dd", "if=/dev/zero", "of=/dev/null", "bs=1", "count=200000")
			if filtered {
				c.Seccomp = runtimeDefaultFilter(b, c.OCI.Process)
			}
			defer reportChildCPU(b)()
			for b.Loop() {
				startAndWait(b, helper, pod, c)
			}
		})
	}
}

// reportChildCPU, deferred at a benchmark's start, reports the CPU time
// (user + system) of the processes it waited for, per operation: on a
// loaded machine a steadier figure than the wall clock.
func reportChildCPU(b *testing.B) func() {
	start := childCPU(b)
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(childCPU(b)-start)/float64(b.N), "child-cpu-ns/op")
		}
	}
}

// childCPU is the CPU time of this process's waited-for descendants.
func childCPU(b *testing.B) int64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_CHILDREN, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
