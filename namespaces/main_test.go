package namespaces

import (
	"os"
	"testing"
)

// TestMain lets the test binary stand in for peapod-supervisor: StartContainer
// and StartReaper re-exec it with argv[1] selecting the in-namespace stage.
// Other modes of the supervisor binary (e.g. "exec") are dispatched here too.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case HelperInitArg:
			InitMain()
		case HelperReaperArg:
			ReaperMain()
		}
	}
	os.Exit(m.Run())
}
