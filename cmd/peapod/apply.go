package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/peapod/peapod/manifest"
	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/pod"
	"github.com/peapod/peapod/runtime/state"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
)

type applyOptions struct {
	// files are the -f values.
	files []string
	// pull holds the registry flags for the images apply pulls.
	pull pullFlags
}

func newApplyCommand(g *globals) *cobra.Command {
	o := &applyOptions{}
	cmd := &cobra.Command{
		Use:   "apply -f FILE [-f FILE...]",
		Short: "Make the pods of a manifest exist as written, like kubectl apply",
		Long: "Validate every document of every FILE first; then, per pod: create it if missing (created), leave it\n" +
			"alone if its manifest and the ConfigMaps and Secrets it uses are unchanged (unchanged), or replace it\n" +
			"(configured): a pod's spec cannot change in place, so it is stopped gracefully, removed and run again.\n" +
			"Pods start detached, as with run -d.",
		Example: "  sudo peapod apply -f examples/two-containers.yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return executeApply(g, o, cmd.Flags().Changed("namespace"), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringArrayVarP(&o.files, "filename", "f", nil, "manifest file, or - for standard input (repeatable)")
	o.pull.addRegistryFlags(cmd.Flags())
	cmd.MarkFlagRequired("filename")
	return cmd
}

// loadManifestFiles reads and validates every -f file, as run does.
func loadManifestFiles(g *globals, paths []string, nsFlag bool, errw io.Writer) (*manifest.Objects, error) {
	var files []manifest.File
	stdin := false
	for _, f := range paths {
		if f == "-" {
			if stdin {
				return nil, errors.New("-f -: standard input can be read only once")
			}
			stdin = true
		}
		data, source, err := readManifest(f)
		if err != nil {
			return nil, err
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
	return objs, err
}

// applyAction is what apply does with one pod.
type applyAction string

const (
	applyCreate    applyAction = "created"
	applyUnchanged applyAction = "unchanged"
	applyConfigure applyAction = "configured"
)

func executeApply(g *globals, o *applyOptions, nsFlag bool, out, errw io.Writer) error {
	objs, err := loadManifestFiles(g, o.files, nsFlag, errw)
	if err != nil {
		return err
	}
	m, err := g.manager()
	if err != nil {
		return err
	}
	for _, p := range objs.Pods {
		if err := manifest.CheckSources(p, objs.SourcesFor(p)); err != nil {
			return fmt.Errorf("%s: %w", objs.Source(p), err)
		}
	}
	// Another apply comparing and replacing the same pods meanwhile would
	// see them half-replaced.
	unlock, err := state.Lock(g.dirs().ApplyLock())
	if err != nil {
		return err
	}
	defer unlock()
	// Decide for every pod before changing any.
	actions := make([]applyAction, len(objs.Pods))
	for i, p := range objs.Pods {
		if actions[i], err = planApply(g, m, p, objs.SourcesFor(p)); err != nil {
			return err
		}
	}
	opts, err := o.pull.options()
	if err != nil {
		return err
	}
	opts.Progress = errw
	puller, err := m.NewImagePuller(opts)
	if err != nil {
		return err
	}
	puller.Warn = func(w string) { fmt.Fprintln(errw, "Warning:", w) }
	if err := ensureImages(puller, objs); err != nil {
		return err
	}
	var errs []error
	for i, p := range objs.Pods {
		action, err := applyPod(g, m, p, objs.SourcesFor(p), actions[i], errw)
		if err != nil {
			errs = append(errs, err)
		}
		if action != "" {
			fmt.Fprintf(out, "pod/%s %s\n", p.Name, action)
		}
	}
	return errors.Join(errs...)
}

// applyPod carries out one pod's plan. A run or rm of the same pod may
// run meanwhile (applies do not: ApplyLock): a pod it removed first is no
// error, and a pod it created first is compared again (unchanged, or
// replaced once more).
func applyPod(g *globals, m *pod.Manager, p *corev1.Pod, src *manifest.Sources, action applyAction, errw io.Writer) (applyAction, error) {
	for attempt := 0; ; attempt++ {
		if action == applyUnchanged {
			return action, nil
		}
		if action == applyConfigure {
			if v, err := m.Get(p.Namespace, p.Name); err == nil {
				announceGrace(v, nil, p.Name, errw)
			}
			err := m.Stop(p.Namespace, p.Name, nil)
			if err == nil {
				err = m.Remove(p.Namespace, p.Name, false)
			}
			if err != nil && !errors.Is(err, pod.ErrNotFound) {
				// Another apply may have made the pod anew between the two.
				if next, perr := planApply(g, m, p, src); perr == nil && next == applyUnchanged {
					return next, nil
				}
				return "", fmt.Errorf("failed to replace pod %s/%s: %w", p.Namespace, p.Name, err)
			}
		}
		_, err := m.CreateWithSources(p, src)
		var se *pod.StartError
		switch {
		case err == nil:
			return action, nil
		case errors.As(err, &se):
			return action, err // created, but a container did not start
		case errors.Is(err, pod.ErrExists) && attempt < 3:
			// Created by another apply meanwhile: compare with that one.
			next, perr := planApply(g, m, p, src)
			if perr != nil {
				return "", perr
			}
			if next == applyCreate {
				next = action
			}
			action = next
		default:
			return "", err
		}
	}
}

// planApply compares a pod of the manifest with the pod of that name: its
// stored (defaulted) manifest, less the uid peapod gave it, and the
// ConfigMaps and Secrets stored with it.
func planApply(g *globals, m *pod.Manager, p *corev1.Pod, src *manifest.Sources) (applyAction, error) {
	v, err := m.Get(p.Namespace, p.Name)
	if errors.Is(err, pod.ErrNotFound) {
		return applyCreate, nil
	}
	if err != nil {
		return "", err
	}
	if len(v.Record.Manifest) == 0 {
		return "", fmt.Errorf("pod %s/%s: its record cannot be read (%s); rm -f it first", p.Namespace, p.Name, v.Message)
	}
	var stored corev1.Pod
	if err := json.Unmarshal(v.Record.Manifest, &stored); err != nil {
		return "", fmt.Errorf("failed to decode the stored manifest of pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	stored.UID = ""
	same, err := sameJSON(&stored, p)
	if err != nil || !same {
		return applyConfigure, err
	}
	var storedSrc manifest.Sources
	err = state.ReadJSON(layout.Pod(g.dirs().PodDir(v.Record.UID)).Sources(), &storedSrc)
	if err != nil && !errors.Is(err, state.ErrNotFound) {
		return "", err
	}
	if same, err = sameJSON(&storedSrc, src); err != nil || !same {
		return applyConfigure, err
	}
	// A stopped or finished pod is left as it is, as kubectl leaves a
	// Succeeded pod: its spec is what was asked for.
	return applyUnchanged, nil
}

// sameJSON compares two values by their JSON (empty maps and slices
// omitted alike).
func sameJSON(a, b any) (bool, error) {
	ja, err := json.Marshal(a)
	if err != nil {
		return false, err
	}
	jb, err := json.Marshal(b)
	if err != nil {
		return false, err
	}
	return bytes.Equal(ja, jb), nil
}
