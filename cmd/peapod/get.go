package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/peapod/peapod/internal/printers"
	"github.com/peapod/peapod/runtime/pod"
	"github.com/peapod/peapod/runtime/state"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/labels"
)

// listFlags are the flags of the commands that list pods as kubectl get
// does (get, ps).
type listFlags struct {
	// output is -o.
	output string
	// noHeaders is --no-headers.
	noHeaders bool
	// all is -A.
	all bool
	// selector is -l.
	selector string
	// watch is -w.
	watch bool
}

func (l *listFlags) add(f *pflag.FlagSet) {
	f.StringVarP(&l.output, "output", "o", "", "output format: wide, json, yaml, name, jsonpath=TEMPLATE or custom-columns=SPEC")
	f.BoolVar(&l.noHeaders, "no-headers", false, "print no header line (tables and custom columns)")
	f.BoolVarP(&l.all, "all-namespaces", "A", false, "list pods of every namespace")
	addSelectorFlag(f, &l.selector)
	f.BoolVarP(&l.watch, "watch", "w", false, "after listing, print each pod again as it changes (Ctrl-C ends)")
}

// addSelectorFlag adds -l/--selector.
func addSelectorFlag(f *pflag.FlagSet, s *string) {
	f.StringVarP(s, "selector", "l", "", "label selector, e.g. app=web,tier!=db or 'env in (a,b)'")
}

// podResources are the words that name the pod resource, as kubectl
// accepts them.
var podResources = map[string]bool{"pod": true, "pods": true, "po": true}

// otherResources are kubectl's names of other resources: `get services`
// is a question peapod answers with the kind it has, not with "pod
// services not found" (a pod of that name is still `get pod services`).
var otherResources = map[string]bool{
	"all": true, "services": true, "service": true, "svc": true, "deployments": true, "deployment": true, "deploy": true,
	"replicasets": true, "rs": true, "statefulsets": true, "sts": true, "daemonsets": true, "ds": true, "jobs": true,
	"cronjobs": true, "cj": true, "configmaps": true, "cm": true, "secrets": true, "nodes": true, "no": true,
	"namespaces": true, "ns": true, "events": true, "ev": true, "ingresses": true, "ing": true, "pvc": true,
	"persistentvolumeclaims": true, "pv": true, "persistentvolumes": true, "serviceaccounts": true, "sa": true,
	"endpoints": true, "ep": true,
}

// resourceArgs strips a leading pod resource word from args and refuses
// another kind's.
func resourceArgs(args []string) ([]string, error) {
	if len(args) == 0 {
		return args, nil
	}
	word := strings.ToLower(args[0])
	if podResources[word] {
		args = args[1:]
	} else if otherResources[word] {
		return nil, fmt.Errorf("peapod has no resource type %q: it runs pods only (a pod of that name: %q)", args[0], "pod "+args[0])
	}
	out := make([]string, 0, len(args))
	for _, a := range args {
		// kubectl's TYPE/NAME form (a pod name has no "/").
		if kind, name, ok := strings.Cut(a, "/"); ok {
			if !podResources[strings.ToLower(kind)] {
				return nil, fmt.Errorf("peapod has no resource type %q: it runs pods only", kind)
			}
			a = name
		}
		out = append(out, a)
	}
	args = out
	return args, nil
}

func newGetCommand(g *globals) *cobra.Command {
	l := &listFlags{}
	cmd := &cobra.Command{
		Use:   "get pods|pod [NAME...] [-o FORMAT] [-l SELECTOR] [-A] [-w]",
		Short: "List pods or print some, like kubectl get pods",
		Long: "List the pods of the namespace (-A: of every namespace), those NAMEd, or those matching -l.\n" +
			"A single NAME with -o json|yaml|jsonpath prints that v1.Pod; otherwise a v1 List, as kubectl does.\n" +
			"The resource word may be left out: `peapod get web` is `peapod get pod web`.",
		Example: "  sudo peapod get pods\n  sudo peapod get pods -A -o wide\n  sudo peapod get pod web -o yaml\n" +
			"  sudo peapod get pods -l app=web -o jsonpath='{.items[*].status.podIP}'\n" +
			"  sudo peapod get pods -o custom-columns=NAME:.metadata.name,IMAGES:.spec.containers[*].image",
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: completePodNames(g, true),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return errors.New("you must specify the type of resource to get: pods (peapod runs pods only)")
			}
			args, err := resourceArgs(args)
			if err != nil {
				return err
			}
			return executeList(g, l, args, false, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	l.add(cmd.Flags())
	return cmd
}

// selectViews returns the pods a listing command acts on: those named (in
// the -n namespace), else every pod of the namespace (all: of every
// namespace) that the selector matches. A missing named pod is an error
// in errs; the others are still returned.
func selectViews(m *pod.Manager, ns string, all bool, names []string, selector string) (views []*pod.View, errs []error, err error) {
	sel := labels.Everything()
	if selector != "" {
		if len(names) > 0 {
			return nil, nil, errors.New("name cannot be provided when a selector is specified")
		}
		if sel, err = labels.Parse(selector); err != nil {
			return nil, nil, fmt.Errorf("invalid -l %q: %w", selector, err)
		}
	}
	if len(names) > 0 {
		if all {
			return nil, nil, errors.New("a resource cannot be retrieved by name across all namespaces")
		}
		seen := map[string]bool{}
		for _, n := range names {
			if seen[n] {
				continue
			}
			seen[n] = true
			v, err := m.Get(ns, n)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			views = append(views, v)
		}
		return views, errs, nil
	}
	if all {
		ns = ""
	}
	list, err := m.List(ns)
	if err != nil {
		return nil, nil, err
	}
	for _, v := range list {
		if selector == "" || sel.Matches(labels.Set(podLabels(v))) {
			views = append(views, v)
		}
	}
	return views, nil, nil
}

// podLabels are the labels of the pod's manifest (none for an unreadable
// record).
func podLabels(v *pod.View) map[string]string {
	p, err := v.KubePod()
	if err != nil {
		return nil
	}
	return p.Labels
}

// printable renders views for the printers: the v1.Pod, and peapod's own
// STATUS where kubectl has no word for the state.
func printable(views []*pod.View) ([]printers.Pod, error) {
	out := make([]printers.Pod, 0, len(views))
	for _, v := range views {
		p, err := v.KubePod()
		if err != nil {
			return nil, err
		}
		out = append(out, printers.Pod{Pod: p, Status: statusOverride(v)})
	}
	return out, nil
}

// statusOverride is peapod's STATUS for a pod that run or rm has not
// finished, whose supervisor or files are lost, or that stop stopped;
// "" lets kubectl's rules decide.
func statusOverride(v *pod.View) string {
	if v.Reason != "" {
		return v.Reason
	}
	if v.Record.Phase == state.PhaseStopped {
		return "Stopped"
	}
	return ""
}

// executeList is get pods (ps: with the NAMESPACE and IP columns).
func executeList(g *globals, l *listFlags, names []string, ps bool, out, errw io.Writer) error {
	single := len(names) == 1 && l.selector == ""
	pr, err := printers.New(printers.Options{Output: l.output, NoHeaders: l.noHeaders, Namespace: l.all || ps, IP: ps, Single: single})
	if err != nil {
		return err
	}
	m, err := g.manager()
	if err != nil {
		return err
	}
	views, errs, err := selectViews(m, g.namespace, l.all, names, l.selector)
	if err != nil {
		return err
	}
	pods, err := printable(views)
	if err != nil {
		return err
	}
	if len(pods) == 0 && len(errs) == 0 && (pr.Human() || l.output == "name") && !l.watch && !ps {
		if l.all {
			fmt.Fprintln(errw, "No resources found")
		} else {
			fmt.Fprintf(errw, "No resources found in %s namespace.\n", g.namespace)
		}
	} else if len(pods) > 0 || ps || (!pr.Human() && len(errs) == 0) {
		if err := pr.Print(out, pods, true); err != nil {
			return err
		}
	}
	if err := errors.Join(errs...); err != nil || !l.watch {
		return err
	}
	return watchPods(g, m, pr, l, names, views, out)
}

// namesOrSelector is the pods a command acts on: the names given, or
// with -l, the names of the namespace's pods that match; one of the two.
// A selector that matches nothing is no error, as with kubectl delete -l:
// it says so on errw.
func namesOrSelector(g *globals, names []string, selector string, errw io.Writer) ([]string, error) {
	if selector == "" {
		if len(names) == 0 {
			return nil, errors.New("name at least one pod, or select pods with -l")
		}
		return names, nil
	}
	if len(names) > 0 {
		return nil, errors.New("name cannot be provided when a selector is specified")
	}
	m, err := g.manager()
	if err != nil {
		return nil, err
	}
	views, _, err := selectViews(m, g.namespace, false, nil, selector)
	if err != nil {
		return nil, err
	}
	for _, v := range views {
		names = append(names, v.Record.Name)
	}
	if len(names) == 0 {
		fmt.Fprintf(errw, "No resources found in %s namespace.\n", g.namespace)
	}
	return names, nil
}
