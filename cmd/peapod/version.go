package main

import (
	"fmt"

	"github.com/peapod/peapod/runtime/spec"
	"github.com/peapod/peapod/runtime/state"
	"github.com/peapod/peapod/runtime/supervisor"
	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print peapod's version and the versions of its formats",
		Example: "  peapod version",
		Args:    cobra.NoArgs,
		// version works without root.
		PersistentPreRunE: func(*cobra.Command, []string) error { return nil },
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "peapod %s\nspec %s\nstate %s\nprotocol %s\n", version, spec.Version, state.Version, supervisor.ProtocolVersion)
			return nil
		},
	}
}
