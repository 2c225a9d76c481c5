package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// TestExecFastPath_16: a plain `peapod exec` runs in the CLI's C
// constructor (cmd/peapod/internal/fastexec), which execve's the helper in
// place: the CLI's own process becomes peapod-init. The command sees
// exactly what the Go path (PEAPOD_NO_FASTEXEC=1) gives it — user, groups,
// capabilities, cwd, env, stdio that are pipes and /dev/null, never the
// caller's descriptors — with the same exit codes, signals, default
// container and note; and everything the fast path does not handle falls
// through to Go with Go's own errors.
func TestExecFastPath_16(t *testing.T) {
	e := newEnv(t)
	app := shell("app", "exec sleep 1000")
	app.WorkingDir = "/tmp"
	app.Env = []corev1.EnvVar{{Name: "FOO", Value: "a%0a b\nc"}}
	app.SecurityContext = &corev1.SecurityContext{RunAsUser: ptr(int64(1000)), RunAsGroup: ptr(int64(2000)), AllowPrivilegeEscalation: ptr(false)}
	e.runPod(podJSON(newPod("fx", app, shell("side", "exec sleep 1000"))))
	slow := e.withEnv("PEAPOD_NO_FASTEXEC=1")

	t.Run("the CLI becomes the helper", func(t *testing.T) {
		cmd := exec.Command(e.bin, e.args("exec", "fx", "-c", "app", "--", "sh", "-c", "echo ready; exec sleep 30")...)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		if line, err := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
			t.Fatalf("exec did not start: %q, %v", line, err)
		}
		// The command runs: whatever the CLI process became, it is now.
		comm, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/comm")
		if err != nil || strings.TrimSpace(string(comm)) != "peapod-init" {
			t.Errorf("the CLI process is %q (%v), want peapod-init: the fast path did not run", comm, err)
		}
		// SIGTERM reaches the command (sleep dies of it: 128+15).
		if err := cmd.Process.Signal(unix.SIGTERM); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		if code := cmd.ProcessState.ExitCode(); code != 143 {
			t.Errorf("exit code after SIGTERM = %d, want 143", code)
		}
	})

	t.Run("same as the Go path", func(t *testing.T) {
		script := `id; pwd; printf '%s|' "$FOO"; echo; grep -E '^(Cap|NoNewPrivs|Groups)' /proc/self/status
readlink /proc/self/fd/0; stat -L -c %F /proc/self/fd/1 /proc/self/fd/2; ls /proc/self/fd | wc -l
echo to-stderr >&2; head -c 300000 /dev/zero | tr '\0' x | wc -c`
		for _, args := range [][]string{{"-c", "app"}, {}} {
			argv := append(append([]string{"exec", "fx"}, args...), "--", "sh", "-c", script)
			fo, fe, fc := e.run("", argv...)
			so, se, sc := slow.run("", argv...)
			if fo != so || fe != se || fc != sc {
				t.Errorf("peapod %v:\nfast path: %d\n%s\nstderr %q\nGo path: %d\n%s\nstderr %q", argv, fc, fo, fe, sc, so, se)
			}
			for _, want := range []string{"uid=1000", "/tmp\n", "a%0a b\nc|", "/dev/null\nfifo\nfifo\n", "300000"} {
				if !strings.Contains(fo, want) {
					t.Errorf("peapod %v printed\n%s\nwant %q in it", argv, fo, want)
				}
			}
			// kubectl's note, without -c: two containers to choose from.
			if len(args) == 0 && !strings.Contains(fe, `Defaulted container "app" out of: app, side`) {
				t.Errorf("no default-container note on stderr: %q", fe)
			}
		}
	})

	t.Run("exit codes", func(t *testing.T) {
		for _, tt := range []struct {
			cmd  []string
			code int
		}{{[]string{"sh", "-c", "exit 42"}, 42}, {[]string{"no-such-command"}, 127}, {[]string{"/etc/hostname"}, 126}} {
			if _, stderr, code := e.run("", append([]string{"exec", "fx", "-c", "app", "--"}, tt.cmd...)...); code != tt.code {
				t.Errorf("exec %v: exit %d (%s), want %d", tt.cmd, code, stderr, tt.code)
			}
		}
	})

	t.Run("falls through to Go", func(t *testing.T) {
		for _, tt := range []struct {
			args []string
			want string
		}{
			{[]string{"exec", "nosuch", "--", "true"}, "not found"},
			{[]string{"exec", "fx", "-c", "ghost", "--", "true"}, `container "ghost" not found`},
			{[]string{"exec", "fx", "-c", "../../../etc", "--", "true"}, "not found"},
		} {
			fo, fe, fc := e.run("", tt.args...)
			so, se, sc := slow.run("", tt.args...)
			if fc == 0 || fo != so || fe != se || fc != sc || !strings.Contains(fe, tt.want) {
				t.Errorf("peapod %v: fast %d %q %q, Go %d %q %q; want the same failure, mentioning %q", tt.args, fc, fo, fe, sc, so, se, tt.want)
			}
		}
	})

	t.Run("a restarted container's new profile", func(t *testing.T) {
		// The old instance's profile names a dead pid until the supervisor
		// replaces it: an exec must land in the new instance (its own PID
		// namespace), never beside a dead or reused pid.
		e := e.on(t)
		old := e.inspect("fx").container(t, "side").PID
		if err := unix.Kill(old, unix.SIGKILL); err != nil {
			t.Fatal(err)
		}
		e.waitPod("fx", 30*time.Second, func(p *corev1.Pod) (bool, string) {
			s := containerStatus(t, p, "side")
			return s.RestartCount >= 1 && s.State.Running != nil, fmt.Sprintf("side: %d restarts, state %+v", s.RestartCount, s.State)
		})
		pid := e.inspect("fx").container(t, "side").PID
		if got, want := e.mustExec("fx", "side", "readlink", "/proc/self/ns/pid"), nsLink(t, pid, "pid")+"\n"; got != want {
			t.Errorf("exec after the restart is in PID namespace %q, want the new instance's %q", got, want)
		}
	})
}
