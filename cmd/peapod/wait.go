package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/peapod/peapod/runtime/pod"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
)

func newWaitCommand(g *globals) *cobra.Command {
	var forCond string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:     "wait POD --for=condition=Ready|delete|phase=PHASE [--timeout=30s]",
		Short:   "Wait for a pod condition, phase or deletion",
		Example: "  sudo peapod wait web --for=condition=Ready --timeout=60s\n  sudo peapod wait job --for=phase=Succeeded\n  sudo peapod wait web --for=delete",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return executeWait(g, args[0], forCond, timeout, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&forCond, "for", "", "condition=TYPE[=true|false], phase=PHASE or delete")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "give up after this long")
	cmd.MarkFlagRequired("for")
	return cmd
}

// waitCheck reports whether the pod's view satisfies the wait.
type waitCheck func(v *pod.View, p *corev1.Pod) bool

func parseFor(s string) (waitCheck, bool, error) {
	switch {
	case s == "delete":
		return nil, true, nil
	case strings.HasPrefix(s, "phase="):
		want := strings.TrimPrefix(s, "phase=")
		return func(v *pod.View, _ *corev1.Pod) bool { return strings.EqualFold(string(v.Phase), want) }, false, nil
	case strings.HasPrefix(s, "condition="):
		cond, want, _ := strings.Cut(strings.TrimPrefix(s, "condition="), "=")
		if want == "" {
			want = "true"
		}
		return func(_ *pod.View, p *corev1.Pod) bool {
			for _, c := range p.Status.Conditions {
				if strings.EqualFold(string(c.Type), cond) {
					return strings.EqualFold(string(c.Status), want)
				}
			}
			return false
		}, false, nil
	}
	return nil, false, fmt.Errorf("invalid --for %q: use condition=TYPE, phase=PHASE or delete", s)
}

func executeWait(g *globals, name, forCond string, timeout time.Duration, out io.Writer) error {
	check, forDelete, err := parseFor(forCond)
	if err != nil {
		return err
	}
	m, err := g.manager()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		v, err := m.Get(g.namespace, name)
		switch {
		case forDelete && errors.Is(err, pod.ErrNotFound):
			fmt.Fprintf(out, "pod/%s deleted\n", name)
			return nil
		case err != nil:
			return err
		case !forDelete:
			p, err := v.KubePod()
			if err != nil {
				return err
			}
			if check(v, p) {
				fmt.Fprintf(out, "pod/%s condition met\n", name)
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s on pod %s", timeout, forCond, name)
		}
		// The status file is rewritten atomically (rename), which inotify
		// could report; a 50 ms poll is simpler and cheap for a CLI.
		time.Sleep(50 * time.Millisecond)
	}
}
