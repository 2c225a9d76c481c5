package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/peapod/peapod/internal/printers"
	"github.com/peapod/peapod/runtime/state"
	"github.com/spf13/cobra"
)

func newEventsCommand(g *globals) *cobra.Command {
	var watch bool
	cmd := &cobra.Command{
		Use:     "events POD [-w]",
		Short:   "Print a pod's events, like kubectl get events",
		Long:    "One line per event: a message's newlines (a probe's output) are escaped. -w then prints each new event, or repeat, as it happens.",
		Example: "  sudo peapod events web\n  sudo peapod events web -w",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return executeEvents(g, args[0], watch, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "after listing, print events as they happen (Ctrl-C ends)")
	return cmd
}

func executeEvents(g *globals, name string, watch bool, out io.Writer) error {
	m, err := g.manager()
	if err != nil {
		return err
	}
	v, err := m.Get(g.namespace, name)
	if err != nil {
		return err
	}
	var w *dirWatch
	if watch {
		// Watch before the first read, so no event falls between.
		if w, err = newDirWatch(); err != nil {
			return err
		}
		defer w.close()
		if err := w.add(g.dirs().RunDir(v.Record.UID), podDirMask); err != nil {
			return err
		}
	}
	seen := map[string]int{}
	header := true
	for {
		var fresh []state.Event
		for _, e := range m.Events(v).Items {
			key := e.Object + "\x00" + e.Reason + "\x00" + e.Message
			if seen[key] != e.Count {
				seen[key] = e.Count
				fresh = append(fresh, e)
			}
		}
		if err := printEvents(out, name, fresh, header, time.Now()); err != nil {
			return err
		}
		header = false
		if !watch {
			return nil
		}
		if err := w.wait(); err != nil {
			return err
		}
		if _, err := m.Get(g.namespace, name); err != nil {
			return nil // the pod is gone: nothing more will happen
		}
	}
}

// printEvents prints event rows as kubectl get events does, one line each.
func printEvents(out io.Writer, name string, evs []state.Event, header bool, now time.Time) error {
	tw := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
	if header {
		fmt.Fprintln(tw, "LAST SEEN\tTYPE\tREASON\tOBJECT\tMESSAGE")
	}
	for _, e := range evs {
		seen := printers.EventAge(state.Event{FirstSeen: e.LastSeen, LastSeen: e.LastSeen, Count: 1}, now)
		if e.Count > 1 {
			seen = printers.EventAge(e, now)
		}
		obj := "pod/" + name
		if e.Object != "" {
			obj += " " + e.Object
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", seen, e.Type, e.Reason, obj, printers.EventMessage(state.Event{Message: e.Message}))
	}
	return tw.Flush()
}
