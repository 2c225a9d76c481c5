package cri

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestSeccompProfile: each CRI SecurityProfile maps onto the pod API's
// profile the builder applies; a Localhost reference must be a clean
// absolute host path, and anything else is InvalidArgument naming the
// field.
func TestSeccompProfile(t *testing.T) {
	const f = "config.linux.security_context.seccomp"
	local := func(ref string) *runtimeapi.SecurityProfile {
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: ref}
	}
	for _, tc := range []struct {
		name  string
		in    *runtimeapi.SecurityProfile
		want  string // type, and "/path" for Localhost
		field string // the field an error names, "" for none
	}{
		{"nil is unconfined, as containerd", nil, "Unconfined", ""},
		{"zero value is RuntimeDefault", &runtimeapi.SecurityProfile{}, "RuntimeDefault", ""},
		{"unconfined", &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, "Unconfined", ""},
		{"ref ignored unless Localhost", &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined, LocalhostRef: "x"}, "Unconfined", ""},
		{"localhost", local("/var/lib/kubelet/seccomp/audit.json"), "Localhost/var/lib/kubelet/seccomp/audit.json", ""},
		{"localhost without a ref", local(""), "", f + ".localhost_ref"},
		{"relative ref", local("profiles/audit.json"), "", f + ".localhost_ref"},
		{"relative escape", local("../../etc/shadow"), "", f + ".localhost_ref"},
		{"dot-dot in an absolute ref", local("/var/lib/kubelet/seccomp/../../../../etc/shadow"), "", f + ".localhost_ref"},
		{"double slash", local("/var/lib//kubelet/seccomp/a.json"), "", f + ".localhost_ref"},
		{"trailing slash", local("/var/lib/kubelet/seccomp/"), "", f + ".localhost_ref"},
		{"unknown type", &runtimeapi.SecurityProfile{ProfileType: 7}, "", f + ".profile_type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp, err := seccompProfile(tc.in, f)
			if tc.field != "" {
				if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.field) {
					t.Fatalf("got %v, %v; want InvalidArgument naming %s", sp, err, tc.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := string(sp.Type)
			if sp.LocalhostProfile != nil {
				got += *sp.LocalhostProfile
			}
			if got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// TestContainerConfigSeccomp: the container's profile reaches its
// security context (a privileged one keeps it: the builder then runs it
// unconfined without reading the file, as containerd does); a bad
// reference is refused before anything is made.
func TestContainerConfigSeccomp(t *testing.T) {
	sbCfg := &runtimeapi.PodSandboxConfig{}
	for _, privileged := range []bool{false, true} {
		cfg := baseConfig()
		cfg.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{Privileged: privileged,
			Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "/p/deny.json"}}}
		c, err := containerFromConfig(cfg, sbCfg, &corev1.Pod{}, strings.Repeat("a", 64))
		if err != nil {
			t.Fatal(err)
		}
		sp := c.SecurityContext.SeccompProfile
		if sp == nil || sp.Type != corev1.SeccompProfileTypeLocalhost || *sp.LocalhostProfile != "/p/deny.json" || *c.SecurityContext.Privileged != privileged {
			t.Errorf("privileged %v: security context %+v", privileged, c.SecurityContext)
		}
	}
	cfg := baseConfig()
	cfg.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
		Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "deny.json"}}}
	if _, err := containerFromConfig(cfg, sbCfg, &corev1.Pod{}, strings.Repeat("a", 64)); status.Code(err) != codes.InvalidArgument ||
		!strings.Contains(err.Error(), "config.linux.security_context.seccomp.localhost_ref") {
		t.Errorf("relative localhost_ref: %v", err)
	}
}

// TestCheckSandboxSeccomp: the sandbox's Localhost profile is read and
// compiled as a container's would be, so one that is missing, not a
// regular file, not JSON or with an unknown action fails RunPodSandbox
// naming the field and the file; a privileged sandbox's is ignored.
func TestCheckSandboxSeccomp(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "deny-mkdir.json")
	files := map[string]string{
		good:                                   `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}`,
		filepath.Join(dir, "not-json.json"):    `defaultAction: SCMP_ACT_ALLOW`,
		filepath.Join(dir, "bad-action.json"):  `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_MAYBE"}]}`,
		filepath.Join(dir, "bad-default.json"): `{"defaultAction":"SCMP_ACT_NOPE"}`,
	}
	for p, body := range files {
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(good, filepath.Join(dir, "link.json")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(dir, "fifo.json"), 0o600); err != nil {
		t.Fatal(err)
	}
	sc := func(ref string, privileged bool) *runtimeapi.LinuxSandboxSecurityContext {
		return &runtimeapi.LinuxSandboxSecurityContext{Privileged: privileged,
			Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: ref}}
	}
	for _, ok := range []*runtimeapi.LinuxSandboxSecurityContext{
		nil, {}, sc(good, false), sc(filepath.Join(dir, "link.json"), false),
		sc(filepath.Join(dir, "missing.json"), true),
		{Seccomp: &runtimeapi.SecurityProfile{}},
	} {
		if err := checkSandboxSeccomp(ok); err != nil {
			t.Errorf("%v: %v", ok, err)
		}
	}
	for name, want := range map[string]string{
		"missing.json":     "no such file or directory",
		"not-json.json":    "Decoding seccomp profile failed",
		"bad-action.json":  `unknown action "SCMP_ACT_MAYBE"`,
		"bad-default.json": `unknown action "SCMP_ACT_NOPE"`,
		"fifo.json":        "not a regular file",
		".":                "not a clean",
	} {
		ref := filepath.Join(dir, name)
		if name == "." {
			ref = dir + "/."
		}
		err := checkSandboxSeccomp(sc(ref, false))
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "config.linux.security_context.seccomp.localhost_ref") ||
			!strings.Contains(err.Error(), want) || (name != "." && !strings.Contains(err.Error(), ref)) {
			t.Errorf("%s: %v; want InvalidArgument naming the field, the file and %q", name, err, want)
		}
	}
}
