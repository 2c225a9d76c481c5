package main

import (
	"github.com/spf13/cobra"
)

func newPsCommand(g *globals) *cobra.Command {
	l := &listFlags{}
	cmd := &cobra.Command{
		Use:     "ps [-A] [-l SELECTOR] [-o FORMAT] [-w]",
		Aliases: []string{"list"},
		Short:   "List pods, like kubectl get pods, with their NAMESPACE and IP",
		Long: "ps is `get pods` with the NAMESPACE and IP columns always shown; it takes get's flags.\n" +
			"A stopped pod shows no IP: its address was released.",
		Example: "  sudo peapod ps\n  sudo peapod ps -A -l app=web\n  sudo peapod ps -o name",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return executeList(g, l, nil, true, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	l.add(cmd.Flags())
	return cmd
}
