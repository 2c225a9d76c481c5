package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/duration"
)

func newPsCommand(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:     "ps",
		Aliases: []string{"list"},
		Short:   "List pods, like kubectl get pods",
		Example: "  sudo peapod ps\n  sudo peapod ps -A",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return executePs(g, all, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list pods of every namespace")
	return cmd
}

func executePs(g *globals, all bool, out io.Writer) error {
	m, err := g.manager()
	if err != nil {
		return err
	}
	ns := g.namespace
	if all {
		ns = ""
	}
	views, err := m.List(ns)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tNAME\tREADY\tSTATUS\tRESTARTS\tAGE\tIP")
	now := time.Now()
	for _, v := range views {
		ready, total := v.Ready()
		ip := v.Record.IP
		if ip == "" {
			ip = "<none>"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%d\t%s\t%s\n", v.Record.Namespace, v.Record.Name, ready, total,
			v.DisplayStatus(), v.Restarts(), duration.HumanDuration(v.Age(now)), ip)
	}
	return tw.Flush()
}
