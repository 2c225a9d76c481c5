package containerinit

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/testutil"
	"github.com/peapod/peapod/namespaces"
	// The constructor that joins the namespaces; the test binary is the helper.
	_ "github.com/peapod/peapod/namespaces/nsenter"
)

// execNamespaces are the namespaces exec must join.
var execNamespaces = []string{"cgroup", "ipc", "uts", "net", "pid", "mnt"}

// execTarget is a running "container": sleep as PID 1 of fresh namespaces,
// with a tmpfs only its mount namespace sees, in a cgroup of its own.
type execTarget struct {
	// pid is the target's host pid.
	pid int
	// dir is where the private tmpfs is mounted (it holds marker and work/).
	dir string
	// cgroupProcs is the cgroup.procs file of the target's cgroup.
	cgroupProcs string
}

// cgroup2Mount returns where the cgroup v2 hierarchy is mounted.
func cgroup2Mount(tb testing.TB) string {
	tb.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		tb.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if _, after, ok := strings.Cut(line, " - "); ok && strings.HasPrefix(after, "cgroup2 ") {
			return strings.Fields(line)[4]
		}
	}
	tb.Fatal("no cgroup2 hierarchy mounted")
	return ""
}

// startExecTarget starts a target and kills it (by pid) and removes its
// cgroup and dir when the test ends.
func startExecTarget(tb testing.TB) *execTarget {
	tb.Helper()
	id := make([]byte, 4)
	rand.Read(id)
	cg := filepath.Join(cgroup2Mount(tb), "peapod-test-exec-"+hex.EncodeToString(id))
	if err := os.Mkdir(cg, 0o755); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.Remove(cg) })
	cgFd, err := unix.Open(cg, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer unix.Close(cgFd)
	// Not t.TempDir: its parent is 0700, and one test execs as a non-root user.
	dir, err := os.MkdirTemp("", "peapod-exec-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}

	cmd := exec.Command("/bin/busybox", "sh", "-c",
		`mount -t proc proc /proc && mount -t tmpfs tmpfs "$1" && touch "$1/marker" &&
		 mkdir -m 0777 "$1/work" && echo ready && exec sleep 60`, "sh", dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWNET,
		// Unshared after the clone into cg, so cg is the cgroup namespace's
		// root; CLONE_NEWNS as an unshare flag also makes / private first.
		Unshareflags: unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP,
		UseCgroupFD:  true,
		CgroupFD:     cgFd,
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		unix.Kill(cmd.Process.Pid, unix.SIGKILL)
		cmd.Wait()
	})
	if line, err := bufio.NewReader(stdout).ReadString('\n'); line != "ready\n" {
		tb.Fatalf("target did not start: %q, %v: %s", line, err, stderr.String())
	}
	return &execTarget{pid: cmd.Process.Pid, dir: dir, cgroupProcs: filepath.Join(cg, "cgroup.procs")}
}

// execResult is what an exec printed and how it ended.
type execResult struct {
	// stdout and stderr are the process's output.
	stdout, stderr string
	// code is the helper's exit code.
	code int
}

// execInTarget runs proc in target through the test binary as helper.
func execInTarget(tb testing.TB, target *execTarget, cgroups []string, proc specs.Process) execResult {
	tb.Helper()
	return execFiltered(tb, target, cgroups, proc, nil)
}

// execFiltered is execInTarget under a compiled seccomp filter.
func execFiltered(tb testing.TB, target *execTarget, cgroups []string, proc specs.Process, filter []byte) execResult {
	tb.Helper()
	helper, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := namespaces.ExecCommand(namespaces.ExecOptions{
		Helper: helper, Target: target.pid, Cgroups: cgroups, Process: proc, Seccomp: filter,
		Stdout: &stdout, Stderr: &stderr,
	})
	err = cmd.Run()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		tb.Fatalf("exec %q: %v", proc.Args, err)
	}
	return execResult{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

// statusScript prints what the exec tests check, one "key value" per line.
const statusScript = `
for n in cgroup ipc uts net pid mnt; do echo "ns.$n $(readlink /proc/self/ns/$n)"; done
echo "pid1 $(cat /proc/1/comm)"
test -e "$DIR/marker" && echo "marker yes"
echo "cwd $(pwd)"
echo "env $FOO"
sed -n 's/^\(Uid\|Gid\|Groups\|CapEff\|CapBnd\|CapInh\|NoNewPrivs\):\s*/\1 /p' /proc/self/status
sed -n 's/^0::/cgroup /p' /proc/self/cgroup
`

// parseStatus turns statusScript's output into a map.
func parseStatus(out string) map[string]string {
	m := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		k, v, _ := strings.Cut(line, " ")
		m[k] = strings.Join(strings.Fields(v), " ")
	}
	return m
}

// twoCaps is CAP_KILL (5) and CAP_NET_BIND_SERVICE (10).
var twoCaps = []string{"CAP_KILL", "CAP_NET_BIND_SERVICE"}

// statusProcess runs statusScript as user with twoCaps.
func statusProcess(target *execTarget, user specs.User, nnp bool) specs.Process {
	return specs.Process{
		Args: []string{"sh", "-c", statusScript},
		Env:  []string{"PATH=/usr/bin:/bin", "FOO=bar", "DIR=" + target.dir},
		Cwd:  filepath.Join(target.dir, "work"),
		User: user,
		Capabilities: &specs.LinuxCapabilities{
			Bounding: twoCaps, Effective: twoCaps, Permitted: twoCaps,
		},
		NoNewPrivileges: nnp,
	}
}

func TestExecJoinsEverything(t *testing.T) {
	testutil.RequireRoot(t)
	target := startExecTarget(t)
	res := execInTarget(t, target, []string{target.cgroupProcs}, statusProcess(target, specs.User{}, true))
	if res.code != 0 {
		t.Fatalf("exec exited %d: %s", res.code, res.stderr)
	}
	got := parseStatus(res.stdout)
	for _, n := range execNamespaces {
		want, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", target.pid, n))
		if err != nil {
			t.Fatal(err)
		}
		own, _ := os.Readlink("/proc/self/ns/" + n)
		if want == own {
			t.Fatalf("target shares our %s namespace: the test proves nothing", n)
		}
		if got["ns."+n] != want {
			t.Errorf("%s namespace = %q, want the target's %q", n, got["ns."+n], want)
		}
	}
	want := map[string]string{
		"pid1":       "sleep", // the target's PID 1, through its own /proc
		"marker":     "yes",   // the tmpfs only the target's mount namespace has
		"cwd":        filepath.Join(target.dir, "work"),
		"env":        "bar",
		"Uid":        "0 0 0 0",
		"Gid":        "0 0 0 0",
		"CapEff":     "0000000000000420",
		"CapBnd":     "0000000000000420",
		"CapInh":     "0000000000000000",
		"NoNewPrivs": "1",
		"cgroup":     "/", // the root of the target's cgroup namespace: its cgroup
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if _, err := os.Stat(filepath.Join(target.dir, "marker")); err == nil {
		t.Error("the target's private tmpfs leaked to the host")
	}
}

func TestExecAsUser(t *testing.T) {
	testutil.RequireRoot(t)
	target := startExecTarget(t)
	user := specs.User{UID: 1234, GID: 2345, AdditionalGids: []uint32{3456}}
	res := execInTarget(t, target, nil, statusProcess(target, user, false))
	if res.code != 0 {
		t.Fatalf("exec exited %d: %s", res.code, res.stderr)
	}
	got := parseStatus(res.stdout)
	want := map[string]string{
		"Uid":        "1234 1234 1234 1234",
		"Gid":        "2345 2345 2345 2345",
		"Groups":     "3456",
		"CapEff":     "0000000000000000", // execve as non-root without ambient caps
		"CapBnd":     "0000000000000420",
		"NoNewPrivs": "0",
		"cwd":        filepath.Join(target.dir, "work"),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	// Not joined: the process stays in our cgroup, outside the namespace's root.
	if got["cgroup"] == "/" {
		t.Error("exec without Cgroups landed in the target's cgroup")
	}
}

// TestExecProcessSettings is the rest of the process spec as the
// constructor applies it: escaped arguments arrive intact, the umask,
// rlimits (the hard one clamped, never raised), ambient capabilities for a
// non-root user, HOME from the target's /etc/passwd, and a session of the
// process's own (no controlling terminal of the caller's).
func TestExecProcessSettings(t *testing.T) {
	testutil.RequireRoot(t)
	target := startExecTarget(t)
	var hard unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &hard); err != nil {
		t.Fatal(err)
	}
	umask := uint32(0o027)
	proc := specs.Process{
		Args: []string{"sh", "-c", `printf '%s|' "$1"; umask; ulimit -n; ulimit -Hn; echo "home=$HOME"
sed -n 's/^\(CapAmb\|CapEff\|Uid\):\s*/\1 /p' /proc/self/status; echo "sid $(cut -d' ' -f6 /proc/self/stat) $$"`, "sh", "100%\nline two %0a"},
		Env:  []string{"PATH=/usr/bin:/bin"},
		Cwd:  "/",
		User: specs.User{UID: 1234, GID: 1234, Umask: &umask},
		Capabilities: &specs.LinuxCapabilities{
			Bounding: twoCaps, Effective: twoCaps, Permitted: twoCaps, Inheritable: twoCaps, Ambient: []string{"CAP_KILL"},
		},
		Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 64, Hard: hard.Max + 1}},
	}
	res := execInTarget(t, target, nil, proc)
	if res.code != 0 {
		t.Fatalf("exec exited %d: %s", res.code, res.stderr)
	}
	lines := strings.Split(res.stdout, "\n")
	want := []string{
		"100%", "line two %0a|0027", "64", strconv.FormatUint(hard.Max, 10), "home=",
		"Uid 1234\t1234\t1234\t1234", "CapEff 0000000000000020", "CapAmb 0000000000000020",
	}
	if len(lines) < len(want)+1 || !reflect.DeepEqual(lines[:len(want)], want) {
		t.Fatalf("exec printed %q, want it to start with %q", lines, want)
	}
	if f := strings.Fields(lines[len(want)]); len(f) != 3 || f[1] != f[2] {
		t.Errorf("session line %q: the process does not lead a session of its own", lines[len(want)])
	}
	// Root's entry in the target's /etc/passwd (the host's, for this target).
	proc.User, proc.Args = specs.User{}, []string{"sh", "-c", `echo "$HOME"`}
	if res := execInTarget(t, target, nil, proc); strings.TrimSpace(res.stdout) != "/root" {
		t.Errorf("HOME of root = %q (stderr %q), want /root from /etc/passwd", res.stdout, res.stderr)
	}
}

func TestExecExitCodes(t *testing.T) {
	testutil.RequireRoot(t)
	target := startExecTarget(t)
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"success", []string{"true"}, 0},
		{"exit code", []string{"sh", "-c", "exit 7"}, 7},
		{"killed by signal", []string{"sh", "-c", "kill -TERM $$"}, 128 + int(unix.SIGTERM)},
		{"not found", []string{"no-such-binary-in-peapod-test"}, namespaces.ExitNotFound},
		{"not executable", []string{"/etc/hostname"}, namespaces.ExitCannotExec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := execInTarget(t, target, nil, specs.Process{Args: tt.args, Env: []string{"PATH=/usr/bin:/bin"}, Cwd: "/"})
			if res.code != tt.code {
				t.Errorf("exit code = %d, want %d (stderr %q)", res.code, tt.code, res.stderr)
			}
		})
	}
}

func TestExecForwardsSignals(t *testing.T) {
	testutil.RequireRoot(t)
	target := startExecTarget(t)
	helper, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	// A stdin that never delivers. The shell waits in a loop of short
	// foreground sleeps, not in one `read`: a shell checks for trapped
	// signals between commands, and a SIGTERM landing after that check but
	// before read(2) blocks is never seen by a read that waits for ever
	// (the test once hung until the target died, under load). A sleep
	// ends, the trap runs; no background child outlives the shell to hold
	// stdout open.
	// An *os.File, so exec.Cmd starts no copying goroutine that Wait would
	// wait for.
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdinR.Close(); stdinW.Close() })
	cmd := namespaces.ExecCommand(namespaces.ExecOptions{
		Helper: helper, Target: target.pid, Stdin: stdinR, Stdout: pw,
		Process: specs.Process{
			Args: []string{"sh", "-c", `trap 'exit 3' TERM; echo ready; while :; do sleep 0.1; done`},
			Env:  []string{"PATH=/usr/bin:/bin"}, Cwd: "/",
		},
	})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unix.Kill(cmd.Process.Pid, unix.SIGKILL)
		cmd.Wait()
	})
	if line, err := bufio.NewReader(pr).ReadString('\n'); line != "ready\n" {
		t.Fatalf("exec did not start: %q, %v", line, err)
	}
	go io.Copy(io.Discard, pr)
	if err := cmd.Process.Signal(unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	pw.Close()
	// 3 is the trap's: the signal reached the process, not just the helper.
	if code := cmd.ProcessState.ExitCode(); code != 3 {
		t.Errorf("exit code after SIGTERM = %d, want 3", code)
	}
}

// Without its config the constructor must refuse rather than let the
// helper run on in the host's namespaces; a config the caller did not
// write (unknown key, no uid) is refused the same way, before any join.
func TestExecRefusesBadConfig(t *testing.T) {
	helper, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	self := strconv.Itoa(os.Getpid())
	full := "pid=" + self + "\narg=true\nuid=0\ngid=0\ncwd=/\numask=18\ncaps=0:0:0:0:0\n"
	for _, tt := range []struct {
		name, config, want string
	}{
		{"no config", "", "failed to find _PEAPOD_NSENTER"},
		{"unknown key", full + "privileged=1\n", "invalid _PEAPOD_NSENTER key"},
		{"no uid", strings.Replace(full, "uid=0\n", "", 1), "missing"},
		{"bad escape", full + "arg=%zz\n", "invalid _PEAPOD_NSENTER escape"},
		{"escaped NUL", full + "env=A=%00\n", "invalid _PEAPOD_NSENTER escape"},
		{"negative id", strings.Replace(full, "uid=0", "uid=-1", 1), "invalid _PEAPOD_NSENTER number"},
		{"short caps", strings.Replace(full, "caps=0:0:0:0:0", "caps=0:0", 1), "invalid _PEAPOD_NSENTER caps"},
		{"filter of 3 bytes", full, "seccomp filter length"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(helper, "exec")
			cmd.Env = []string{}
			if tt.config != "" {
				cmd.Env = []string{"_PEAPOD_NSENTER=" + tt.config}
			}
			if tt.name == "filter of 3 bytes" {
				cmd.Env = append(cmd.Env, "_PEAPOD_EXEC_SECCOMP=010203")
			}
			out, err := cmd.CombinedOutput()
			if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != namespaces.ExitCannotExec || !strings.Contains(string(out), tt.want) {
				t.Fatalf("exec with config %q: %v, %q; want exit %d and %q", tt.config, err, out, namespaces.ExitCannotExec, tt.want)
			}
		})
	}
}

func BenchmarkExec(b *testing.B) {
	testutil.RequireRoot(b)
	target := startExecTarget(b)
	proc := specs.Process{Args: []string{"/bin/true"}, Cwd: "/"}
	defer reportChildCPU(b)()
	for b.Loop() {
		if res := execInTarget(b, target, []string{target.cgroupProcs}, proc); res.code != 0 {
			b.Fatalf("exec exited %d: %s", res.code, res.stderr)
		}
	}
}
