package main

import "testing"

// TestSplitNameAndHumanSize checks image ls's REPOSITORY/TAG split and SIZE.
func TestSplitNameAndHumanSize(t *testing.T) {
	for in, want := range map[string][2]string{
		"busybox:latest":                   {"busybox", "latest"},
		"127.0.0.1:5000/busybox:1":         {"127.0.0.1:5000/busybox", "1"},
		"127.0.0.1:5000/busybox@sha256:ab": {"127.0.0.1:5000/busybox", "<none>"},
		"":                                 {"<none>", "<none>"},
	} {
		if repo, tag := splitName(in); repo != want[0] || tag != want[1] {
			t.Errorf("splitName(%q) = %q, %q; want %q", in, repo, tag, want)
		}
	}
	for n, want := range map[int64]string{12: "12B", 4_270_000: "4.27MB", 1_500_000_000: "1.5GB", 2048: "2.05kB"} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
}
