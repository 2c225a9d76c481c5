package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func newStopCommand(g *globals) *cobra.Command {
	var grace int64
	var selector string
	cmd := &cobra.Command{
		Use:   "stop POD... | -l SELECTOR [--grace-period N]",
		Short: "Stop pods gracefully and finally (preStop hooks, stop signal, grace period, SIGKILL)",
		Long: "Stop is final: restarts cease, preStop hooks run, the stop signal is sent, and after the grace period\n" +
			"SIGKILL reaches every process of the pod; its network is released. Status and logs stay until rm.",
		Example: "  sudo peapod stop web\n  sudo peapod stop web --grace-period 5",
		Args:    cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			args, err := namesOrSelector(g, args, selector, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			var gp *int64
			if cmd.Flags().Changed("grace-period") {
				gp = &grace
			}
			return executeStop(g, args, gp, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().Int64Var(&grace, "grace-period", -1, "seconds to wait after the stop signal (default: the pod's terminationGracePeriodSeconds)")
	addSelectorFlag(cmd.Flags(), &selector)
	return cmd
}

func executeStop(g *globals, names []string, grace *int64, out, errw io.Writer) error {
	if grace != nil && *grace < 0 {
		return fmt.Errorf("--grace-period must be 0 or more, got %d", *grace)
	}
	m, err := g.manager()
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		if v, err := m.Get(g.namespace, n); err == nil {
			announceGrace(v, grace, n, errw)
		}
		if err := m.Stop(g.namespace, n, grace); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(out, "pod/%s stopped\n", n)
	}
	return errors.Join(errs...)
}
