package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func newGcCommand(g *globals) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "gc [--dry-run]",
		Short: "Remove what a crash left behind: leases, bridge ports, netns pins, cgroups and run dirs of gone pods",
		Long: "gc releases the kernel objects and lease of a pod whose supervisor died and whose processes are gone\n" +
			"(the pod stays, Unknown/SupervisorLost, until rm), removes whole the pods whose run or rm was killed\n" +
			"(CreatorLost, RemoverLost), and everything of this root that no pod names. A pod whose record cannot\n" +
			"be read is left alone, with the reason (rm -f removes it). It takes the same lock as run, skips pods a\n" +
			"running run or rm holds, and touches only what this root created; a second gc finds nothing.",
		Example: "  sudo peapod gc --dry-run\n  sudo peapod gc",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return executeGc(g, dryRun, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only list what would be removed")
	return cmd
}

func executeGc(g *globals, dryRun bool, out io.Writer) error {
	m, err := g.manager()
	if err != nil {
		return err
	}
	items, err := m.GC(dryRun)
	verb := "removed"
	if dryRun {
		verb = "would remove"
	}
	collected := 0
	for _, it := range items {
		if it.Kept {
			fmt.Fprintf(out, "left %s %s alone: %s\n", it.Kind, it.Name, it.Reason)
			continue
		}
		collected++
		fmt.Fprintf(out, "%s %s %s: %s\n", verb, it.Kind, it.Name, it.Reason)
	}
	if collected == 0 {
		fmt.Fprintln(out, "nothing to collect")
	}
	return err
}
