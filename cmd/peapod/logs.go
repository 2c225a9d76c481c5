package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/pod"
	"github.com/peapod/peapod/runtime/state"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

type logsOptions struct {
	// container is -c; empty means the only container.
	container string
	// follow, previous, timestamps and tail as kubectl logs.
	follow, previous, timestamps bool
	tail                         int
	// allContainers prints every container of the pod (init ones first).
	allContainers bool
	// prefix starts each line with [pod/NAME/CONTAINER].
	prefix bool
	// since keeps lines newer than this (0: all).
	since time.Duration
	// selector is -l: the pods whose logs to print.
	selector string
}

func newLogsCommand(g *globals) *cobra.Command {
	o := &logsOptions{}
	cmd := &cobra.Command{
		Use:   "logs POD [-c CONTAINER | --all-containers] | -l SELECTOR",
		Short: "Print a container's logs",
		Long: "Print the logs of a pod's container, of all of them (--all-containers), or of the pods a selector\n" +
			"matches (-l: their first container unless -c, the last 10 lines unless --tail). -f follows the output\n" +
			"as it is written (inotify on the log directory, no polling), through log rotation and container\n" +
			"restarts (each new instance's log from its start), until the pod is finished or removed.",
		Example: "  sudo peapod logs web -c app -f\n  sudo peapod logs web -c app --previous --tail 20 --timestamps\n" +
			"  sudo peapod logs web --all-containers --prefix --since 5m\n  sudo peapod logs -l app=web -f --prefix",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("tail") && o.selector != "" {
				o.tail = 10 // kubectl's default with a selector
			}
			return executeLogs(g, o, args, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.container, "container", "c", "", "container name (default: the pod's default container)")
	f.BoolVarP(&o.follow, "follow", "f", false, "keep printing new output, across log rotation and restarts")
	f.BoolVarP(&o.previous, "previous", "p", false, "print the previous instance's logs")
	f.BoolVar(&o.timestamps, "timestamps", false, "prefix each line with its RFC3339 timestamp")
	f.IntVar(&o.tail, "tail", -1, "print only the last N lines (default: all; 10 with -l)")
	f.BoolVar(&o.allContainers, "all-containers", false, "print the logs of every container of the pod")
	f.BoolVar(&o.prefix, "prefix", false, "start each line with [pod/NAME/CONTAINER]")
	f.DurationVar(&o.since, "since", 0, "print only lines newer than this, e.g. 5s, 2m or 3h")
	addSelectorFlag(f, &o.selector)
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
			return nil, fmt.Errorf("pod %s has %d containers, choose one with -c or use --all-containers: %s", v.Record.Name, len(all), strings.Join(names, ", "))
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

// logStream is one container's log to print.
type logStream struct {
	// ns, pod and uid name the pod; container the container.
	ns, pod, uid, container string
	// path is the log file printed first.
	path string
}

// logStreams resolves what logs prints: per pod, the container asked for,
// every container (init first), or with a selector and no -c the first.
func logStreams(m *pod.Manager, g *globals, o *logsOptions, args []string) ([]logStream, error) {
	if (len(args) == 0) == (o.selector == "") {
		return nil, errors.New("name one pod, or select pods with -l")
	}
	if o.allContainers && o.container != "" {
		return nil, errors.New("--all-containers and -c cannot be used together")
	}
	if o.since < 0 {
		return nil, fmt.Errorf("--since must be a positive duration, got %s", o.since)
	}
	if o.tail < -1 {
		return nil, fmt.Errorf("--tail must be -1 (all) or more, got %d", o.tail)
	}
	views, errs, err := selectViews(m, g.namespace, false, args, o.selector)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var out []logStream
	for _, v := range views {
		var list []*state.ContainerStatus
		switch {
		case o.allContainers && v.Status != nil:
			for i := range v.Status.InitContainers {
				list = append(list, &v.Status.InitContainers[i])
			}
			for i := range v.Status.Containers {
				list = append(list, &v.Status.Containers[i])
			}
		case o.selector != "" && o.container == "" && v.Status != nil && len(v.Status.Containers) > 0:
			list = append(list, &v.Status.Containers[0])
		default:
			container := o.container
			if container == "" && v.Record.Manifest != nil {
				// kubectl's choice and its one line about it (on stderr).
				if container, err = m.ChooseContainer(v, ""); err != nil {
					return nil, err
				}
			}
			cs, err := containerStatus(v, container)
			if err != nil {
				return nil, err
			}
			list = append(list, cs)
		}
		for _, cs := range list {
			path := cs.LogPath
			if o.previous {
				if cs.RestartCount == 0 && cs.Last == nil {
					return nil, fmt.Errorf("previous terminated container %q in pod %q not found", cs.Name, v.Record.Name)
				}
				path = layout.InstanceLog(path, cs.RestartCount-1)
			}
			if path == "" {
				if o.allContainers || o.selector != "" {
					continue // not started yet: nothing to print
				}
				return nil, fmt.Errorf("container %q in pod %q has not started", cs.Name, v.Record.Name)
			}
			out = append(out, logStream{ns: v.Record.Namespace, pod: v.Record.Name, uid: v.Record.UID, container: cs.Name, path: path})
		}
	}
	return out, nil
}

// lineWriter prints lines of several streams whole, each with its prefix.
type lineWriter struct {
	mu  sync.Mutex
	out io.Writer
	o   *logsOptions
	// cutoff drops lines older than --since.
	cutoff time.Time
}

func (w *lineWriter) print(s logStream, l criLine) {
	if !w.cutoff.IsZero() {
		if ts, err := time.Parse(time.RFC3339Nano, l.ts); err == nil && ts.Before(w.cutoff) {
			return
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.o.prefix {
		fmt.Fprintf(w.out, "[pod/%s/%s] ", s.pod, s.container)
	}
	l.print(w.out, w.o.timestamps)
}

func executeLogs(g *globals, o *logsOptions, args []string, out io.Writer) error {
	m, err := g.manager()
	if err != nil {
		return err
	}
	streams, err := logStreams(m, g, o, args)
	if err != nil {
		return err
	}
	w := &lineWriter{out: out, o: o}
	if o.since > 0 {
		w.cutoff = time.Now().Add(-o.since)
	}
	if !o.follow || o.previous {
		for _, s := range streams {
			if err := printLog(s, o.tail, w); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, len(streams))
	var wg sync.WaitGroup
	for i, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = followLog(m, s, o.tail, w)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// printLog prints the last tail lines of a log file.
func printLog(s logStream, tail int, w *lineWriter) error {
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("failed to open log of container %q: %w", s.container, err)
	}
	defer f.Close()
	_, err = printTail(f, s, tail, w)
	return err
}

// printTail prints the last tail lines of what f holds and returns how
// far it read (up to the last whole line).
func printTail(f *os.File, s logStream, tail int, w *lineWriter) (int64, error) {
	b, err := io.ReadAll(f)
	if err != nil {
		return 0, fmt.Errorf("failed to read log of container %q: %w", s.container, err)
	}
	whole := bytes.LastIndexByte(b, '\n') + 1
	lines, err := readCRILines(bytes.NewReader(b[:whole]))
	if err != nil {
		return 0, err
	}
	if tail >= 0 && len(lines) > tail {
		lines = lines[len(lines)-tail:]
	}
	for _, l := range lines {
		w.print(s, l)
	}
	return int64(whole), nil
}

// maxRotatedLogs bounds the rotated files a follower looks through for
// the one it was reading (the supervisor keeps 4: logMaxFiles-1).
const maxRotatedLogs = 9

// followLog prints a container's log as it is written: the supervisor
// appends to the instance's file, rotates it by renaming it to .1 and
// creating a new one, and starts each restart's instance in a new file
// (N.log). An inotify watch on the log directory wakes the follower on
// each write, rotation and new instance, one on the pod's run directory
// on each status change; there is no polling. It ends when the pod is
// finished (its supervisor's last status), lost or removed.
func followLog(m *pod.Manager, s logStream, tail int, w *lineWriter) error {
	dw, err := newDirWatch()
	if err != nil {
		return err
	}
	defer dw.close()
	if err := dw.add(filepath.Dir(s.path), unix.IN_MODIFY|unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_DELETE_SELF); err != nil {
		return err
	}
	runDir := m.RunDir(s.uid)
	if err := dw.add(runDir, podDirMask); err != nil {
		return err
	}
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("failed to open log of container %q: %w", s.container, err)
	}
	defer func() { f.Close() }()
	off, err := printTail(f, s, tail, w)
	if err != nil {
		return err
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return err
	}
	r := bufio.NewReader(f)
	var partial []byte
	drain := func() {
		for {
			chunk, err := r.ReadBytes('\n')
			partial = append(partial, chunk...)
			if err != nil {
				return // a partial line waits for its end
			}
			if l, ok := parseCRILine(partial); ok {
				w.print(s, l)
			}
			partial = partial[:0]
		}
	}
	open := func(path string) error {
		nf, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("failed to open log of container %q: %w", s.container, err)
		}
		f.Close()
		f, partial = nf, partial[:0]
		r.Reset(f)
		return nil
	}
	// rotated reads the files rotated after the one just read to its end
	// (the supervisor renames path to path.1, path.1 to path.2 …: ours is
	// now path.K, and path.K-1 … path.1 are newer), then follows path.
	rotated := func() error {
		if cur, err := f.Stat(); err == nil {
			k := 0
			for i := 1; i <= maxRotatedLogs; i++ {
				if fi, err := os.Stat(s.path + "." + strconv.Itoa(i)); err == nil && os.SameFile(fi, cur) {
					k = i
					break
				}
			}
			for i := k - 1; i >= 1; i-- {
				if open(s.path+"."+strconv.Itoa(i)) == nil {
					drain()
				}
			}
		}
		return open(s.path)
	}
	for {
		drain()
		// Rotated: the name now holds a new file; the old one is read to
		// its end above.
		if fi, err := os.Stat(s.path); err == nil {
			if cur, err := f.Stat(); err == nil && !os.SameFile(fi, cur) {
				if err := rotated(); err != nil {
					return err
				}
				continue
			}
		}
		v, err := m.Get(s.ns, s.pod)
		if err != nil || v.Record.UID != s.uid || v.Phase == state.PodUnknown {
			return nil
		}
		if cs, err := containerStatus(v, s.container); err == nil && cs.LogPath != "" && cs.LogPath != s.path {
			// Restarted: the new instance writes its own file.
			drain()
			if err := open(cs.LogPath); err != nil {
				return err
			}
			s.path = cs.LogPath
			continue
		}
		if v.Final {
			drain()
			return nil
		}
		if err := dw.wait(); err != nil {
			return err
		}
	}
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
