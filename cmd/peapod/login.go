package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/peapod/peapod/image"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// loginFlags are login's flags.
type loginFlags struct {
	pullFlags        // --registry-config, --authfile, --insecure-registry
	username  string // -u
	password  string // -p
	stdin     bool   // --password-stdin
	logoutAll bool   // logout --all
}

func newLoginCommand(g *globals) *cobra.Command {
	var f loginFlags
	c := &cobra.Command{
		Use:   "login REGISTRY [-u USER] [-p PASSWORD | --password-stdin]",
		Short: "Log in to a registry: check the credentials and store them in the auth file",
		Long: "Check USER and PASSWORD against REGISTRY (HOST[:PORT]; docker.io for Docker Hub) and store them in\n" +
			"the auth file ($REGISTRY_AUTH_FILE, else /run/containers/<uid>/auth.json, as podman login), which\n" +
			"pulls read before Docker's config.json. The registry config's CAs and client certificates apply.",
		Example: "  sudo peapod login registry.lab:5000 -u alice\n  echo \"$TOKEN\" | sudo peapod login ghcr.io -u alice --password-stdin",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return executeLogin(cmd.Context(), args[0], f, os.Stdin, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	c.Flags().StringVarP(&f.username, "username", "u", "", "user name (asked for on a terminal when not given)")
	c.Flags().StringVarP(&f.password, "password", "p", "", "password (visible to other users in ps: prefer --password-stdin)")
	c.Flags().BoolVar(&f.stdin, "password-stdin", false, "read the password from standard input")
	c.Flags().StringSliceVar(&f.insecure, "insecure-registry", nil, "HOST[:PORT] of a registry that may be reached over plain HTTP")
	f.addConfigFlags(c.Flags())
	return c
}

func newLogoutCommand(*globals) *cobra.Command {
	var f loginFlags
	c := &cobra.Command{
		Use:     "logout [REGISTRY | --all]",
		Short:   "Remove a registry's credentials from the auth file",
		Example: "  sudo peapod logout registry.lab:5000\n  sudo peapod logout --all",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == f.logoutAll {
				return errors.New("logout: name one REGISTRY, or give --all")
			}
			host := ""
			if len(args) == 1 {
				host = args[0]
			}
			if err := image.Logout(host, f.authPath(), f.logoutAll); err != nil {
				return err
			}
			if f.logoutAll {
				fmt.Fprintln(cmd.OutOrStdout(), "Removed login credentials for all registries")
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "Removed login credentials for %s\n", host)
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&f.logoutAll, "all", "a", false, "remove every registry's credentials")
	f.addConfigFlags(c.Flags())
	return c
}

// authPath is --authfile, or the default auth file.
func (f *loginFlags) authPath() string {
	if f.authfile != "" {
		return f.authfile
	}
	return image.DefaultAuthFile()
}

func executeLogin(ctx context.Context, host string, f loginFlags, in *os.File, out, errw io.Writer) error {
	if f.stdin && f.password != "" {
		return errors.New("login: --password and --password-stdin are mutually exclusive")
	}
	if f.stdin && f.username == "" {
		return errors.New("login: --password-stdin needs --username")
	}
	tty := term.IsTerminal(int(in.Fd()))
	user, pass := f.username, f.password
	switch {
	case f.stdin:
		data, err := io.ReadAll(io.LimitReader(in, 1<<20))
		if err != nil {
			return fmt.Errorf("failed to read the password from standard input: %w", err)
		}
		pass = strings.TrimRight(string(data), "\r\n")
	case user == "" || pass == "":
		if !tty {
			return errors.New("login: give --username and --password or --password-stdin (standard input is not a terminal)")
		}
		r := bufio.NewReader(in)
		if user == "" {
			fmt.Fprint(errw, "Username: ")
			line, err := r.ReadString('\n')
			if err != nil {
				return fmt.Errorf("failed to read the user name: %w", err)
			}
			user = strings.TrimSpace(line)
		}
		if pass == "" {
			fmt.Fprint(errw, "Password: ")
			b, err := term.ReadPassword(int(in.Fd()))
			fmt.Fprintln(errw)
			if err != nil {
				return fmt.Errorf("failed to read the password: %w", err)
			}
			pass = string(b)
		}
	}
	if user == "" || pass == "" {
		return errors.New("login: the user name and the password must not be empty")
	}
	opts, err := f.options()
	if err != nil {
		return err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if err := image.Login(ctx, host, user, pass, f.authPath(), opts); err != nil {
		return err
	}
	fmt.Fprintln(out, "Login Succeeded!")
	return nil
}
