package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/peapod/peapod/manifest"
	"github.com/peapod/peapod/runtime/pod"
	"github.com/peapod/peapod/runtime/state"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

type runOptions struct {
	// files are the -f values: paths, or "-" for stdin.
	files []string
	// detach returns once the containers started.
	detach bool
	// pull holds the registry flags for the images run pulls.
	pull pullFlags
	// timeout bounds the wait for each pod's containers to start (-d).
	timeout time.Duration
	// stdin and tty (-i, -t) attach the foreground to the first container
	// with stdin (tty) instead of printing events and output (runattach.go).
	stdin, tty bool
	// pods are the kubelet-level settings of the pods run creates.
	pods pod.PodDefaults
}

func newRunCommand(g *globals) *cobra.Command {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run -f FILE [-f FILE...] [-d]",
		Short: "Create and start the pods of a manifest",
		Long: "Validate every document of every FILE (v1 Pods, and the v1 ConfigMaps and Secrets they use, in YAML or\n" +
			"JSON, one or more per file) before creating anything, then create and start each pod. With -d, return once init containers completed and every\n" +
			"app container's entrypoint has been exec'd; without it, stay in the foreground printing events and\n" +
			"container output, and stop and remove the pods on Ctrl-C.",
		Example: "  sudo peapod run -d -f examples/two-containers.yaml\n  cat pod.json | sudo peapod run -f -\n  sudo peapod run -it -f examples/shell.yaml    # attached to its first tty container",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.pods.PidsLimitSet = cmd.Flags().Changed("pod-pids-limit")
			if o.detach {
				g.shortLived()
			}
			return executeRun(g, o, cmd.Flags().Changed("namespace"), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringArrayVarP(&o.files, "filename", "f", nil, "manifest file, or - for standard input (repeatable)")
	cmd.Flags().BoolVarP(&o.detach, "detach", "d", false, "return once the pods' containers have started")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 0, "with -d, how long to wait for each pod's init containers and entrypoints (0: no bound); the pod keeps starting after it")
	cmd.Flags().BoolVarP(&o.stdin, "stdin", "i", false, "attach your stdin to the first container with stdin: true (see attach)")
	cmd.Flags().BoolVarP(&o.tty, "tty", "t", false, "with -i: attach your terminal to the first container with tty: true")
	o.pull.addRegistryFlags(cmd.Flags())
	cmd.Flags().BoolVar(&o.pods.SeccompDefault, "seccomp-default", false,
		"run containers that name no seccomp profile under RuntimeDefault (the kubelet's SeccompDefault)")
	cmd.Flags().Int64Var(&o.pods.PidsLimit, "pod-pids-limit", pod.DefaultPodPidsLimit,
		"most processes and threads a pod may have (the pod cgroup's pids.max, the kubelet's podPidsLimit); -1: unlimited")
	cmd.Flags().StringSliceVar(&o.pods.AllowedUnsafeSysctls, "allowed-unsafe-sysctls", nil,
		"namespaced sysctls (or patterns ending in *) pods may set beyond the safe set, e.g. 'net.core.*,kernel.msgmax' (the kubelet's flag)")
	cmd.MarkFlagRequired("filename")
	return cmd
}

func readManifest(file string) ([]byte, string, error) {
	if file == "-" {
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			return nil, "", fmt.Errorf("failed to read standard input: %w", err)
		}
		return b, "<stdin>", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, "", fmt.Errorf("failed to read manifest: %w", err)
	}
	return b, file, nil
}

func executeRun(g *globals, o *runOptions, nsFlag bool, out, errw io.Writer) error {
	if err := o.checkAttach(); err != nil {
		return err
	}
	var files []manifest.File
	stdin := false
	for _, f := range o.files {
		if f == "-" {
			if stdin {
				return errors.New("-f -: standard input can be read only once")
			}
			stdin = true
		}
		data, source, err := readManifest(f)
		if err != nil {
			return err
		}
		files = append(files, manifest.File{Data: data, Source: source})
	}
	ns := ""
	if nsFlag {
		ns = g.namespace
	}
	objs, warnings, err := manifest.LoadFiles(files, ns)
	for _, w := range warnings {
		fmt.Fprintln(errw, "Warning:", w)
	}
	if err != nil {
		return err
	}
	pods := objs.Pods
	target, err := o.attachTarget(pods)
	if err != nil {
		return err
	}
	if o.pods.PidsLimit == 0 || o.pods.PidsLimit < -1 {
		return fmt.Errorf("invalid --pod-pids-limit %d: a positive number, or -1 for no limit", o.pods.PidsLimit)
	}
	m, err := g.manager()
	if err != nil {
		return err
	}
	m.SetPodDefaults(o.pods)
	// The kubelet's admission of every pod, before any is created.
	for _, p := range pods {
		if err := m.Admit(p); err != nil {
			return fmt.Errorf("%s: %w", objs.Source(p), err)
		}
	}
	// Every pod's ConfigMap and Secret references, before any pull or pod.
	for _, p := range pods {
		if err := manifest.CheckSources(p, objs.SourcesFor(p)); err != nil {
			return fmt.Errorf("%s: %w", objs.Source(p), err)
		}
	}
	// Every document's images, before any pod is created.
	opts, err := o.pull.options()
	if err != nil {
		return err
	}
	done := withProgress(&opts, errw)
	puller, err := m.NewImagePuller(opts)
	if err != nil {
		return err
	}
	warnw := opts.Progress // above the bars on a terminal
	puller.Warn = func(w string) { fmt.Fprintln(warnw, "Warning:", w) }
	err = ensureImages(puller, objs)
	done()
	if err != nil {
		return err
	}
	if o.timeout < 0 {
		return fmt.Errorf("--timeout must not be negative, got %s", o.timeout)
	}
	if o.timeout > 0 && !o.detach {
		return errors.New("--timeout bounds the wait of run -d; without -d, run stays in the foreground")
	}
	// Ctrl-C while pods are created ends only the wait for their
	// containers: a pod being set up is finished first, so nothing is left
	// half-made for gc.
	sigCtx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	var created []*state.Record
	var startErrs []error
	for _, p := range pods {
		ctx, cancel := sigCtx, context.CancelFunc(func() {})
		if o.timeout > 0 {
			ctx, cancel = context.WithTimeout(sigCtx, o.timeout)
		}
		rec, err := m.CreateWait(p, objs.SourcesFor(p), pod.StartWait{Ctx: ctx, Progress: startProgress(p.Namespace+"/"+p.Name, errw)})
		cancel()
		var se *pod.StartError
		var pe *pod.PendingError
		switch {
		case errors.As(err, &pe):
			created = append(created, rec)
			fmt.Fprintf(out, "pod/%s created\n", rec.Name)
			if !o.detach {
				stopSignals()
				sig := make(chan os.Signal, 1)
				signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
				defer signal.Stop(sig)
				return interrupted(m, created, sig, out)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("timed out after %s: pod %s is still waiting for %s; it keeps starting (see peapod get %s, peapod logs)",
					o.timeout, pe.Pod, pe.WaitingFor, rec.Name)
			}
			return fmt.Errorf("interrupted: pod %s is created and still waiting for %s; it keeps starting (peapod rm -f %s removes it)",
				pe.Pod, pe.WaitingFor, rec.Name)
		case errors.As(err, &se):
			startErrs = append(startErrs, err)
			fallthrough
		case err == nil:
			created = append(created, rec)
			fmt.Fprintf(out, "pod/%s created\n", rec.Name)
		default:
			if len(created) > 0 {
				fmt.Fprintf(errw, "created before the failure: %s\n", recordNames(created))
			}
			return err
		}
		if sigCtx.Err() != nil && len(created) < len(pods) {
			return fmt.Errorf("interrupted: created %s, not the rest", recordNames(created))
		}
	}
	stopSignals()
	if err := errors.Join(startErrs...); err != nil {
		return err
	}
	if o.detach {
		return nil
	}
	if o.stdin || o.tty {
		return runAttached(m, created, target, o.tty, errw)
	}
	return foreground(m, created, out)
}

// startProgress tells a user at a terminal what a pod's start waits for
// (an init container that takes its time); elsewhere it says nothing, so
// scripts' output stays the created lines.
func startProgress(pod string, errw io.Writer) func(string, time.Duration) {
	f, ok := errw.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return func(waiting string, since time.Duration) {
		fmt.Fprintf(errw, "waiting for pod %s: %s (%s so far; Ctrl-C leaves the pod starting)\n", pod, waiting, since.Round(time.Second))
	}
}

// ensureImages pulls what the pods need; Ctrl-C during the pulls stops
// them, before any pod exists.
func ensureImages(puller *pod.ImagePuller, objs *manifest.Objects) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, p := range objs.Pods {
		if err := puller.Ensure(ctx, p, objs.PullSecrets(p)...); err != nil {
			return fmt.Errorf("%s: %w", objs.Source(p), err)
		}
	}
	return nil
}

// interrupted stops the pods gracefully (their grace periods, preStop
// hooks) and removes them; a second Ctrl-C kills them at once instead.
func interrupted(m *pod.Manager, recs []*state.Record, sig <-chan os.Signal, out io.Writer) error {
	fmt.Fprintln(out, "interrupted: stopping and removing the pods (Ctrl-C again to kill them now)")
	done := make(chan error, 1)
	go func() {
		var errs []error
		for _, r := range recs {
			errs = append(errs, m.Stop(r.Namespace, r.Name, nil), m.Remove(r.Namespace, r.Name, true))
		}
		done <- errors.Join(errs...)
	}()
	select {
	case err := <-done:
		return err
	case <-sig:
		fmt.Fprintln(out, "interrupted again: killing the pods")
		var errs []error
		for _, r := range recs {
			if err := m.Remove(r.Namespace, r.Name, true); err != nil && !errors.Is(err, pod.ErrNotFound) {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
}

func recordNames(recs []*state.Record) string {
	s := ""
	for i, r := range recs {
		if i > 0 {
			s += ", "
		}
		s += r.Namespace + "/" + r.Name
	}
	return s
}

// foreground follows the pods' events and output until they finish or the
// user interrupts; then it stops and removes them.
func foreground(m *pod.Manager, recs []*state.Record, out io.Writer) error {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	followers := make([]*follower, len(recs))
	for i, r := range recs {
		followers[i] = newFollower(m, r.Namespace, r.Name, out)
	}
	// Status files change without an event we can wait on from here; a
	// short poll is the CLI's refresh rate, not a synchronisation.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		done := true
		for _, f := range followers {
			if !f.step() {
				done = false
			}
		}
		if done {
			break
		}
		select {
		case <-sig:
			return interrupted(m, recs, sig, out)
		case <-tick.C:
		}
	}
	var errs []error
	for _, r := range recs {
		errs = append(errs, m.Remove(r.Namespace, r.Name, true))
	}
	return errors.Join(errs...)
}
