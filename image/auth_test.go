package image

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestAuthConfigResolve checks which credentials a reference gets: the
// longest host/repository key first, then the host; Docker Hub under any of
// its spellings; nothing for another registry.
func TestAuthConfigResolve(t *testing.T) {
	ac, err := ParseAuthConfig([]byte(`{"auths":{
		"https://index.docker.io/v1/": {"auth": "` + b64("hub:1") + `"},
		"reg.lab:5000": {"auth": "` + b64("host:2") + `"},
		"reg.lab:5000/team": {"username": "team", "password": "3"},
		"reg.lab:5000/team/app": {"auth": "` + b64("app:4") + `"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]string{
		"nginx":                         "hub:1",
		"docker.io/library/nginx":       "hub:1",
		"reg.lab:5000/other":            "host:2",
		"reg.lab:5000/team/x":           "team:3",
		"reg.lab:5000/team/app":         "app:4",
		"reg.lab:5000/team/application": "team:3", // a prefix of a path element is no match
		"reg.lab:5001/team/app":         "",
		"quay.io/team/app":              "",
	} {
		repo, err := name.NewRepository(ref)
		if err != nil {
			t.Fatal(err)
		}
		a, err := ac.Resolve(repo)
		if err != nil {
			t.Fatal(err)
		}
		cfg, _ := a.Authorization()
		if got := strings.Trim(cfg.Username+":"+cfg.Password, ":"); got != want {
			t.Errorf("%s: credentials %q, want %q", ref, got, want)
		}
	}
	for _, bad := range []string{`{"auths":{"r":{"auth":"%%%"}}}`, `{"auths":{"r":{"auth":"` + b64("nocolon") + `"}}}`, `[]`} {
		if _, err := ParseAuthConfig([]byte(bad)); err == nil {
			t.Errorf("ParseAuthConfig(%s) accepted", bad)
		}
	}
	legacy, err := ParseDockercfg([]byte(`{"reg.lab:5000": {"auth": "` + b64("old:5") + `"}}`))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := legacy.Resolve(name.MustParseReference("reg.lab:5000/x:1").Context())
	if cfg, _ := a.Authorization(); cfg.Username != "old" {
		t.Errorf("dockercfg credentials = %+v", cfg)
	}
}

// TestAuthFileKeychain: a missing file has no credentials; a named file
// that cannot be read or parsed is an error naming it; the default path
// unreadable by this user (root's /run/containers) is no credentials.
func TestAuthFileKeychain(t *testing.T) {
	dir := t.TempDir()
	res := name.MustParseReference("reg.lab:5000/x:1").Context()
	if a, err := AuthFileKeychain(filepath.Join(dir, "absent.json")).Resolve(res); err != nil || a != authn.Anonymous {
		t.Errorf("absent auth file: %v, %v", a, err)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{"), 0o600)
	if _, err := AuthFileKeychain(bad).Resolve(res); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad auth file: %v, want an error naming it", err)
	}
	unreadable := authFileKeychain{path: dir, mayBeUnreadable: true} // a directory: reading it fails
	if _, err := unreadable.Resolve(res); err == nil {
		t.Errorf("an auth file that is a directory read without error")
	}
	t.Setenv("REGISTRY_AUTH_FILE", "")
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	if os.Geteuid() == 0 && DefaultAuthFile() != "/run/containers/0/auth.json" {
		t.Errorf("root's default auth file = %s", DefaultAuthFile())
	}
	if os.Geteuid() != 0 && DefaultAuthFile() != "/run/user/1000/containers/auth.json" {
		t.Errorf("a user's default auth file = %s", DefaultAuthFile())
	}
	t.Setenv("REGISTRY_AUTH_FILE", bad)
	if DefaultAuthFile() != bad {
		t.Errorf("$REGISTRY_AUTH_FILE ignored: %s", DefaultAuthFile())
	}
	if _, err := DefaultKeychain().Resolve(res); err == nil {
		t.Errorf("a broken $REGISTRY_AUTH_FILE resolved without error")
	}
}

// TestLogoutAndUpdateKeepsOtherKeys: logout removes one registry's entry
// (under any spelling of its key) and keeps the file's other keys; --all
// empties auths; logging out of a registry not logged in is ErrNotLoggedIn.
func TestLogoutAndUpdateKeepsOtherKeys(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "auth.json")
	if err := Logout("reg.lab", p, false); !errors.Is(err, ErrNotLoggedIn) {
		t.Errorf("logout with no file: %v", err)
	}
	os.MkdirAll(filepath.Dir(p), 0o700)
	os.WriteFile(p, []byte(`{"credsStore":"pass","auths":{"https://index.docker.io/v1/":{"auth":"`+b64("a:b")+`"},"reg.lab":{"auth":"`+b64("c:d")+`"}}}`), 0o600)
	if err := Logout("docker.io", p, false); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(p)
	if strings.Contains(string(data), "index.docker.io") || !strings.Contains(string(data), "reg.lab") || !strings.Contains(string(data), `"credsStore": "pass"`) {
		t.Errorf("after logout docker.io: %s", data)
	}
	if err := Logout("", p, true); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(p); strings.Contains(string(data), "reg.lab") {
		t.Errorf("after logout --all: %s", data)
	}
}
