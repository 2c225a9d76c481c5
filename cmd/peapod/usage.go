package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/peapod/peapod/cgroups"
	"github.com/peapod/peapod/runtime/pod"
)

// The figures commands: top (kubectl top pod), stats (podman stats) and
// update (an in-place resize). All read the cgroup files the kernel keeps;
// nothing is sampled in the background.

func newTopCommand(g *globals) *cobra.Command {
	var containers, all bool
	var window time.Duration
	cmd := &cobra.Command{
		Use:   "top [POD]",
		Short: "Show the CPU (millicores) and memory (working set) of pods, like kubectl top pod",
		Long: "top reads each pod's cgroup twice, --window apart, and prints the CPU used in between in\n" +
			"millicores and the memory working set (usage minus inactive page cache, cAdvisor's and the\n" +
			"kubelet's definition).",
		Example: "  sudo peapod top\n  sudo peapod top web --containers",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if window <= 0 {
				return fmt.Errorf("--window must be positive, got %s", window)
			}
			return executeTop(cmd.Context(), g, args, all, containers, window, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&containers, "containers", false, "show each container of the pods")
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "pods of every namespace")
	cmd.Flags().DurationVar(&window, "window", time.Second, "how long the CPU is measured over")
	return cmd
}

// sample reads the stats of the named pods (every running pod of ns when
// names is empty; "" = every namespace). A named pod that is not running
// is an error; an unnamed one that stops meanwhile is left out.
func sample(m *pod.Manager, ns string, names []string) ([]*pod.PodStats, error) {
	var out []*pod.PodStats
	if len(names) > 0 {
		for _, n := range names {
			s, err := m.Stats(ns, n)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	views, err := m.List(ns)
	if err != nil {
		return nil, err
	}
	for _, v := range views {
		s, err := m.StatsOf(v)
		if errors.Is(err, pod.ErrNotRunning) || errors.Is(err, pod.ErrNotFound) {
			continue // not running, or stopped since the listing
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// cpuMilli is the CPU used between two samples of a cgroup, in millicores.
func cpuMilli(before, after cgroups.Stats, d time.Duration) int64 {
	if d <= 0 || !after.Has[cgroups.StatCPU] || after.CPUUsageUsec < before.CPUUsageUsec {
		return 0
	}
	return (after.CPUUsageUsec - before.CPUUsageUsec) * 1000 / d.Microseconds()
}

// indexStats maps namespace/name to a pod's stats.
func indexStats(l []*pod.PodStats) map[string]*pod.PodStats {
	out := make(map[string]*pod.PodStats, len(l))
	for _, s := range l {
		out[s.Namespace+"/"+s.Name] = s
	}
	return out
}

func executeTop(ctx context.Context, g *globals, args []string, all, containers bool, window time.Duration, out io.Writer) error {
	m, err := g.manager()
	if err != nil {
		return err
	}
	ns := g.namespace
	if all {
		ns = ""
	}
	first, err := sample(m, ns, args)
	if err != nil {
		return err
	}
	if len(first) == 0 {
		return fmt.Errorf("no running pods in %s", nsWords(ns))
	}
	t := time.NewTimer(window)
	select {
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	case <-t.C:
	}
	second, err := sample(m, ns, args)
	if err != nil {
		return err
	}
	return writeTop(out, first, second, all, containers)
}

func nsWords(ns string) string {
	if ns == "" {
		return "any namespace"
	}
	return "namespace " + ns
}

// writeTop prints kubectl top pod's table from two samples.
func writeTop(out io.Writer, first, second []*pod.PodStats, all, containers bool) error {
	before := indexStats(first)
	tw := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
	var head []string
	if all {
		head = append(head, "NAMESPACE")
	}
	if containers {
		head = append(head, "POD")
	}
	head = append(head, "NAME", "CPU(cores)", "MEMORY(bytes)")
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, s := range second {
		b, ok := before[s.Namespace+"/"+s.Name]
		if !ok {
			continue // started between the samples: no rate yet
		}
		d := s.At.Sub(b.At)
		prefix := ""
		if all {
			prefix = s.Namespace + "\t"
		}
		if !containers {
			fmt.Fprintf(tw, "%s%s\t%dm\t%s\n", prefix, s.Name, cpuMilli(b.Pod, s.Pod, d), mebibytes(s.Pod))
			continue
		}
		for i, c := range s.Containers {
			if i >= len(b.Containers) || b.Containers[i].Name != c.Name {
				continue
			}
			fmt.Fprintf(tw, "%s%s\t%s\t%dm\t%s\n", prefix, s.Name, c.Name, cpuMilli(b.Containers[i].Stats, c.Stats, d), mebibytes(c.Stats))
		}
	}
	return tw.Flush()
}

// mebibytes formats a working set as kubectl top does ("12Mi").
func mebibytes(s cgroups.Stats) string {
	if !s.Has[cgroups.StatMemory] {
		return "<unknown>"
	}
	return fmt.Sprintf("%dMi", s.MemoryWorkingSet>>20)
}

func newStatsCommand(g *globals) *cobra.Command {
	var noStream, all bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "stats [POD...]",
		Short: "Show a live table of the pods' CPU, memory, network, block I/O and PIDs, like podman stats",
		Long: "stats refreshes the table in place every --interval on a terminal (Ctrl-C ends it) and prints\n" +
			"one table per interval otherwise; --no-stream prints one table, from two readings\n" +
			"--interval apart. Block I/O is shown where the cgroup driver accounts it (cgroup v2's io\n" +
			"controller); a pod without a memory limit shows the machine's memory as its limit.",
		Example: "  sudo peapod stats\n  sudo peapod stats web db --no-stream",
		RunE: func(cmd *cobra.Command, args []string) error {
			if interval <= 0 {
				return fmt.Errorf("--interval must be positive, got %s", interval)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			return executeStats(ctx, g, args, all, noStream, interval, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&noStream, "no-stream", false, "print one table and exit")
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "pods of every namespace")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "time between readings")
	return cmd
}

func executeStats(ctx context.Context, g *globals, args []string, all, noStream bool, interval time.Duration, out io.Writer) error {
	m, err := g.manager()
	if err != nil {
		return err
	}
	ns := g.namespace
	if all {
		ns = ""
	}
	hostMem, err := pod.HostMemory()
	if err != nil {
		return err
	}
	tty := false
	if f, ok := out.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	prev, err := sample(m, ns, args)
	if err != nil {
		return err
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		cur, err := sample(m, ns, args)
		if err != nil {
			return err
		}
		if tty && !noStream {
			fmt.Fprint(out, "\x1b[H\x1b[2J") // home and clear, as podman's live table
		}
		if err := writeStats(out, prev, cur, all, hostMem); err != nil {
			return err
		}
		if noStream {
			return nil
		}
		prev = cur
	}
}

// writeStats prints podman stats' table from two readings.
func writeStats(out io.Writer, prev, cur []*pod.PodStats, all bool, hostMem int64) error {
	before := indexStats(prev)
	tw := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
	head := "NAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tNET I/O\tBLOCK I/O\tPIDS"
	if all {
		head = "NAMESPACE\t" + head
	}
	fmt.Fprintln(tw, head)
	sort.Slice(cur, func(i, j int) bool {
		return cur[i].Namespace+"/"+cur[i].Name < cur[j].Namespace+"/"+cur[j].Name
	})
	for _, s := range cur {
		cpu := "--"
		if b, ok := before[s.Namespace+"/"+s.Name]; ok {
			cpu = fmt.Sprintf("%.2f%%", float64(cpuMilli(b.Pod, s.Pod, s.At.Sub(b.At)))/10)
		}
		mem, memPct := "--", "--"
		if s.Pod.Has[cgroups.StatMemory] {
			limit := s.Pod.MemoryLimit
			if limit == 0 {
				limit = hostMem
			}
			mem = humanBytes(s.Pod.MemoryUsage) + " / " + humanBytes(limit)
			memPct = fmt.Sprintf("%.2f%%", float64(s.Pod.MemoryUsage)*100/float64(limit))
		}
		netIO := "--"
		if s.HasNet {
			netIO = humanBytes(s.NetRxBytes) + " / " + humanBytes(s.NetTxBytes)
		}
		blockIO := "--"
		if s.Pod.Has[cgroups.StatIO] {
			blockIO = humanBytes(s.Pod.IOReadBytes) + " / " + humanBytes(s.Pod.IOWriteBytes)
		}
		pids := "--"
		if s.Pod.Has[cgroups.StatPids] {
			pids = fmt.Sprint(s.Pod.PidsCurrent)
		}
		prefix := ""
		if all {
			prefix = s.Namespace + "\t"
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%s\t%s\t%s\n", prefix, s.Name, cpu, mem, memPct, netIO, blockIO, pids)
	}
	return tw.Flush()
}

// humanBytes writes a size in decimal units with three significant
// digits, as podman and docker stats do ("12.3MB").
func humanBytes(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	f, i := float64(n), 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%dB", n)
	}
	return fmt.Sprintf("%.3g%s", f, units[i])
}

func newUpdateCommand(g *globals) *cobra.Command {
	var container, cpu, memory string
	cmd := &cobra.Command{
		Use:   "update POD -c CONTAINER [--cpu QUANTITY] [--memory QUANTITY]",
		Short: "Change a running container's CPU and memory limits in place, without a restart",
		Long: "update rewrites the container's and the pod's cgroup limits, as the CRI's\n" +
			"UpdateContainerResources and Kubernetes' in-place resize do. As in Kubernetes, the pod's QoS\n" +
			"class may not change: a request equal to the old limit follows the new one. A memory limit\n" +
			"below what the container uses now is refused.",
		Example: "  sudo peapod update web -c app --cpu 500m --memory 128Mi",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if container == "" {
				return fmt.Errorf("-c/--container is required")
			}
			cpuQ, err := quantityFlag("--cpu", cpu)
			if err != nil {
				return err
			}
			memQ, err := quantityFlag("--memory", memory)
			if err != nil {
				return err
			}
			m, err := g.manager()
			if err != nil {
				return err
			}
			p, err := m.Resize(g.namespace, args[0], container, cpuQ, memQ)
			if err != nil {
				return err
			}
			for _, c := range p.Spec.Containers {
				if c.Name == container {
					lim := c.Resources.Limits
					fmt.Fprintf(cmd.OutOrStdout(), "pod/%s container %s resized: cpu %s, memory %s\n",
						args[0], container, limitWords(lim.Cpu()), limitWords(lim.Memory()))
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&container, "container", "c", "", "the container to resize")
	cmd.Flags().StringVar(&cpu, "cpu", "", "new CPU limit (e.g. 500m, 2)")
	cmd.Flags().StringVar(&memory, "memory", "", "new memory limit (e.g. 128Mi, 1Gi)")
	return cmd
}

// quantityFlag parses a Kubernetes quantity flag; "" means not given.
func quantityFlag(name, v string) (*resource.Quantity, error) {
	if v == "" {
		return nil, nil
	}
	q, err := resource.ParseQuantity(v)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", name, v, err)
	}
	if q.Sign() <= 0 {
		return nil, fmt.Errorf("%s %q: must be greater than 0", name, v)
	}
	return &q, nil
}

func limitWords(q *resource.Quantity) string {
	if q == nil || q.IsZero() {
		return "unlimited"
	}
	return q.String()
}
