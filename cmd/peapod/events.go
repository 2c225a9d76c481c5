package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/duration"
)

func newEventsCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "events POD",
		Short:   "Print a pod's events, like kubectl get events",
		Example: "  sudo peapod events web",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return executeEvents(g, args[0], cmd.OutOrStdout())
		},
	}
}

func executeEvents(g *globals, name string, out io.Writer) error {
	m, err := g.manager()
	if err != nil {
		return err
	}
	v, err := m.Get(g.namespace, name)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "LAST SEEN\tTYPE\tREASON\tOBJECT\tMESSAGE")
	now := time.Now()
	for _, e := range m.Events(v).Items {
		seen := duration.HumanDuration(now.Sub(e.LastSeen))
		if e.Count > 1 {
			seen = fmt.Sprintf("%s (x%d over %s)", seen, e.Count, duration.HumanDuration(now.Sub(e.FirstSeen)))
		}
		obj := "pod/" + name
		if e.Object != "" {
			obj += " " + e.Object
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", seen, e.Type, e.Reason, obj, e.Message)
	}
	return tw.Flush()
}
