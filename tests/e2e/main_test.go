package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// binDirEnv names a directory holding peapod and peapod-supervisor to test
// instead of building them from this tree.
const binDirEnv = "PEAPOD_E2E_BINDIR"

// helpers are the binaries the CLI looks for beside itself.
var helpers = []string{"peapod-supervisor", "peapod-init"}

// Built once by TestMain for every test of the package.
var (
	// peapodBin is the built CLI; its helpers lie beside it, where
	// the CLI looks for it.
	peapodBin string
	// helperBins are the built helper binaries beside peapodBin.
	helperBins []string
	// busyboxTar is the test image built by scripts/mkimage-busybox.sh.
	busyboxTar string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

// runMain builds the binaries and the image unless not root (then every
// test skips, or fails under CI=true, through testutil.RequireRoot), runs
// the tests and removes the build directory.
func runMain(m *testing.M) int {
	if os.Geteuid() != 0 {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "peapod-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := build(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}

// build compiles peapod and peapod-supervisor into dir (the supervisor
// statically, as scripts/provision.sh does, since it runs inside
// containers' namespaces) and builds the busybox image tar.
func build(dir string) error {
	modRoot, err := moduleRoot()
	if err != nil {
		return err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	peapodBin = filepath.Join(dir, "peapod")
	busyboxTar = filepath.Join(dir, "busybox.tar")
	steps := []*exec.Cmd{exec.Command("bash", "scripts/mkimage-busybox.sh", busyboxTar)}
	bin := os.Getenv(binDirEnv)
	if bin == "" {
		bin = dir
		steps = append(steps, exec.Command(goBin, "build", "-o", peapodBin, "./cmd/peapod"))
	}
	// Test installed (or separately built) binaries when binDirEnv is set.
	peapodBin = filepath.Join(bin, "peapod")
	for _, h := range helpers {
		if _, err := os.Stat(filepath.Join(modRoot, "cmd", h)); err != nil {
			continue // not (or no longer) a binary of this tree
		}
		helperBins = append(helperBins, filepath.Join(bin, h))
		if bin != dir {
			continue
		}
		// Static, as scripts/provision.sh builds them: they run inside
		// containers' namespaces, where the host's libraries are not.
		c := exec.Command(goBin, "build", "-tags", "osusergo,netgo",
			"-ldflags", "-linkmode external -extldflags -static", "-o", filepath.Join(dir, h), "./cmd/"+h)
		c.Env = append(os.Environ(), "CGO_ENABLED=1")
		steps = append(steps, c)
	}
	for _, c := range steps {
		c.Dir = modRoot
		if out, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("failed to run %q: %w\n%s", strings.Join(c.Args, " "), err, out)
		}
	}
	return nil
}

// moduleRoot finds the directory holding go.mod, upwards from the test's
// working directory (the package directory under go test).
func moduleRoot() (string, error) {
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
