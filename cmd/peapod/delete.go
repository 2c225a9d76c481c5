package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/peapod/peapod/runtime/pod"
	"github.com/spf13/cobra"
)

type deleteOptions struct {
	// files are -f: delete the pods these manifests name.
	files []string
	// selector is -l; all is --all.
	selector string
	all      bool
	// grace is --grace-period (-1: the pod's own); force with grace 0
	// kills at once, as kubectl delete --force --grace-period=0.
	grace int64
	force bool
	// ignoreNotFound is --ignore-not-found.
	ignoreNotFound bool
}

func newDeleteCommand(g *globals) *cobra.Command {
	o := &deleteOptions{}
	cmd := &cobra.Command{
		Use:   "delete ([pod|pods] NAME... | -f FILE | -l SELECTOR | --all)",
		Short: "Stop pods gracefully and remove them, like kubectl delete pod",
		Long: "Each pod is stopped as stop does (preStop hooks, stop signal, grace period, SIGKILL) and then removed,\n" +
			"its logs with it. -f deletes the pods a manifest names; ConfigMaps and Secrets in it are not objects of\n" +
			"their own in peapod and are skipped. --force --grace-period=0 kills at once, as rm -f.",
		Example: "  sudo peapod delete pod web\n  sudo peapod delete -f examples/two-containers.yaml\n" +
			"  sudo peapod delete -l app=web\n  sudo peapod delete --all -n test",
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			args, err := resourceArgs(args)
			if err != nil {
				return err
			}
			return executeDelete(g, o, args, cmd.Flags().Changed("namespace"), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.files, "filename", "f", nil, "manifest whose pods to delete, or - for standard input (repeatable)")
	addSelectorFlag(f, &o.selector)
	f.BoolVar(&o.all, "all", false, "delete every pod of the namespace")
	f.Int64Var(&o.grace, "grace-period", -1, "seconds to wait after the stop signal (default: the pod's terminationGracePeriodSeconds)")
	f.BoolVar(&o.force, "force", false, "with --grace-period=0: kill the pods at once (SIGKILL)")
	f.BoolVar(&o.ignoreNotFound, "ignore-not-found", false, "a pod that does not exist is no error")
	return cmd
}

// target is one pod to delete.
type target struct{ ns, name string }

func executeDelete(g *globals, o *deleteOptions, names []string, nsFlag bool, out, errw io.Writer) error {
	ways := 0
	for _, set := range []bool{len(names) > 0, len(o.files) > 0, o.selector != "", o.all} {
		if set {
			ways++
		}
	}
	if ways != 1 {
		return errors.New("name the pods to delete one way: NAME..., -f FILE, -l SELECTOR or --all")
	}
	if o.force && o.grace != 0 {
		return errors.New("--force needs --grace-period=0: peapod deletes a pod either gracefully or at once")
	}
	if o.grace < -1 {
		return fmt.Errorf("--grace-period must be 0 or more, got %d", o.grace)
	}
	var targets []target
	if len(o.files) > 0 {
		objs, err := loadManifestFiles(g, o.files, nsFlag, errw)
		if err != nil {
			return err
		}
		for _, p := range objs.Pods {
			targets = append(targets, target{p.Namespace, p.Name})
		}
	} else {
		for _, n := range names {
			targets = append(targets, target{g.namespace, n})
		}
	}
	m, err := g.manager()
	if err != nil {
		return err
	}
	if o.selector != "" || o.all {
		views, _, err := selectViews(m, g.namespace, false, nil, o.selector)
		if err != nil {
			return err
		}
		for _, v := range views {
			targets = append(targets, target{v.Record.Namespace, v.Record.Name})
		}
		if len(targets) == 0 {
			fmt.Fprintf(errw, "No resources found in %s namespace.\n", g.namespace)
			return nil
		}
	}
	var grace *int64
	if o.grace >= 0 {
		grace = &o.grace
	}
	var errs []error
	for _, t := range targets {
		err := deletePod(m, t, grace, o.force, errw)
		switch {
		case errors.Is(err, pod.ErrNotFound) && o.ignoreNotFound:
		case errors.Is(err, pod.ErrNotFound):
			errs = append(errs, fmt.Errorf("pods %q not found in namespace %q", t.name, t.ns))
		case err != nil:
			errs = append(errs, err)
		default:
			fmt.Fprintf(out, "pod %q deleted\n", t.name)
		}
	}
	return errors.Join(errs...)
}

// deletePod stops a pod gracefully (unless forced) and removes it.
func deletePod(m *pod.Manager, t target, grace *int64, force bool, errw io.Writer) error {
	if !force {
		if v, err := m.Get(t.ns, t.name); err == nil {
			announceGrace(v, grace, t.name, errw)
		}
		if err := m.Stop(t.ns, t.name, grace); err != nil {
			return err
		}
	}
	return m.Remove(t.ns, t.name, true)
}

// graceNoticeAbove is the grace period past which stop and delete say how
// long they may wait: a wait of a second or two needs no explaining, a
// silent 30 s looks like a hang.
const graceNoticeAbove = 2

// announceGrace tells how long stopping a live pod may take: the grace
// period given, else the pod's terminationGracePeriodSeconds.
func announceGrace(v *pod.View, grace *int64, name string, errw io.Writer) {
	if v.Final || !v.SupervisorAlive || v.Status == nil || v.Status.Stopping {
		return
	}
	p, err := v.KubePod()
	if err != nil {
		return
	}
	secs := int64(30)
	if p.Spec.TerminationGracePeriodSeconds != nil {
		secs = *p.Spec.TerminationGracePeriodSeconds
	}
	if grace != nil {
		secs = *grace
	}
	if secs > graceNoticeAbove {
		fmt.Fprintf(errw, "pod/%s: waiting up to %ds for its containers to exit gracefully (--grace-period sets it)\n", name, secs)
	}
}
