package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/pod"
	"github.com/peapod/peapod/runtime/state"
	"github.com/spf13/cobra"
)

type logsOptions struct {
	// container is -c; empty means the only container.
	container string
	// follow, previous, timestamps and tail as kubectl logs.
	follow, previous, timestamps bool
	tail                         int
}

func newLogsCommand(g *globals) *cobra.Command {
	o := &logsOptions{}
	cmd := &cobra.Command{
		Use:     "logs POD [-c CONTAINER]",
		Short:   "Print a container's logs",
		Example: "  sudo peapod logs web -c app -f\n  sudo peapod logs web -c app --previous --tail 20 --timestamps",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return executeLogs(g, o, args[0], cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.container, "container", "c", "", "container name (default: the pod's default container)")
	f.BoolVarP(&o.follow, "follow", "f", false, "keep printing new output")
	f.BoolVarP(&o.previous, "previous", "p", false, "print the previous instance's logs")
	f.BoolVar(&o.timestamps, "timestamps", false, "prefix each line with its RFC3339 timestamp")
	f.IntVar(&o.tail, "tail", -1, "print only the last N lines")
	return cmd
}

// containerStatus finds the named container (init containers too).
func containerStatus(v *pod.View, name string) (*state.ContainerStatus, error) {
	if v.Status == nil {
		return nil, fmt.Errorf("pod %s/%s has no status yet", v.Record.Namespace, v.Record.Name)
	}
	all := append(append([]state.ContainerStatus{}, v.Status.Containers...), v.Status.InitContainers...)
	if name == "" {
		if len(v.Status.Containers) != 1 {
			var names []string
			for _, c := range all {
				names = append(names, c.Name)
			}
			return nil, fmt.Errorf("pod %s has %d containers, choose one with -c: %s", v.Record.Name, len(all), strings.Join(names, ", "))
		}
		return &v.Status.Containers[0], nil
	}
	for i := range all {
		if all[i].Name == name {
			return &all[i], nil
		}
	}
	return nil, fmt.Errorf("container %q not found in pod %s/%s", name, v.Record.Namespace, v.Record.Name)
}

func executeLogs(g *globals, o *logsOptions, name string, out io.Writer) error {
	m, err := g.manager()
	if err != nil {
		return err
	}
	v, err := m.Get(g.namespace, name)
	if err != nil {
		return err
	}
	container := o.container
	if container == "" && v.Record.Manifest != nil {
		// kubectl's choice and its one line about it (on stderr).
		if container, err = m.ChooseContainer(v, ""); err != nil {
			return err
		}
	}
	cs, err := containerStatus(v, container)
	if err != nil {
		return err
	}
	path := cs.LogPath
	if o.previous {
		if cs.RestartCount == 0 && cs.Last == nil {
			return fmt.Errorf("previous terminated container %q in pod %q not found", cs.Name, name)
		}
		path = layout.InstanceLog(path, cs.RestartCount-1)
	}
	if path == "" {
		return fmt.Errorf("container %q in pod %q has not started", cs.Name, name)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("failed to open log of container %q: %w", cs.Name, err)
	}
	defer f.Close()
	lines, err := readCRILines(f)
	if err != nil {
		return err
	}
	if o.tail >= 0 && len(lines) > o.tail {
		lines = lines[len(lines)-o.tail:]
	}
	for _, l := range lines {
		l.print(out, o.timestamps)
	}
	if !o.follow || o.previous {
		return nil
	}
	r := bufio.NewReader(f)
	var partial []byte
	for {
		chunk, err := r.ReadBytes('\n')
		partial = append(partial, chunk...)
		if err == io.EOF {
			// The kernel has no readable event for "file grew" that works
			// across rotation without inotify plumbing; a short poll is the
			// follow refresh rate.
			time.Sleep(100 * time.Millisecond)
			if done := followDone(m, g.namespace, name, cs.Name, cs.LogPath); done {
				return nil
			}
			continue
		}
		if l, ok := parseCRILine(partial); ok {
			l.print(out, o.timestamps)
		}
		partial = partial[:0]
	}
}

// followDone reports that the followed instance is over: the container
// restarted into a new log, or the pod is gone or final.
func followDone(m *pod.Manager, ns, name, container, path string) bool {
	v, err := m.Get(ns, name)
	if err != nil || v.Final || v.Phase == state.PodUnknown {
		return true
	}
	cs, err := containerStatus(v, container)
	return err != nil || cs.LogPath != path || cs.State == state.StateTerminated
}

// criLine is one parsed CRI log line.
type criLine struct {
	// ts is the timestamp as written.
	ts string
	// stream is stdout or stderr.
	stream string
	// partial marks a P line, continued by the next.
	partial bool
	// text is the content.
	text []byte
}

func parseCRILine(b []byte) (criLine, bool) {
	b = bytes.TrimSuffix(b, []byte("\n"))
	parts := bytes.SplitN(b, []byte(" "), 4)
	if len(parts) < 3 {
		return criLine{}, false
	}
	l := criLine{ts: string(parts[0]), stream: string(parts[1]), partial: string(parts[2]) == "P"}
	if len(parts) == 4 {
		l.text = parts[3]
	}
	return l, true
}

// readCRILines parses a CRI log, joining partial lines.
func readCRILines(r io.Reader) ([]criLine, error) {
	var out []criLine
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var pending *criLine
	for sc.Scan() {
		l, ok := parseCRILine(sc.Bytes())
		if !ok {
			continue
		}
		l.text = append([]byte(nil), l.text...)
		if pending != nil {
			pending.text = append(pending.text, l.text...)
			pending.partial = l.partial
		} else {
			pending = &l
		}
		if !pending.partial {
			out = append(out, *pending)
			pending = nil
		}
	}
	if pending != nil {
		out = append(out, *pending)
	}
	return out, sc.Err()
}

func (l criLine) print(w io.Writer, timestamps bool) {
	if timestamps {
		fmt.Fprintf(w, "%s %s\n", l.ts, l.text)
		return
	}
	fmt.Fprintf(w, "%s\n", l.text)
}

// follower prints a pod's new events and container output, for run
// without -d.
type follower struct {
	// m, ns and name find the pod.
	m        *pod.Manager
	ns, name string
	// out receives the output.
	out io.Writer
	// offsets are how far each log file was printed.
	offsets map[string]int64
	// seen counts printed occurrences per event key.
	seen map[string]int
}

func newFollower(m *pod.Manager, ns, name string, out io.Writer) *follower {
	return &follower{m: m, ns: ns, name: name, out: out, offsets: map[string]int64{}, seen: map[string]int{}}
}

// step prints what is new and reports whether the pod is done.
func (f *follower) step() bool {
	v, err := f.m.Get(f.ns, f.name)
	if err != nil {
		return true
	}
	for _, e := range f.m.Events(v).Items {
		key := e.Object + "\x00" + e.Reason + "\x00" + e.Message
		if f.seen[key] < e.Count {
			f.seen[key] = e.Count
			fmt.Fprintf(f.out, "[%s] %s %s %s: %s\n", f.name, e.Type, e.Reason, e.Object, e.Message)
		}
	}
	if v.Status != nil {
		for _, c := range append(append([]state.ContainerStatus{}, v.Status.InitContainers...), v.Status.Containers...) {
			f.printNew(c.Name, c.LogPath)
		}
	}
	return v.Final || v.Phase == state.PodUnknown
}

func (f *follower) printNew(container, path string) {
	if path == "" {
		return
	}
	fh, err := os.Open(path)
	if err != nil {
		return
	}
	defer fh.Close()
	if _, err := fh.Seek(f.offsets[path], io.SeekStart); err != nil {
		return
	}
	r := bufio.NewReader(fh)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return // a partial line is printed once it is complete
		}
		f.offsets[path] += int64(len(line))
		if l, ok := parseCRILine(line); ok {
			fmt.Fprintf(f.out, "[%s/%s] %s\n", f.name, container, l.text)
		}
	}
}
