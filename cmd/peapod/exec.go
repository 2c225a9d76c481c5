package main

import (
	"fmt"
	"os"
	"syscall"

	"github.com/spf13/cobra"
)

func newExecCommand(g *globals) *cobra.Command {
	var container string
	var stdin, tty bool
	cmd := &cobra.Command{
		Use:   "exec [-it] POD [-c CONTAINER] -- COMMAND [ARG...]",
		Short: "Run a command inside every namespace and the cgroup of a running container",
		Long: "The command joins the container's mount, PID, network, UTS, IPC and cgroup namespaces and its cgroup,\n" +
			"with the container's env, working directory, user, capabilities and no_new_privs. peapod exits with\n" +
			"the command's exit code.",
		Example: "  sudo peapod exec web -c app -- cat /etc/hostname\n  sudo peapod exec -it web -c sidecar -- sh",
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 {
				return fmt.Errorf("usage: peapod exec POD [-c CONTAINER] -- COMMAND [ARG...]")
			}
			return executeExec(g, args[0], container, args[1:])
		},
	}
	cmd.Flags().StringVarP(&container, "container", "c", "", "container name (default: the pod's only container)")
	// -i and -t are accepted for kubectl muscle memory: the command always
	// inherits peapod's own stdin, stdout and stderr (and so its terminal).
	cmd.Flags().BoolVarP(&stdin, "stdin", "i", false, "pass stdin to the command (always on)")
	cmd.Flags().BoolVarP(&tty, "tty", "t", false, "the command uses peapod's terminal (always, when there is one)")
	return cmd
}

// executeExec replaces peapod with the exec helper: no extra process stays
// around, stdio and the terminal pass through untouched, and the helper's
// exit code (the command's) becomes ours.
func executeExec(g *globals, name, container string, argv []string) error {
	m, err := g.manager()
	if err != nil {
		return err
	}
	c, err := m.ExecCommand(g.namespace, name, container, argv)
	if err != nil {
		return err
	}
	if c.Err != nil {
		return c.Err
	}
	if err := syscall.Exec(c.Path, c.Args, c.Env); err != nil {
		return fmt.Errorf("failed to exec %s: %w", c.Args[0], err)
	}
	os.Exit(0) // not reached
	return nil
}
