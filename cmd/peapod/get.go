package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

func newGetCommand(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "get POD [-o json|yaml]",
		Short:   "Print a pod as a v1.Pod with its live status, like kubectl get pod -o json",
		Example: "  sudo peapod get web -o json\n  sudo peapod get web -o yaml",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return executeGet(g, args[0], output, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "json", "output format: json or yaml")
	return cmd
}

func executeGet(g *globals, name, output string, out io.Writer) error {
	if output != "json" && output != "yaml" {
		return fmt.Errorf("unknown --output %q: use json or yaml", output)
	}
	m, err := g.manager()
	if err != nil {
		return err
	}
	v, err := m.Get(g.namespace, name)
	if err != nil {
		return err
	}
	p, err := v.KubePod()
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(p, "", "    ")
	if err != nil {
		return fmt.Errorf("failed to encode pod %s: %w", name, err)
	}
	if output == "yaml" {
		if b, err = yaml.JSONToYAML(b); err != nil {
			return fmt.Errorf("failed to encode pod %s as YAML: %w", name, err)
		}
	}
	_, err = fmt.Fprintf(out, "%s\n", b)
	return err
}
