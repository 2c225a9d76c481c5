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

// Requiref is for a test that needs something the provisioning installs
// (a Debian package, a binary): missing locally it skips with the reason;
// under CI=true, where provisioning ran, it fails.
func Requiref(t testing.TB, ok bool, format string, args ...any) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}
