package namespaces

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestReadInitReport(t *testing.T) {
	if err := readInitReport(strings.NewReader("")); err != nil {
		t.Errorf("EOF = %v, want success", err)
	}
	err := readInitReport(strings.NewReader(`{"message":"no sh","notFound":true}`))
	if !errors.Is(err, ErrExecNotFound) || !strings.Contains(err.Error(), "no sh") {
		t.Errorf("not-found report = %v", err)
	}
	err = readInitReport(strings.NewReader(`{"message":"mount failed"}`))
	if !errors.Is(err, ErrInitFailed) || errors.Is(err, ErrExecNotFound) || !strings.Contains(err.Error(), "mount failed") {
		t.Errorf("failure report = %v", err)
	}
	if err := readInitReport(strings.NewReader("garbage")); !errors.Is(err, ErrInitFailed) {
		t.Errorf("garbage report = %v", err)
	}
}

// TestExecHelperEnv is what ExecCommand hands the constructor: the user
// resolved from the target's /etc/passwd (here this process's, so root),
// names turned into numbers, and values that would end a line escaped.
func TestExecHelperEnv(t *testing.T) {
	umask := uint32(0o077)
	o := ExecOptions{
		Helper: "/bin/helper", Target: os.Getpid(), Cgroups: []string{"/sys/fs/cgroup/x/cgroup.procs"},
		Process: specs.Process{
			Args: []string{"sh", "-c", "echo 100%\nls"}, Env: []string{"PATH=/bin"}, Cwd: "/tmp",
			User:            specs.User{UID: 0, AdditionalGids: []uint32{7}, Umask: &umask},
			Capabilities:    &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN", "cap_kill"}, Ambient: []string{"CAP_CHECKPOINT_RESTORE"}},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 10, Hard: 20}},
			NoNewPrivileges: true,
		},
		Seccomp: []byte{1, 2, 3, 4, 5, 6, 7, 8},
	}
	cmd := ExecCommand(o)
	if cmd.Err != nil {
		t.Fatal(cmd.Err)
	}
	want := []string{
		nsenterConfigEnv + "=pid=" + strconv.Itoa(os.Getpid()) + "\ncgroup=/sys/fs/cgroup/x/cgroup.procs\nuid=0\ngid=0\ngroup=7\n" +
			"env=PATH=/bin\nenv=HOME=/root\ncwd=/tmp\numask=63\nnnp=1\n" +
			"rlimit=7:10:20\ncaps=21:0:0:0:10000000000\ntimerslack=50000\narg=sh\narg=-c\narg=echo 100%25%0als\n",
		execSeccompEnv + "=0102030405060708",
	}
	if !reflect.DeepEqual(cmd.Env, want) {
		t.Errorf("helper environment =\n%q\nwant\n%q", cmd.Env, want)
	}
	for _, tt := range []struct {
		name    string
		mutate  func(*ExecOptions)
		wantErr string
	}{
		{"unknown capability", func(o *ExecOptions) { o.Process.Capabilities.Effective = []string{"CAP_BOGUS"} }, `unknown capability "CAP_BOGUS"`},
		{"unknown rlimit", func(o *ExecOptions) { o.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_BOGUS"}} }, `unknown rlimit "RLIMIT_BOGUS"`},
		{"unknown user", func(o *ExecOptions) { o.Process.User = specs.User{Username: "no-such-user-peapod"} }, `user "no-such-user-peapod" not found`},
		{"odd filter", func(o *ExecOptions) { o.Seccomp = []byte{1, 2, 3} }, "invalid seccomp filter"},
		{"gone target", func(o *ExecOptions) { o.Target = 1 << 30 }, "container root"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := o
			o.Process.Capabilities = &specs.LinuxCapabilities{}
			tt.mutate(&o)
			if err := ExecCommand(o).Err; err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ExecCommand's error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestInitReportRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		err      error
		notFound bool
	}{
		{fmt.Errorf("executable %q: %w", "sh", ErrExecNotFound), true},
		{errors.New("failed to mount proc"), false},
	} {
		got := readInitReport(bytes.NewReader(EncodeInitReport(tt.err)))
		if errors.Is(got, ErrExecNotFound) != tt.notFound || errors.Is(got, ErrInitFailed) == tt.notFound {
			t.Errorf("report of %v read back as %v", tt.err, got)
		}
		if !strings.Contains(got.Error(), tt.err.Error()) {
			t.Errorf("report of %v lost its message: %v", tt.err, got)
		}
	}
}

// TestExecProfileFile: a profile written for a running process reads back
// as the same profile; one of another process start, another boot or a
// dead pid reads as none (ok false, no error), a damaged one as an error.
func TestExecProfileFile(t *testing.T) {
	umask := uint32(0o077)
	o := ExecOptions{
		Target: os.Getpid(),
		Process: specs.Process{Env: []string{"A=1%\n2"}, Cwd: "/with\nnewline", User: specs.User{Umask: &umask},
			Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL"}}},
		Seccomp: []byte{1, 2, 3, 4, 5, 6, 7, 8},
	}
	p, err := NewExecProfile(o)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "exec", "app")
	if err := WriteExecProfile(path, p); err != nil {
		t.Fatal(err)
	}
	got, ok, err := ReadExecProfile(path)
	if err != nil || !ok || !reflect.DeepEqual(got, p) {
		t.Fatalf("ReadExecProfile = %+v, %v, %v; want %+v", got, ok, err, p)
	}
	if got.Cwd() != "/with\nnewline" || !got.HasEnv("A") || got.HasEnv("B") {
		t.Errorf("Cwd %q, HasEnv(A) %v, HasEnv(B) %v", got.Cwd(), got.HasEnv("A"), got.HasEnv("B"))
	}
	req := ExecRequest{Helper: "/h", Args: []string{"true"}}
	if a, b := got.Command(req).Env, p.Command(req).Env; !reflect.DeepEqual(a, b) {
		t.Errorf("the read profile's command env %q, the written one's %q", a, b)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(string(b), "\n", 4)
	for _, tt := range []struct {
		name, data string
		wantErr    bool
	}{
		{"missing", "", false},
		{"another start", lines[0] + "\nstart=1\n" + lines[2] + "\n" + lines[3], false},
		{"another boot", "boot=00000000-0000-0000-0000-000000000000\n" + lines[1] + "\n" + lines[2] + "\n" + lines[3], false},
		{"a dead pid", lines[0] + "\n" + lines[1] + "\n" + lines[2] + "\npid=1073741824\n", false},
		{"no header", lines[3], true},
		{"bad pid", lines[0] + "\n" + lines[1] + "\n" + lines[2] + "\npid=x\n", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "app")
			if tt.data != "" {
				if err := os.WriteFile(p, []byte(tt.data), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, ok, err := ReadExecProfile(p)
			if ok || (err != nil) != tt.wantErr {
				t.Errorf("ReadExecProfile = %+v, %v, %v; want not ok and error %v", got, ok, err, tt.wantErr)
			}
		})
	}
}
