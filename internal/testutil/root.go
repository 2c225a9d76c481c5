// Package testutil holds helpers shared by peapod's tests.
package testutil

import (
	"os"
	"testing"
)

// RequireRoot skips a kernel-tier test when not running as root, except
// under CI=true, where a skip would hide a missing test and so fails.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s needs root, and CI=true forbids skipping it", t.Name())
	}
	t.Skipf("%s needs root", t.Name())
}
