package testutil

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// Helpers are the binaries the peapod CLI finds beside itself.
var Helpers = []string{"peapod-supervisor", "peapod-init", "peapod-prober"}

// Build is what BuildPeapod made.
type Build struct {
	// Dir holds peapod and its helpers side by side, as installed.
	Dir string
	// Peapod is the CLI.
	Peapod string
	// BusyboxTar is the test image from scripts/mkimage-busybox.sh.
	BusyboxTar string
}

// BuildPeapod builds the CLI and its helpers into dir with
// scripts/build.sh, as scripts/provision.sh does, plus the busybox image tar,
// all in parallel. extra commands (run from the module root) are built
// alongside.
func BuildPeapod(dir string, extra ...*exec.Cmd) (*Build, error) {
	root, err := ModuleRoot()
	if err != nil {
		return nil, err
	}
	return BuildPeapodFrom(root, dir, extra...)
}

// BuildPeapodFrom is BuildPeapod for the source tree at root, which may be
// another version of peapod (the upgrade test builds the baseline release
// with it). The build recipe is always this tree's scripts/build.sh, run
// with root as its working directory, so a release older than that script
// is built the same way; its image comes from its own mkimage script.
func BuildPeapodFrom(root, dir string, extra ...*exec.Cmd) (*Build, error) {
	self, err := ModuleRoot()
	if err != nil {
		return nil, err
	}
	// build.sh runs in root: a relative dir would land there.
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, fmt.Errorf("failed to resolve build directory: %w", err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	b := &Build{Dir: dir, Peapod: filepath.Join(dir, "peapod"), BusyboxTar: filepath.Join(dir, "busybox.tar")}
	build := exec.Command("bash", filepath.Join(self, "scripts", "build.sh"), dir)
	build.Env = append(os.Environ(), "GO="+goBin)
	steps := []*exec.Cmd{
		exec.Command("bash", "scripts/mkimage-busybox.sh", b.BusyboxTar),
		build,
	}
	steps = append(steps, extra...)
	var wg sync.WaitGroup
	errs := make([]error, len(steps))
	for i, c := range steps {
		c.Dir = root
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := c.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("failed to run %q: %w\n%s", strings.Join(c.Args, " "), err, out)
			}
		}()
	}
	wg.Wait()
	return b, errors.Join(errs...)
}

// ModuleRoot finds the directory holding go.mod, upwards from the working
// directory (a package's directory under go test).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("failed to get working directory: %w", err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if d == filepath.Dir(d) {
			return "", fmt.Errorf("no go.mod above %q", dir)
		}
	}
}
