package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func newRmCommand(g *globals) *cobra.Command {
	var force bool
	var selector string
	cmd := &cobra.Command{
		Use:     "rm POD... | -l SELECTOR [-f]",
		Short:   "Remove stopped pods; -f kills running ones at once (SIGKILL) and removes them",
		Example: "  sudo peapod stop web && sudo peapod rm web\n  sudo peapod rm -f web",
		Args:    cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			g.shortLived()
			args, err := namesOrSelector(g, args, selector, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			return executeRm(g, args, force, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill a running pod at once and remove it")
	addSelectorFlag(cmd.Flags(), &selector)
	return cmd
}

func executeRm(g *globals, names []string, force bool, out io.Writer) error {
	m, err := g.manager()
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		if err := m.Remove(g.namespace, n, force); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(out, "pod/%s removed\n", n)
	}
	return errors.Join(errs...)
}
