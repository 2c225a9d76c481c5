package image

import (
	"encoding/json"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ImportOption adjusts an import.
type ImportOption func(*importOptions)

// importOptions are what the ImportOptions chose.
type importOptions struct {
	// changes are Dockerfile instructions applied to the config of an
	// image synthesised from a plain root filesystem tar.
	changes []string
}

// WithChanges applies Dockerfile instructions (CMD, ENTRYPOINT, ENV,
// WORKDIR, USER) to the configuration of an image imported from a plain
// root filesystem tar, as `docker import --change` and `podman import
// --change` do. An archive that carries its own configuration (docker
// save, OCI) is refused with changes: its image ID is the digest of that
// configuration, which a change would silently alter.
func WithChanges(changes ...string) ImportOption {
	return func(o *importOptions) { o.changes = append(o.changes, changes...) }
}

// collect applies opts.
func collect(opts []ImportOption) importOptions {
	var o importOptions
	for _, f := range opts {
		f(&o)
	}
	return o
}

// ParseChanges checks changes without an archive, so a command line can
// be refused before anything is read.
func ParseChanges(changes []string) error {
	var c v1.Config
	return applyChanges(&c, changes)
}

// applyChanges applies Dockerfile instructions to c.
func applyChanges(c *v1.Config, changes []string) error {
	for _, ch := range changes {
		instr, arg, _ := strings.Cut(strings.TrimSpace(ch), " ")
		arg = strings.TrimSpace(arg)
		if arg == "" {
			return fmt.Errorf("change %q: %s needs an argument", ch, strings.ToUpper(instr))
		}
		switch strings.ToUpper(instr) {
		case "CMD":
			cmd, err := commandForm(ch, arg)
			if err != nil {
				return err
			}
			c.Cmd = cmd
		case "ENTRYPOINT":
			ep, err := commandForm(ch, arg)
			if err != nil {
				return err
			}
			// As in a Dockerfile, a new ENTRYPOINT resets the CMD set
			// before it.
			c.Entrypoint, c.Cmd = ep, nil
		case "ENV":
			k, v, ok := strings.Cut(arg, "=")
			if !ok {
				k, v, ok = strings.Cut(arg, " ")
			}
			if !ok || k == "" || strings.ContainsAny(k, " \t") {
				return fmt.Errorf("change %q: ENV needs NAME=VALUE", ch)
			}
			c.Env = setEnv(c.Env, k, strings.TrimSpace(v))
		case "WORKDIR":
			if !strings.HasPrefix(arg, "/") {
				return fmt.Errorf("change %q: WORKDIR must be an absolute path", ch)
			}
			c.WorkingDir = arg
		case "USER":
			c.User = arg
		default:
			return fmt.Errorf("change %q: unsupported instruction %q (CMD, ENTRYPOINT, ENV, WORKDIR and USER are)", ch, instr)
		}
	}
	return nil
}

// commandForm reads a CMD or ENTRYPOINT argument: a JSON array (the exec
// form), or anything else as a command for /bin/sh -c (the shell form).
func commandForm(ch, arg string) ([]string, error) {
	if !strings.HasPrefix(arg, "[") {
		return []string{"/bin/sh", "-c", arg}, nil
	}
	var argv []string
	if err := json.Unmarshal([]byte(arg), &argv); err != nil {
		return nil, fmt.Errorf("change %q: not a JSON array of strings: %w", ch, err)
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("change %q: empty command", ch)
	}
	return argv, nil
}

// setEnv sets k=v in env, replacing an earlier value of k.
func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if name, _, _ := strings.Cut(e, "="); name == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}
