package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func newInspectCommand(g *globals) *cobra.Command {
	var tree bool
	cmd := &cobra.Command{
		Use:     "inspect POD",
		Short:   "Print the runtime view of a pod: supervisor, namespaces and their inodes, containers' pids",
		Example: "  sudo peapod inspect web\n  sudo peapod inspect web | jq .namespaces\n  sudo peapod inspect web --tree",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if tree {
				return executeInspectTree(g, args[0], cmd.OutOrStdout())
			}
			return executeInspect(g, args[0], cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&tree, "tree", false, "draw the pod: shared namespaces, each container's own namespaces and processes (host pid and pid inside), and the network path eth0 → veth → bridge → host")
	return cmd
}

func executeInspect(g *globals, name string, out io.Writer) error {
	m, err := g.manager()
	if err != nil {
		return err
	}
	in, err := m.Inspect(g.namespace, name)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(in, "", "  ")
	if err != nil {
		return fmt.Errorf("failed to encode inspect of pod %s: %w", name, err)
	}
	_, err = fmt.Fprintf(out, "%s\n", b)
	return err
}
