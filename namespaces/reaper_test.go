package namespaces

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/testutil"
)

func TestReaperExitsOnTerm(t *testing.T) {
	testutil.RequireRoot(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatalf("failed to find test binary: %v", err)
	}
	pid, err := StartReaper(self)
	if err != nil {
		t.Fatalf("StartReaper: %v", err)
	}
	if err := unix.Kill(pid, unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
		t.Fatal(err)
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		t.Errorf("reaper ended with %#x after SIGTERM, want exit 0", ws)
	}
}
