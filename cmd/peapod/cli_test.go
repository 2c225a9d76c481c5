package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/cobra"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// peapodBinary builds this command once for the tests that run it as a
// user would.
func peapodBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "peapod-cli-test-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "peapod")
		out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("go build: %v", buildErr)
	}
	return builtBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

// runPeapod runs the built binary and returns stdout, stderr and the exit code.
func runPeapod(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(peapodBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), errb.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("peapod %v: %v", args, err)
	}
	return out.String(), errb.String(), 0
}

// groups lists every command group (a command with subcommands) by path.
func groups(t *testing.T) [][]string {
	t.Helper()
	var out [][]string
	walk(newRootCommand(&globals{}), func(c *cobra.Command) {
		if c.HasAvailableSubCommands() {
			var path []string
			for p := c; p.HasParent(); p = p.Parent() {
				path = append([]string{p.Name()}, path...)
			}
			out = append(out, path)
		}
	})
	if len(out) < 2 {
		t.Fatalf("found %d command groups, want the root and image at least", len(out))
	}
	return out
}

// TestUnknownSubcommand_13: a word no command group knows is an error,
// exit 1, in every group, the root included (a typo in a script must not
// print help and pass); cobra's suggestion names the command meant; no
// root is needed to be told.
func TestUnknownSubcommand_13(t *testing.T) {
	for _, g := range groups(t) {
		path := strings.Join(append([]string{"peapod"}, g...), " ")
		t.Run(path, func(t *testing.T) {
			out, stderr, code := runPeapod(t, nil, append(g, "frobnicate", "x")...)
			if code != 1 {
				t.Fatalf("exit code %d, want 1; stdout %q stderr %q", code, out, stderr)
			}
			if want := `unknown command "frobnicate" for "` + path + `"`; !strings.Contains(stderr, want) {
				t.Errorf("stderr %q does not say %q", stderr, want)
			}
			if strings.Contains(out, "Usage:") || strings.Contains(stderr, "must run as root") {
				t.Errorf("printed help or asked for root instead of rejecting the word: %q %q", out, stderr)
			}
		})
	}
	_, stderr, code := runPeapod(t, nil, "image", "pul", "busybox")
	if code != 1 || !strings.Contains(stderr, "Did you mean this?\n\tpull\n") {
		t.Errorf("image pul: exit %d, stderr %q; want 1 and a suggestion of pull", code, stderr)
	}
	_, stderr, code = runPeapod(t, nil, "gett", "pods")
	if code != 1 || !strings.Contains(stderr, "Did you mean this?\n\tget\n") {
		t.Errorf("gett: exit %d, stderr %q; want 1 and a suggestion of get", code, stderr)
	}
	// A group without a word still prints its help, exit 0, as kubectl's do.
	if out, stderr, code := runPeapod(t, nil, "image"); code != 0 || !strings.Contains(out, "Available Commands:") {
		t.Errorf("image: exit %d, stdout %q stderr %q; want its help", code, out, stderr)
	}
}

// TestVersionFlag_13: --version prints the version the version command
// prints, in cobra's words ("peapod version V"), without root.
func TestVersionFlag_13(t *testing.T) {
	out, stderr, code := runPeapod(t, nil, "--version")
	if code != 0 || !strings.HasPrefix(out, "peapod version ") || strings.Count(out, "\n") != 1 {
		t.Errorf("--version: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	vout, _, _ := runPeapod(t, nil, "version")
	if first, _, _ := strings.Cut(vout, "\n"); "peapod version "+strings.TrimPrefix(first, "peapod ")+"\n" != out {
		t.Errorf("--version %q differs from the first line of version %q", out, vout)
	}
}

// fakeRoot makes a root whose name index lists pods (namespace_name
// files), which is all completion reads.
func fakeRoot(t *testing.T, pods ...string) string {
	t.Helper()
	root := t.TempDir()
	names := filepath.Join(root, "names")
	if err := os.MkdirAll(names, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		ns, name, _ := strings.Cut(p, "/")
		if err := os.WriteFile(filepath.Join(names, ns+"_"+name), []byte("uid-"+name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestCompletionNames: the completion handler offers the pods of the -n
// namespace, and get's resource words first.
func TestCompletionNames(t *testing.T) {
	root := fakeRoot(t, "default/web", "default/db", "other/x")
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"logs", ""}, []string{"db", "web"}},
		{[]string{"logs", "w"}, []string{"web"}},
		{[]string{"-n", "other", "describe", ""}, []string{"x"}},
		{[]string{"stop", "web", ""}, []string{"db"}},
		{[]string{"get", ""}, []string{"db", "pod", "pods", "web"}},
		{[]string{"-n", ""}, []string{"default", "other"}},
		{[]string{"logs", "web", ""}, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			args := append([]string{"__complete", "--root", root}, tt.args...)
			out, stderr, code := runPeapod(t, nil, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var got []string
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				if l != "" && !strings.HasPrefix(l, ":") {
					got = append(got, l)
				}
			}
			sort.Strings(got)
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("completions %q, want %q", got, tt.want)
			}
		})
	}
}

// TestBashCompletionScript_13: the script `peapod completion bash` writes
// loads in bash (with the bash-completion package provision.sh installs)
// and completes a pod name of the namespace.
func TestBashCompletionScript_13(t *testing.T) {
	const bashCompletion = "/usr/share/bash-completion/bash_completion"
	if _, err := os.Stat(bashCompletion); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s missing: scripts/provision.sh installs bash-completion", bashCompletion)
		}
		t.Skipf("%s missing (scripts/provision.sh installs bash-completion)", bashCompletion)
	}
	bin := peapodBinary(t)
	for _, sh := range []string{"zsh", "fish"} {
		if out, stderr, code := runPeapod(t, nil, "completion", sh); code != 0 || !strings.Contains(out, "__complete") {
			t.Errorf("completion %s: exit %d, stderr %q, %d bytes without a __complete call", sh, code, stderr, len(out))
		}
	}
	script, stderr, code := runPeapod(t, nil, "completion", "bash")
	if code != 0 || !strings.Contains(script, "__start_peapod") {
		t.Fatalf("completion bash: exit %d, stderr %q", code, stderr)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "peapod.bash")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	root := fakeRoot(t, "default/web", "default/worker", "default/db", "other/wax")
	// Completes "peapod --root R logs w<TAB>" as bash would.
	// compopt works only inside a completion bash itself started: outside
	// one it fails without effect on COMPREPLY.
	prog := `source ` + bashCompletion + ` || exit 3
source "$1" || exit 4
complete -p peapod >/dev/null || exit 5
COMP_WORDS=("$2" --root "$3" logs w)
COMP_CWORD=4
COMP_LINE="${COMP_WORDS[*]}"
COMP_POINT=${#COMP_LINE}
__start_peapod
printf '%s\n' "${COMPREPLY[@]}"
`
	cmd := exec.Command("bash", "-c", prog, "bash", path, bin, root)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("bash: %v\nstderr: %s", err, errb.String())
	}
	got := strings.Fields(out.String())
	sort.Strings(got)
	if strings.Join(got, " ") != "web worker" {
		t.Errorf("bash completed %q, want web worker (stderr %s)", got, errb.String())
	}
}

// TestResourceArgs: get, describe and delete take kubectl's resource
// words (pod, pods, po, pod/NAME) and refuse another kind's by name.
func TestResourceArgs(t *testing.T) {
	tests := []struct {
		args    []string
		want    string
		wantErr string
	}{
		{[]string{"pods"}, "", ""},
		{[]string{"pod", "web", "db"}, "web db", ""},
		{[]string{"PO", "web"}, "web", ""},
		{[]string{"web"}, "web", ""},
		{[]string{"pod/web", "pods/db"}, "web db", ""},
		{[]string{"pod", "services"}, "services", ""},
		{[]string{"services"}, "", `no resource type "services"`},
		{[]string{"deploy", "web"}, "", `no resource type "deploy"`},
		{[]string{"svc/web"}, "", `no resource type "svc"`},
	}
	for _, tt := range tests {
		got, err := resourceArgs(tt.args)
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("resourceArgs(%q) = %q, %v; want an error saying %q", tt.args, got, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || strings.Join(got, " ") != tt.want):
			t.Errorf("resourceArgs(%q) = %q, %v; want %q", tt.args, got, err, tt.want)
		}
	}
}
