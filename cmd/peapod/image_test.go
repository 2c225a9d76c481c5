package main

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
)

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

// TestPullFlags checks --creds and --platform parsing.
func TestPullFlags(t *testing.T) {
	opts, err := (&pullFlags{creds: "alice:pa:ss", platform: "linux/arm64", insecure: []string{"r:5000"}}).options()
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := opts.Auth.(*authn.Basic); !ok || b.Username != "alice" || b.Password != "pa:ss" {
		t.Errorf("--creds alice:pa:ss gave %#v", opts.Auth)
	}
	if opts.Platform == nil || opts.Platform.Architecture != "arm64" || len(opts.Insecure) != 1 {
		t.Errorf("options = %+v", opts)
	}
	for _, bad := range []pullFlags{{creds: "alice"}, {creds: ":x"}, {platform: "linux"}} {
		if _, err := bad.options(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
