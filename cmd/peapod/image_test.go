package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
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

// TestRegistryConfigFlag: --registry-config names a file that must exist
// and parse; without it a missing default is an empty configuration.
func TestRegistryConfigFlag(t *testing.T) {
	dir := t.TempDir()
	if _, err := (&pullFlags{registryConfig: filepath.Join(dir, "absent.toml")}).options(); err == nil || !strings.Contains(err.Error(), "absent.toml") {
		t.Errorf("a missing --registry-config: %v", err)
	}
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[registry.\"a.io\"]\nmirors = []\n"), 0o600)
	if _, err := (&pullFlags{registryConfig: bad}).options(); err == nil || !strings.Contains(err.Error(), "mirors") {
		t.Errorf("a config with a misspelt key: %v", err)
	}
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte("[registry.\"docker.io\"]\nmirrors = [\"m.lab:5000\"]\n"), 0o600)
	opts, err := (&pullFlags{registryConfig: good, authfile: filepath.Join(dir, "auth.json")}).options()
	if err != nil || opts.Registries == nil || len(opts.Registries.Hosts["docker.io"].Mirrors) != 1 || opts.Keychain == nil {
		t.Errorf("options = %+v, %v", opts, err)
	}
}

// TestLoginArgs refuses login command lines before any network use.
func TestLoginArgs(t *testing.T) {
	in, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	for _, tc := range []struct {
		f    loginFlags
		want string
	}{
		{loginFlags{password: "x", stdin: true, username: "u"}, "mutually exclusive"},
		{loginFlags{stdin: true}, "needs --username"},
		{loginFlags{username: "u"}, "not a terminal"},
		{loginFlags{username: "u", stdin: true}, "must not be empty"}, // /dev/null: an empty password
	} {
		err := executeLogin(context.Background(), "127.0.0.1:1", tc.f, in, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.f, err, tc.want)
		}
	}
}
