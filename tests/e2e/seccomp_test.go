package e2e

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"github.com/peapod/peapod/cgroups"
)

// runPodArgs is runPod with extra `run` flags.
func (e *env) runPodArgs(manifest string, flags ...string) {
	e.t.Helper()
	args := append([]string{"run", "-d", "-f", "-"}, flags...)
	out, stderr, code := e.run(manifest, args...)
	if code != 0 {
		e.t.Fatalf("peapod %s: exit code %d\nstdout: %s\nstderr: %s\nmanifest:\n%s", strings.Join(args, " "), code, out, stderr, manifest)
	}
	for _, line := range strings.Split(out, "\n") {
		if name, ok := strings.CutSuffix(strings.TrimPrefix(line, "pod/"), " created"); ok {
			e.inspect(name) // records its names for the shared-host leak filter
		}
	}
}

// withSeccomp sets a container's seccomp profile.
func withSeccomp(c corev1.Container, typ corev1.SeccompProfileType, localhost string) corev1.Container {
	if c.SecurityContext == nil {
		c.SecurityContext = &corev1.SecurityContext{}
	}
	c.SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: typ}
	if localhost != "" {
		c.SecurityContext.SeccompProfile.LocalhostProfile = &localhost
	}
	return c
}

// seccompMode is the Seccomp line of a process's status inside a container
// (0 off, 2 filter).
func seccompMode(t *testing.T, e *env, pod, ctr, pid string) string {
	t.Helper()
	return statusField(t, e.mustExec(pod, ctr, "cat", "/proc/"+pid+"/status"), "Seccomp")
}

// denyMkdir is a Localhost profile in Docker's format that allows
// everything but mkdir, which fails with EACCES.
const denyMkdir = `{"defaultAction":"SCMP_ACT_ALLOW","archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"]}],
"syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}`

// TestSeccomp_RuntimeDefault: under the default profile the workload and
// an exec into it cannot create a user namespace (EPERM), while sh, httpd
// and wget work; an Unconfined container of the same pod can; the
// workload and the exec'd process both run in filter mode.
func TestSeccomp_RuntimeDefault(t *testing.T) {
	e := newEnv(t)
	web := withSeccomp(shell("web", `unshare -U true 2>/tmp/unshare.err; echo $? >/tmp/unshare.rc
mkdir -p /tmp/www && echo hello-seccomp >/tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www`), corev1.SeccompProfileTypeRuntimeDefault, "")
	// An exec probe runs under the container's filter too: this one can
	// never pass there.
	web.ReadinessProbe = &corev1.Probe{PeriodSeconds: 1, ProbeHandler: corev1.ProbeHandler{
		Exec: &corev1.ExecAction{Command: []string{"unshare", "-U", "true"}}}}
	free := withSeccomp(ctr("free", "sleep", "1000"), corev1.SeccompProfileTypeUnconfined, "")
	e.runPod(podJSON(newPod("sc", web, free)))
	if ev := e.waitEvents("sc", "Unhealthy"); !strings.Contains(ev, "Operation not permitted") {
		t.Errorf("the exec probe failed otherwise than on EPERM:\n%s", ev)
	}
	if got := strings.TrimSpace(e.mustExec("sc", "web", "cat", "/tmp/unshare.rc")); got == "0" {
		t.Errorf("unshare -U in the RuntimeDefault workload succeeded")
	}
	if got := e.mustExec("sc", "web", "cat", "/tmp/unshare.err"); !strings.Contains(got, "Operation not permitted") {
		t.Errorf("unshare -U in the workload: %q, want EPERM", got)
	}
	out, stderr, code := e.exec("sc", "web", "unshare", "-U", "true")
	if code == 0 || !strings.Contains(stderr, "Operation not permitted") {
		t.Errorf("unshare -U by exec into the RuntimeDefault container: exit %d, %q %q; want EPERM", code, out, stderr)
	}
	if got := e.mustExec("sc", "free", "wget", "-q", "-O", "-", "http://127.0.0.1:8080/"); !strings.Contains(got, "hello-seccomp") {
		t.Errorf("wget of the filtered httpd = %q", got)
	}
	if got := e.mustExec("sc", "web", "wget", "-q", "-O", "-", "http://127.0.0.1:8080/"); !strings.Contains(got, "hello-seccomp") {
		t.Errorf("wget inside the filtered container = %q", got)
	}
	e.mustExec("sc", "free", "unshare", "-U", "true")
	for c, want := range map[string]string{"web": "2", "free": "0"} {
		if got := seccompMode(t, e, "sc", c, "1"); got != want {
			t.Errorf("container %s: main process Seccomp = %s, want %s", c, got, want)
		}
		if got := seccompMode(t, e, "sc", c, "self"); got != want {
			t.Errorf("container %s: exec'd process Seccomp = %s, want %s", c, got, want)
		}
	}
}

// TestSeccomp_Localhost: a Localhost profile from <root>/seccomp makes
// mkdir fail with EACCES (root with CAP_DAC_OVERRIDE on its own /tmp never
// gets it from the filesystem), in the workload and in execs; its
// Unconfined neighbour creates directories.
func TestSeccomp_Localhost(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(e.root, "seccomp", "profiles")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "deny-mkdir.json"), []byte(denyMkdir), 0o644); err != nil {
		t.Fatal(err)
	}
	lh := withSeccomp(shell("lh", "mkdir /tmp/x 2>/tmp/mkdir.err; exec sleep 1000"), corev1.SeccompProfileTypeLocalhost, "profiles/deny-mkdir.json")
	p := newPod("lh", lh, ctr("free", "sleep", "1000"))
	e.runPod(podJSON(p))
	if got := e.mustExec("lh", "lh", "cat", "/tmp/mkdir.err"); !strings.Contains(got, "Permission denied") {
		t.Errorf("mkdir in the workload: %q, want EACCES", got)
	}
	if _, stderr, code := e.exec("lh", "lh", "mkdir", "/tmp/y"); code == 0 || !strings.Contains(stderr, "Permission denied") {
		t.Errorf("mkdir by exec: exit %d, %q; want EACCES", code, stderr)
	}
	e.mustExec("lh", "lh", "touch", "/tmp/file") // only mkdir is denied
	e.mustExec("lh", "free", "mkdir", "/tmp/y")
	e.mustExec("lh", "free", "unshare", "-U", "true")
}

// TestSeccomp_SeccompDefault: with --seccomp-default a container naming no
// profile runs under RuntimeDefault, whether the filter is loaded early (no
// no_new_privs: while the init still holds CAP_SYS_ADMIN, also for a
// non-root user) or last (no_new_privs); a privileged one stays unconfined.
func TestSeccomp_SeccompDefault(t *testing.T) {
	e := newEnv(t)
	priv := ctr("priv", "sleep", "1000")
	priv.SecurityContext = &corev1.SecurityContext{Privileged: ptr(true)}
	nnp := ctr("nnp", "sleep", "1000")
	nnp.SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: ptr(false)}
	user := ctr("user", "sleep", "1000")
	user.SecurityContext = &corev1.SecurityContext{RunAsUser: ptr[int64](1000)}
	e.runPodArgs(podJSON(newPod("sd", ctr("plain", "sleep", "1000"), priv, nnp, user)), "--seccomp-default")
	for c, want := range map[string]string{"plain": "2", "priv": "0", "nnp": "2", "user": "2"} {
		if got := seccompMode(t, e, "sd", c, "1"); got != want {
			t.Errorf("container %s: Seccomp = %s, want %s", c, got, want)
		}
	}
	for _, c := range []string{"plain", "nnp", "user"} {
		if _, stderr, code := e.exec("sd", c, "unshare", "-U", "true"); code == 0 || !strings.Contains(stderr, "Operation not permitted") {
			t.Errorf("%s: unshare -U under --seccomp-default: exit %d, %q; want EPERM", c, code, stderr)
		}
	}
}

// TestSeccomp_BadProfiles: a missing Localhost profile fails run with the
// file's name and leaves nothing; a path leaving the directory and an
// unknown type are refused with the API server's words before anything is
// created.
func TestSeccomp_BadProfiles(t *testing.T) {
	e := newEnv(t)
	if err := os.MkdirAll(filepath.Join(e.root, "seccomp"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Outside the seccomp directory, where "../x" would lead.
	if err := os.WriteFile(filepath.Join(e.root, "x"), []byte(denyMkdir), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		profile corev1.SeccompProfile
		want    string
	}{
		{"missing", corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: ptr("gone.json")},
			`container "app": cannot load seccomp profile "` + filepath.Join(e.root, "seccomp", "gone.json") + `": open ` + filepath.Join(e.root, "seccomp", "gone.json") + ": no such file or directory"},
		{"escape", corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: ptr("../x")},
			`spec.containers[0].securityContext.seccompProfile.localhostProfile: Invalid value: "../x": must not contain '..'`},
		{"absolute", corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: ptr(filepath.Join(e.root, "x"))},
			"must be a relative path"},
		{"unknown type", corev1.SeccompProfile{Type: "Strict"},
			`spec.containers[0].securityContext.seccompProfile.type: Unsupported value: "Strict": supported values: "Localhost", "RuntimeDefault", "Unconfined"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.snapshot()
			c := ctr("app", "sleep", "1000")
			c.SecurityContext = &corev1.SecurityContext{SeccompProfile: &tt.profile}
			_, stderr, code := e.run(podJSON(newPod("bad", c)), "run", "-d", "-f", "-")
			if code == 0 || !strings.Contains(stderr, tt.want) {
				t.Fatalf("run: exit %d, stderr %q; want an error containing %q", code, stderr, tt.want)
			}
			if out, _, _ := e.run("", "ps", "-A"); strings.Contains(out, "bad") {
				t.Errorf("a refused pod is listed:\n%s", out)
			}
			e.assertNoLeak(before)
		})
	}
}

// TestPodPidsLimit: a pod whose container starts processes in a bounded
// loop beyond --pod-pids-limit gets EAGAIN at the limit, the pod cgroup
// holds the limit and no more processes, the host can still fork, and rm
// -f removes everything. Without the flag the pod gets the default 4096.
func TestPodPidsLimit(t *testing.T) {
	for _, driver := range cgroupDrivers {
		t.Run("cgroup-"+driver, func(t *testing.T) {
			e := newEnv(t, withDriver(driver))
			hp := t.TempDir()
			fifo := filepath.Join(hp, "release")
			if err := unix.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			// Builtins only once the inner shell hit the limit: every fork
			// of the container's PID 1 would fail too.
			c := mount(shell("forker", `sh -c 'i=0; while [ $i -lt 100 ]; do sleep 1000 & i=$((i+1)); done' 2>/tmp/err
read -r line </tmp/err; echo "fork: $line"
read -r x </h/release; kill -9 -1; echo released; exec sleep 1000`), "h", "/h")
			p := newPod("pids", c)
			p.Spec.Volumes = []corev1.Volume{{Name: "h", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hp}}}}
			const limit = 40
			if driver == "v2" && hybridHost(t) {
				before := e.snapshot()
				_, stderr, code := e.run(podJSON(p), "run", "-d", "-f", "-", "--pod-pids-limit", strconv.Itoa(limit))
				if code == 0 || !strings.Contains(stderr, "pids.max") {
					t.Fatalf("a pids limit on the controller-less cgroup2 tree: exit %d, stderr %q; want a refusal naming pids.max", code, stderr)
				}
				e.assertNoLeak(before)
				// The default limit does not refuse pods there.
				e.runPod(podJSON(newPod("plain", ctr("app", "sleep", "1000"))))
				return
			}
			before := e.snapshot()
			e.runPodArgs(podJSON(p), "--pod-pids-limit", strconv.Itoa(limit))
			e.waitLog("pids", "forker", "fork: ")
			if logs := e.mustRun("logs", "pids", "-c", "forker"); !strings.Contains(logs, "Resource temporarily unavailable") {
				t.Errorf("forking past the limit logged %q, want EAGAIN", logs)
			}
			podCg := path.Dir(e.inspect("pids").container(t, "forker").Cgroup)
			file := func(name string) string {
				if driver == "v2" {
					return strings.TrimSpace(readHost(t, filepath.Join(cgroups.DefaultMountRoot, podCg, name)))
				}
				return v1File(t, "pids", podCg, name)
			}
			if got := file("pids.max"); got != strconv.Itoa(limit) {
				t.Errorf("pod pids.max = %s, want %d", got, limit)
			}
			if n, err := strconv.Atoi(file("pids.current")); err != nil || n > limit || n < limit-5 {
				t.Errorf("pod pids.current = %d (%v), want the limit reached", n, err)
			}
			if err := exec.Command("/bin/true").Run(); err != nil {
				t.Errorf("the host cannot fork while the pod is at its limit: %v", err)
			}
			f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString("go\n")
			f.Close()
			e.waitLog("pids", "forker", "released")
			e.runPod(podJSON(newPod("dflt", ctr("app", "sleep", "1000"))))
			if got := strings.TrimSpace(readPodCgroupFile(t, e, driver, "dflt", "app", "pids.max")); got != "4096" {
				t.Errorf("default pod pids.max = %s, want 4096", got)
			}
			e.mustRun("rm", "-f", "pids")
			e.mustRun("rm", "-f", "dflt")
			e.assertNoLeak(before)
		})
	}
}

// readPodCgroupFile reads a control file of a pod's cgroup (the parent of
// its container's).
func readPodCgroupFile(t *testing.T, e *env, driver, pod, ctr, name string) string {
	t.Helper()
	podCg := path.Dir(e.inspect(pod).container(t, ctr).Cgroup)
	if driver == "v2" {
		return readHost(t, filepath.Join(cgroups.DefaultMountRoot, podCg, name))
	}
	return readHost(t, filepath.Join(cgroups.DefaultMountRoot, "pids", podCg, name))
}
