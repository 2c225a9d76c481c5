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

// buildOnlyEnv names a directory for TestMain to build everything the suite
// needs into (what it builds itself otherwise), running no test; prebuiltEnv
// names such a directory for the suite to use instead of building. With
// them the suite runs where nothing can be compiled, or too slowly: a VM
// under emulation (scripts/vagrant-test.sh) gets the binaries built here.
const (
	buildOnlyEnv = "PEAPOD_E2E_BUILD_ONLY"
	prebuiltEnv  = "PEAPOD_E2E_PREBUILT"
)

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
	if dir := os.Getenv(buildOnlyEnv); dir != "" {
		if err := build(dir); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "e2e: built into %s; no test run (%s)\n", dir, buildOnlyEnv)
		return 0
	}
	if os.Geteuid() != 0 {
		return m.Run()
	}
	if dir := os.Getenv(prebuiltEnv); dir != "" {
		if err := usePrebuilt(dir); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
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
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("failed to resolve build directory: %w", err)
	}
	faultDir := filepath.Join(dir, "faultinject")
	if err := os.MkdirAll(faultDir, 0o755); err != nil {
		return err
	}
	faultBin = filepath.Join(faultDir, "peapod")
	fault := exec.Command(goTool(), "build", "-buildvcs=false", "-tags", "faultinject", "-o", faultBin, "./cmd/peapod")
	fault.Env = append(os.Environ(), "CGO_ENABLED=0")
	faultSup := exec.Command(goTool(), "build", "-buildvcs=false", "-tags", "faultinject", "-o", faultSupervisorBin(), "./cmd/peapod-supervisor")
	faultSup.Env = fault.Env
	if _, err := testutil.BuildPeapod(dir, fault, faultSup); err != nil {
		return err
	}
	bin := os.Getenv(binDirEnv)
	if bin == "" {
		bin = dir
	}
	setBins(dir, bin)
	for _, h := range testutil.Helpers {
		if h == "peapod-supervisor" {
			continue // built with the fault hook above
		}
		// The CLI looks for its helpers beside itself. Relative to the
		// build directory, so that it still holds once copied elsewhere
		// (buildOnlyEnv).
		target := filepath.Join("..", h)
		if bin != dir {
			target = filepath.Join(bin, h)
		}
		if err := os.Symlink(target, filepath.Join(faultDir, h)); err != nil {
			return err
		}
	}
	return nil
}

// setBins points the suite at the build in dir, testing the binaries in
// bin (dir itself unless binDirEnv says otherwise).
func setBins(dir, bin string) {
	busyboxTar = filepath.Join(dir, "busybox.tar")
	faultBin = filepath.Join(dir, "faultinject", "peapod")
	peapodBin = filepath.Join(bin, "peapod")
	helperBins = nil
	for _, h := range testutil.Helpers {
		helperBins = append(helperBins, filepath.Join(bin, h))
	}
}

// usePrebuilt points the suite at what build made in dir earlier
// (buildOnlyEnv), after checking that every file is there.
func usePrebuilt(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("failed to resolve %s: %w", prebuiltEnv, err)
	}
	bin := os.Getenv(binDirEnv)
	if bin == "" {
		bin = dir
	}
	setBins(dir, bin)
	for _, f := range append([]string{peapodBin, busyboxTar, faultBin, faultSupervisorBin()}, helperBins...) {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%s=%s is not a complete build (make one with %s): %w", prebuiltEnv, dir, buildOnlyEnv, err)
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
