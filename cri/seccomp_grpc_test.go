package cri_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// execOut runs cmd in a container and returns its stdout and stderr
// together with its exit code.
func (e *env) execOut(id string, cmd ...string) (string, int32) {
	e.t.Helper()
	r, err := e.rt.ExecSync(e.ctx(), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: 10})
	if err != nil {
		e.t.Fatalf("ExecSync %v in %s: %v", cmd, id, err)
	}
	return string(r.Stdout) + string(r.Stderr), r.ExitCode
}

// TestSeccompThroughCRI: the kubelet's seccomp profiles reach the
// container and its execs through the same compiler and loader as
// `peapod run`: a Localhost profile at an absolute host path (through a
// symlink too) denies its syscalls with EPERM, RuntimeDefault filters,
// Unconfined and nil do not, and a privileged container ignores its
// profile. A profile that cannot be used fails CreateContainer or
// RunPodSandbox with InvalidArgument naming the field and the file, and
// leaves no container and no sandbox behind.
func TestSeccompThroughCRI(t *testing.T) {
	e := newEnv(t)
	e.importBusybox()
	dir := t.TempDir()
	deny := filepath.Join(dir, "deny-mkdir.json")
	files := map[string]string{
		deny:                                   `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat","sethostname"],"action":"SCMP_ACT_ERRNO"}]}`,
		filepath.Join(dir, "not-json.json"):    `{"defaultAction":`,
		filepath.Join(dir, "bad-action.json"):  `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_SOMETIMES"}]}`,
		filepath.Join(dir, "bad-errno.json"):   `{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":70000}`,
		filepath.Join(dir, "empty-body.json"):  ``,
		filepath.Join(dir, "array-body.json"):  `[]`,
		filepath.Join(dir, "string-body.json"): `"x"`,
	}
	for p, body := range files {
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(deny, filepath.Join(dir, "link.json")); err != nil {
		t.Fatal(err)
	}
	// A /proc magic link to an open profile (the server runs in this
	// process): not followed.
	held, err := os.Open(deny)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	local := func(ref string) *runtimeapi.SecurityProfile {
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: ref}
	}
	const field = "config.linux.security_context.seccomp.localhost_ref"
	bad := map[string]string{
		filepath.Join(dir, "missing.json"):                     "no such file or directory",
		filepath.Join(dir, "not-json.json"):                    "Decoding seccomp profile failed",
		filepath.Join(dir, "bad-action.json"):                  `unknown action "SCMP_ACT_SOMETIMES"`,
		filepath.Join(dir, "bad-errno.json"):                   "out of range",
		filepath.Join(dir, "empty-body.json"):                  "Decoding seccomp profile failed",
		filepath.Join(dir, "array-body.json"):                  "Decoding seccomp profile failed",
		filepath.Join(dir, "string-body.json"):                 "Decoding seccomp profile failed",
		dir:                                                    "not a regular file",
		fmt.Sprintf("/proc/self/fd/%d", held.Fd()):             "symbolic links",
		"../../etc/shadow":                                     "not an absolute path",
		dir + "/../" + filepath.Base(dir) + "/deny-mkdir.json": "not a clean path",
	}

	// The sandbox: nothing is made for a profile that cannot be used.
	for ref, want := range bad {
		cfg := config("bad-seccomp", 0)
		cfg.Linux = &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{Seccomp: local(ref)}}
		_, err := e.rt.RunPodSandbox(e.ctx(), &runtimeapi.RunPodSandboxRequest{Config: cfg})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), field) || !strings.Contains(err.Error(), want) {
			t.Errorf("RunPodSandbox with profile %q: %v; want InvalidArgument naming %s and %q", ref, err, field, want)
		}
	}
	if l, err := e.rt.ListPodSandbox(e.ctx(), &runtimeapi.ListPodSandboxRequest{}); err != nil || len(l.Items) != 0 {
		t.Fatalf("sandboxes after refused runs: %v, %v", l, err)
	}

	sbCfg := config("seccomp", 0)
	sbCfg.Linux = &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{Seccomp: local(deny)}}
	sb := e.run(sbCfg)
	ctr := func(name string, p *runtimeapi.SecurityProfile, privileged bool) *runtimeapi.ContainerConfig {
		c := ctrConfig(name, 0)
		c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			Seccomp: p, Privileged: privileged, Capabilities: &runtimeapi.Capability{AddCapabilities: []string{"SYS_ADMIN"}}}}
		return c
	}
	for ref, want := range bad {
		_, err := e.rt.CreateContainer(e.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: sb, Config: ctr("bad", local(ref), false), SandboxConfig: sbCfg})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), field) || !strings.Contains(err.Error(), want) ||
			(strings.HasPrefix(ref, "/") && !strings.Contains(err.Error(), ref)) {
			t.Errorf("CreateContainer with profile %q: %v; want InvalidArgument naming %s, the file and %q", ref, err, field, want)
		}
	}
	if l, err := e.rt.ListContainers(e.ctx(), &runtimeapi.ListContainersRequest{}); err != nil || len(l.Containers) != 0 {
		t.Fatalf("containers after refused creates: %v, %v", l, err)
	}

	for _, tc := range []struct {
		name       string
		profile    *runtimeapi.SecurityProfile
		privileged bool
		mode       string // /proc/self/status's Seccomp: 0 none, 2 filter
		denied     bool   // mkdir and sethostname fail with EPERM
	}{
		{"localhost", local(deny), false, "2", true},
		{"localhost-symlink", local(filepath.Join(dir, "link.json")), false, "2", true},
		{"runtime-default", &runtimeapi.SecurityProfile{}, false, "2", false},
		{"unconfined", &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, false, "0", false},
		{"nil", nil, false, "0", false},
		{"privileged-localhost", local(deny), true, "0", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := e.startContainer(sb, ctr(tc.name, tc.profile, tc.privileged), sbCfg)
			out, code := e.execOut(id, "grep", "Seccomp:", "/proc/self/status")
			if code != 0 || strings.Fields(out)[1] != tc.mode {
				t.Errorf("an exec's seccomp mode: %q (exit %d), want %s", out, code, tc.mode)
			}
			out, code = e.execOut(id, "cat", "/proc/1/status")
			if !strings.Contains(out, "Seccomp:\t"+tc.mode+"\n") {
				t.Errorf("the container's seccomp mode: %q (exit %d), want %s", out, code, tc.mode)
			}
			for _, cmd := range [][]string{{"mkdir", "/made-" + tc.name}, {"hostname", "seccomp-" + tc.name}} {
				out, code := e.execOut(id, cmd...)
				if tc.denied != (code != 0) || (tc.denied && !strings.Contains(out, "Operation not permitted")) {
					t.Errorf("%v: %q (exit %d), want denied %v with EPERM", cmd, out, code, tc.denied)
				}
			}
		})
	}
	e.remove(sb)
}
