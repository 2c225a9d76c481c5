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

// BuildPeapod builds the CLI and its helpers into dir the way
// scripts/provision.sh does — peapod-init with cgo, statically (it runs
// inside containers' namespaces, where the host's libraries are not), the
// others as pure Go — plus the busybox image tar, all in parallel. extra
// commands (run from the module root) are built alongside.
func BuildPeapod(dir string, extra ...*exec.Cmd) (*Build, error) {
	root, err := ModuleRoot()
	if err != nil {
		return nil, err
	}
	return BuildPeapodFrom(root, dir, extra...)
}

// BuildPeapodFrom is BuildPeapod for the source tree at root, which may be
// another version of peapod (the upgrade test builds the baseline release
// with it).
func BuildPeapodFrom(root, dir string, extra ...*exec.Cmd) (*Build, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	b := &Build{Dir: dir, Peapod: filepath.Join(dir, "peapod"), BusyboxTar: filepath.Join(dir, "busybox.tar")}
	goBuild := func(cgo bool, out, pkg string, flags ...string) *exec.Cmd {
		c := exec.Command(goBin, append(append([]string{"build"}, flags...), "-o", out, pkg)...)
		c.Env = append(os.Environ(), "CGO_ENABLED=0")
		if cgo {
			c.Env = append(os.Environ(), "CGO_ENABLED=1")
		}
		return c
	}
	steps := []*exec.Cmd{
		exec.Command("bash", "scripts/mkimage-busybox.sh", b.BusyboxTar),
		goBuild(false, b.Peapod, "./cmd/peapod"),
		goBuild(false, filepath.Join(dir, "peapod-supervisor"), "./cmd/peapod-supervisor"),
		goBuild(false, filepath.Join(dir, "peapod-prober"), "./cmd/peapod-prober"),
		goBuild(true, filepath.Join(dir, "peapod-init"), "./cmd/peapod-init",
			"-tags", "osusergo,netgo", "-ldflags", "-linkmode external -extldflags -static"),
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
