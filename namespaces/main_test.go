package namespaces

import (
	"os"
	"testing"
)

// TestMain lets the test binary stand in for peapod-supervisor: StartReaper
// re-execs it with argv[1] selecting the reaper. The container start and
// exec are tested with their child side, in package containerinit.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == HelperReaperArg {
		ReaperMain()
	}
	os.Exit(m.Run())
}
