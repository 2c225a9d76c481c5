package image

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// ErrNotLoggedIn is returned by Logout for a registry the file has no
// credentials for.
var ErrNotLoggedIn = errors.New("not logged in")

// DefaultAuthFile is where login writes and pulls first look, as podman:
// $REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json for a
// user other than root, else /run/containers/<uid>/auth.json.
func DefaultAuthFile() string {
	if p := os.Getenv("REGISTRY_AUTH_FILE"); p != "" {
		return p
	}
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" && os.Geteuid() != 0 {
		return filepath.Join(dir, "containers", "auth.json")
	}
	return fmt.Sprintf("/run/containers/%d/auth.json", os.Geteuid())
}

// DefaultKeychain finds a registry's credentials in the containers'
// auth.json (DefaultAuthFile), then in Docker's config ($DOCKER_CONFIG or
// ~/.docker/config.json, credential helpers included).
func DefaultKeychain() authn.Keychain {
	// A default path the user cannot read (/run/containers is root's) has
	// no credentials for them; a file they named must be readable.
	named := os.Getenv("REGISTRY_AUTH_FILE") != ""
	return authn.NewMultiKeychain(authFileKeychain{path: DefaultAuthFile(), mayBeUnreadable: !named}, authn.DefaultKeychain)
}

// AuthFileKeychain reads credentials from an auth.json (or Docker
// config.json) at path on every lookup; a missing file has none.
func AuthFileKeychain(path string) authn.Keychain {
	return authFileKeychain{path: path}
}

type authFileKeychain struct {
	path            string // the auth file
	mayBeUnreadable bool   // a permission error means no credentials
}

func (k authFileKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	data, err := os.ReadFile(k.path)
	if errors.Is(err, fs.ErrNotExist) || k.mayBeUnreadable && errors.Is(err, fs.ErrPermission) {
		return authn.Anonymous, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read auth file: %w", err)
	}
	kc, err := ParseAuthConfig(data)
	if err != nil {
		return nil, fmt.Errorf("auth file %s: %w", k.path, err)
	}
	return kc.Resolve(r)
}

// AuthConfig is the credentials of an auth.json, a Docker config.json or a
// kubernetes.io/dockerconfigjson Secret, keyed by registry host or by
// host/repository prefix.
type AuthConfig map[string]authn.AuthConfig

var _ authn.Keychain = AuthConfig(nil)

// authEntry is one entry of "auths".
type authEntry struct {
	Auth          string `json:"auth,omitempty"`
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
}

// ParseAuthConfig reads {"auths": {KEY: {"auth": base64(user:password)}}}
// as auth.json, config.json and .dockerconfigjson have it.
func ParseAuthConfig(data []byte) (AuthConfig, error) {
	var f struct {
		Auths map[string]authEntry `json:"auths"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("failed to decode credentials: %w", err)
	}
	return authConfigOf(f.Auths)
}

// ParseDockercfg reads the legacy .dockercfg form: {KEY: {"auth": …}}.
func ParseDockercfg(data []byte) (AuthConfig, error) {
	var auths map[string]authEntry
	if err := json.Unmarshal(data, &auths); err != nil {
		return nil, fmt.Errorf("failed to decode credentials: %w", err)
	}
	return authConfigOf(auths)
}

func authConfigOf(auths map[string]authEntry) (AuthConfig, error) {
	out := AuthConfig{}
	for key, e := range auths {
		c := authn.AuthConfig{Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken}
		if e.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(e.Auth)
			if err != nil {
				return nil, fmt.Errorf("credentials for %q: auth is not base64: %w", key, err)
			}
			user, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				return nil, fmt.Errorf("credentials for %q: auth is not USER:PASSWORD", key)
			}
			c.Username, c.Password = user, pass
		}
		out[authKey(key)] = c
	}
	return out, nil
}

// authKey normalises a credentials key: no scheme, no Docker Hub /v1/,
// docker.io for Docker Hub's aliases.
func authKey(key string) string {
	key = strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	key = strings.TrimSuffix(strings.TrimSuffix(key, "/v1/"), "/")
	host, rest, _ := strings.Cut(key, "/")
	if rest != "" {
		return hostKey(host) + "/" + rest
	}
	return hostKey(host)
}

// Resolve finds the credentials of the longest key matching the resource:
// host/repository prefixes first, then the host (as podman reads auth.json).
func (a AuthConfig) Resolve(r authn.Resource) (authn.Authenticator, error) {
	host := hostKey(r.RegistryStr())
	path := host
	if repo, ok := r.(name.Repository); ok {
		path = host + "/" + repo.RepositoryStr()
	}
	for p := path; ; {
		if c, ok := a[p]; ok {
			return authn.FromConfig(c), nil
		}
		i := strings.LastIndex(p, "/")
		if i < 0 {
			return authn.Anonymous, nil
		}
		p = p[:i]
	}
}

// Login checks user and password against registry host (a GET of /v2/
// with them, through the registry config's TLS settings) and stores them
// in the auth file at path, as podman login does.
func Login(ctx context.Context, host, user, password, path string, opts PullOptions) error {
	host = hostKey(strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(host, "https://"), "http://"), "/"))
	regName := host
	if host == "docker.io" {
		regName = name.DefaultRegistry
	}
	var nopts []name.Option
	tr := newRegistryTransport(opts.Transport, opts.Registries, opts.Insecure)
	if tr.plainHTTPAllowed(regName) && !isLoopback(regName) {
		nopts = append(nopts, name.Insecure)
	}
	reg, err := name.NewRegistry(regName, nopts...)
	if err != nil {
		return fmt.Errorf("invalid registry %q: %w", host, err)
	}
	auth := &authn.Basic{Username: user, Password: password}
	rt, err := transport.NewWithContext(ctx, reg, auth, tr, nil)
	if err != nil {
		return fmt.Errorf("failed to log in to registry %s: %s%w", host, describeStatus(err), err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, reg.Scheme()+"://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return fmt.Errorf("failed to log in to registry %s: %w", host, err)
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return fmt.Errorf("failed to log in to registry %s: %s%w", host, describeStatus(err), err)
	}
	return updateAuthFile(path, func(auths map[string]json.RawMessage) error {
		for k := range auths {
			if authKey(k) == host {
				delete(auths, k) // an older spelling of the same key
			}
		}
		entry, err := json.Marshal(authEntry{Auth: base64.StdEncoding.EncodeToString([]byte(user + ":" + password))})
		if err != nil {
			return err
		}
		auths[host] = entry
		return nil
	})
}

// Logout removes host's credentials from the auth file at path; all
// removes every registry's.
func Logout(host, path string, all bool) error {
	host = hostKey(host)
	return updateAuthFile(path, func(auths map[string]json.RawMessage) error {
		found := false
		for k := range auths {
			if all || authKey(k) == host {
				delete(auths, k)
				found = true
			}
		}
		if !found && !all {
			return fmt.Errorf("registry %s in %s: %w", host, path, ErrNotLoggedIn)
		}
		return nil
	})
}

// updateAuthFile rewrites the auth file's "auths" with edit, keeping its
// other keys (a Docker config's credsStore, say), atomically and 0600.
func updateAuthFile(path string, edit func(map[string]json.RawMessage) error) error {
	top := map[string]json.RawMessage{}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("failed to read auth file: %w", err)
	default:
		if err := json.Unmarshal(data, &top); err != nil {
			return fmt.Errorf("failed to decode auth file %s: %w", path, err)
		}
	}
	auths := map[string]json.RawMessage{}
	if raw, ok := top["auths"]; ok {
		if err := json.Unmarshal(raw, &auths); err != nil {
			return fmt.Errorf("failed to decode auths of auth file %s: %w", path, err)
		}
	}
	if err := edit(auths); err != nil {
		return err
	}
	raw, err := json.Marshal(auths)
	if err != nil {
		return err
	}
	top["auths"] = raw
	out, err := json.MarshalIndent(top, "", "\t")
	if err != nil {
		return err
	}
	// 0700: the directory holds passwords, as podman's /run/containers/0.
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("failed to create auth file dir: %w", err)
	}
	return writeFileAtomic(path, append(out, '\n'))
}
