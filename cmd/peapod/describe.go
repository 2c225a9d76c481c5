package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/peapod/peapod/internal/printers"
	"github.com/spf13/cobra"
)

func newDescribeCommand(g *globals) *cobra.Command {
	var selector string
	cmd := &cobra.Command{
		Use:   "describe [pod|pods] NAME... | -l SELECTOR | pods",
		Short: "Show pods in detail, like kubectl describe pod",
		Long: "Print each pod as kubectl describe pod does: its status, each container's state, last state,\n" +
			"readiness, restarts, image and image ID, probes, environment and mounts, the pod's conditions,\n" +
			"volumes and QoS class, and its events last.",
		Example: "  sudo peapod describe web\n  sudo peapod describe pod web\n  sudo peapod describe -l app=web",
		Args:    cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			all := len(args) == 1 && podResources[strings.ToLower(args[0])]
			args, err := resourceArgs(args)
			if err != nil {
				return err
			}
			if len(args) == 0 && selector == "" && !all {
				return errors.New("name a pod, select pods with -l, or describe them all: peapod describe pods")
			}
			return executeDescribe(g, args, selector, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	addSelectorFlag(cmd.Flags(), &selector)
	return cmd
}

func executeDescribe(g *globals, names []string, selector string, out, errw io.Writer) error {
	m, err := g.manager()
	if err != nil {
		return err
	}
	views, errs, err := selectViews(m, g.namespace, false, names, selector)
	if err != nil {
		return err
	}
	now := time.Now()
	for i, v := range views {
		p, err := v.KubePod()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if i > 0 {
			fmt.Fprintln(out)
		}
		if err := printers.Describe(out, p, m.Events(v).Items, now); err != nil {
			return err
		}
	}
	if len(views) == 0 && len(errs) == 0 {
		fmt.Fprintf(errw, "No resources found in %s namespace.\n", g.namespace)
	}
	return errors.Join(errs...)
}
