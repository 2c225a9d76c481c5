package containerinit

import (
	"os"
	"testing"

	"github.com/peapod/peapod/namespaces"
)

// TestMain lets the test binary stand in for peapod-init (and for the
// supervisor's reaper): namespaces.StartContainer and namespaces.StartReaper
// re-exec it with argv[1] selecting the stage. `exec` is dispatched in
// exec_test.go's init, before the runtime would start TestMain.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case namespaces.HelperInitArg:
			InitMain()
		case namespaces.HelperReaperArg:
			namespaces.ReaperMain()
		}
	}
	os.Exit(m.Run())
}
