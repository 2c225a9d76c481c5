package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/peapod/peapod/internal/testutil"
)

// binDirEnv names a directory holding peapod and its helpers to test
// instead of building them from this tree.
const binDirEnv = "PEAPOD_E2E_BINDIR"

// Built once by TestMain for every test of the package.
var (
	// peapodBin is the built CLI; its helpers lie beside it, where
	// the CLI looks for it.
	peapodBin string
	// helperBins are the built helper binaries beside peapodBin.
	helperBins []string
	// busyboxTar is the test image built by scripts/mkimage-busybox.sh.
	busyboxTar string
	// faultBin is peapod built with the faultinject tag (PEAPOD_FAULT
	// fails or kills run and rm after a given step), its helpers beside it.
	faultBin string
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

// build compiles peapod and its helpers into dir as scripts/provision.sh
// does and builds the busybox image tar; with binDirEnv set, the binaries
// there are tested instead.
func build(dir string) error {
	faultDir := filepath.Join(dir, "faultinject")
	if err := os.Mkdir(faultDir, 0o755); err != nil {
		return err
	}
	faultBin = filepath.Join(faultDir, "peapod")
	fault := exec.Command(goTool(), "build", "-buildvcs=false", "-tags", "faultinject", "-o", faultBin, "./cmd/peapod")
	fault.Env = append(os.Environ(), "CGO_ENABLED=0")
	faultSup := exec.Command(goTool(), "build", "-buildvcs=false", "-tags", "faultinject", "-o", faultSupervisorBin(), "./cmd/peapod-supervisor")
	faultSup.Env = fault.Env
	b, err := testutil.BuildPeapod(dir, fault, faultSup)
	if err != nil {
		return err
	}
	busyboxTar = b.BusyboxTar
	bin := os.Getenv(binDirEnv)
	if bin == "" {
		bin = dir
	}
	peapodBin = filepath.Join(bin, "peapod")
	for _, h := range testutil.Helpers {
		helperBins = append(helperBins, filepath.Join(bin, h))
		if h == "peapod-supervisor" {
			continue // built with the fault hook above
		}
		// The CLI looks for its helpers beside itself.
		if err := os.Symlink(filepath.Join(bin, h), filepath.Join(faultDir, h)); err != nil {
			return err
		}
	}
	return nil
}

// faultSupervisorBin is peapod-supervisor built with the faultinject tag
// (PEAPOD_SUPERVISOR_FAULT kills it after a step of a container start),
// beside faultBin.
func faultSupervisorBin() string {
	return filepath.Join(filepath.Dir(faultBin), "peapod-supervisor")
}

// goTool is the go command: on PATH, or where provision.sh installs it.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}
