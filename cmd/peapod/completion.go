package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/state"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
)

// finishCommands completes the command tree once every command is added:
// the commands of this file's kind (describe, apply, delete), --version,
// shell completion, and the rejection of unknown subcommands in every
// command group.
func finishCommands(root *cobra.Command, g *globals) {
	root.AddCommand(newDescribeCommand(g), newApplyCommand(g), newDeleteCommand(g))
	// cobra's own "peapod version V": a version template of our own would
	// execute text/template, whose reflective method lookup keeps every
	// exported method in the binary (+6.4 MiB, measured).
	root.Version = version
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Long += "\n\nPod, container and namespace names complete in a shell that can read the root (as root)."
			// Writing a completion script needs no root.
			c.PersistentPreRunE = func(*cobra.Command, []string) error { return nil }
		}
	}
	// The shell asks for completions as the user typing: without root the
	// root's files cannot be read and nothing is offered, but that is no
	// error to print into the prompt.
	if check := root.PersistentPreRunE; check != nil {
		root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
			if n := cmd.Name(); n == cobra.ShellCompRequestCmd || n == cobra.ShellCompNoDescRequestCmd {
				return nil
			}
			return check(cmd, args)
		}
	}
	root.RegisterFlagCompletionFunc("namespace", completeNamespaces(g))
	walk(root, func(c *cobra.Command) {
		if f := c.Flags().Lookup("filename"); f != nil && f.Annotations[cobra.BashCompFilenameExt] == nil {
			c.MarkFlagFilename("filename", "yaml", "yml", "json")
		}
		if f := c.Flags().Lookup("container"); f != nil && c.Name() != "completion" {
			c.RegisterFlagCompletionFunc("container", completeContainers(g))
		}
		if c.HasParent() && !c.Parent().HasParent() && c.ValidArgsFunction == nil {
			switch c.Name() {
			case "logs", "exec", "inspect", "events", "wait", "attach", "port-forward", "top":
				c.ValidArgsFunction = completeOnePod(g)
			case "stop", "rm", "describe", "delete":
				c.ValidArgsFunction = completePodNames(g, false)
			}
		}
		if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
			rejectUnknownSubcommands(c)
		}
	})
}

func walk(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, s := range c.Commands() {
		walk(s, fn)
	}
}

// rejectUnknownSubcommands makes a command group fail on a word it does
// not know, with cobra's suggestions, instead of printing its help and
// exiting 0 (cobra's default for a group): a typo in a script must fail.
// The check runs as the group's argument validation, before the root
// check, so a typo reads the same with or without sudo.
func rejectUnknownSubcommands(c *cobra.Command) {
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2
	}
	c.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
		}
		return fmt.Errorf("%s\nRun '%s --help' for usage", msg, cmd.CommandPath())
	}
	c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	// The root is not needed to print a group's help.
	if c.HasParent() && c.PersistentPreRunE == nil {
		c.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
			if cmd != c {
				return cmd.Root().PersistentPreRunE(cmd, args)
			}
			return nil
		}
	}
}

// podNames reads the name index of the root: the pods of ns ("" = all)
// as "name" (or "namespace/name" when all), without opening the manager
// (no adoption, no sweep: completion has no side effects).
func podNames(g *globals, ns string) []string {
	ents, err := os.ReadDir(g.dirs().NamesDir())
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		n, name, ok := strings.Cut(e.Name(), "_")
		if !ok || strings.Contains(e.Name(), "@") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if ns == "" {
			out = append(out, n+"/"+name)
		} else if n == ns {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// completePodNames completes pod names of the -n namespace; withResource
// also offers the words get takes first.
func completePodNames(g *globals, withResource bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
		var out []string
		if withResource && len(args) == 0 {
			out = append(out, "pods", "pod")
		}
		for _, n := range podNames(g, g.namespace) {
			if strings.HasPrefix(n, prefix) && !contains(args, n) {
				out = append(out, n)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeOnePod completes a pod name as the first argument only.
func completeOnePod(g *globals) cobra.CompletionFunc {
	all := completePodNames(g, false)
	return func(cmd *cobra.Command, args []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return all(cmd, args, prefix)
	}
}

func completeNamespaces(g *globals) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
		seen := map[string]bool{}
		var out []string
		for _, n := range podNames(g, "") {
			ns, _, _ := strings.Cut(n, "/")
			if !seen[ns] && strings.HasPrefix(ns, prefix) {
				seen[ns] = true
				out = append(out, ns)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeContainers completes -c with the containers of the pod named
// by the first argument.
func completeContainers(g *globals) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) == 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		p, err := readPodManifest(g, g.namespace, args[0])
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
			for _, c := range cs {
				if strings.HasPrefix(c.Name, prefix) {
					out = append(out, c.Name)
				}
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// readPodManifest reads a pod's stored manifest through the name index.
func readPodManifest(g *globals, ns, name string) (*corev1.Pod, error) {
	d := g.dirs()
	uid, err := os.ReadFile(d.NameIndex(ns, name))
	if err != nil {
		return nil, err
	}
	rec, err := state.ReadRecord(layout.Root(d).RecordPath(string(uid)))
	if err != nil {
		return nil, err
	}
	if len(rec.Manifest) == 0 {
		return nil, errors.New("no manifest")
	}
	var p corev1.Pod
	if err := json.Unmarshal(rec.Manifest, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
