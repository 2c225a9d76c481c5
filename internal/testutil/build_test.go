package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// writeTree writes files (path → content) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// runBuildScript runs this tree's scripts/build.sh in dir into out.
func runBuildScript(t *testing.T, dir, out string) (string, error) {
	t.Helper()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	c := exec.Command("bash", filepath.Join(root, "scripts", "build.sh"), out)
	c.Dir = dir
	c.Env = append(os.Environ(), "GO="+goBin)
	b, err := c.CombinedOutput()
	return string(b), err
}

const versionMain = `package main

import "fmt"

var version = "unset"

func main() { fmt.Println(version) }
`

// TestBuildScriptBuildsAnotherTree: build.sh builds the tree it runs in,
// as BuildPeapodFrom uses it for an older release — the commands that tree
// has (an old release may lack some), stamped with its version: "dev" for a
// tree that is not a checkout of its own, even when it was extracted inside
// another checkout, whose description would be wrong.
func TestBuildScriptBuildsAnotherTree(t *testing.T) {
	outer, out := t.TempDir(), t.TempDir()
	git := func(args ...string) {
		c := exec.Command("git", append([]string{"-C", outer, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		if b, err := c.CombinedOutput(); err != nil {
			t.Fatalf("git %q: %v\n%s", args, err, b)
		}
	}
	git("init", "-q")
	git("commit", "-q", "--allow-empty", "-m", "outer")
	tree := filepath.Join(outer, "release")
	writeTree(t, tree, map[string]string{
		"go.mod":                        "module example.com/old\n\ngo 1.22\n",
		"cmd/peapod/main.go":            versionMain,
		"cmd/peapod-supervisor/main.go": versionMain,
	})
	if msg, err := runBuildScript(t, tree, out); err != nil {
		t.Fatalf("build.sh: %v\n%s", err, msg)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var built []string
	for _, e := range entries {
		built = append(built, e.Name())
	}
	if strings.Join(built, " ") != "peapod peapod-supervisor" {
		t.Fatalf("built %q, want peapod and peapod-supervisor only", built)
	}
	v, err := exec.Command(filepath.Join(out, "peapod")).Output()
	if err != nil || strings.TrimSpace(string(v)) != "dev" {
		t.Fatalf("built peapod prints version %q (%v), want dev", v, err)
	}
}

// TestBuildScriptNamesWhatFailed: a command that does not compile fails the
// build with its name and the compiler's message.
func TestBuildScriptNamesWhatFailed(t *testing.T) {
	tree := t.TempDir()
	writeTree(t, tree, map[string]string{
		"go.mod":                    "module example.com/broken\n\ngo 1.22\n",
		"cmd/peapod/main.go":        versionMain,
		"cmd/peapod-prober/main.go": "package main\n\nfunc main() { undefinedThing() }\n",
	})
	msg, err := runBuildScript(t, tree, t.TempDir())
	if err == nil || !strings.Contains(msg, "failed to build peapod-prober") || !strings.Contains(msg, "undefinedThing") {
		t.Fatalf("build.sh of a broken tree: err %v, output:\n%s", err, msg)
	}
}
