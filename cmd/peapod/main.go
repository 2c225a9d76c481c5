// Command peapod runs Kubernetes v1 Pod manifests as real pod sandboxes on
// this Linux machine. Each command only parses flags and calls an
// execute function that tests can call too.
package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/peapod/peapod/cni"
	"github.com/peapod/peapod/cni/chain"
	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/pod"
	"github.com/peapod/peapod/runtime/state"
	"github.com/spf13/cobra"

	"github.com/peapod/peapod/internal/ktrace"
	// A plain `peapod exec` runs in this package's C constructor, before
	// the Go runtime starts (see its doc); it is inert otherwise.
	_ "github.com/peapod/peapod/cmd/peapod/internal/fastexec"
)

// globals are the flags every command shares.
type globals struct {
	// root and runRoot are the persistent and volatile roots.
	root, runRoot string
	// namespace is -n/--namespace.
	namespace string
	// cgroupDriver is auto, v1 or v2.
	cgroupDriver string
	// bridge and subnet configure the root's network on first use.
	bridge, subnet string
	// netMode is "" (the built-in bridge) or "cni:<conflist name>".
	netMode string
	// backoffInitial and backoffMax tune crash-loop backoff (seconds).
	backoffInitial, backoffMax float64
	// debug and logFormat: --debug traces every kernel operation (see internal/ktrace).
	debug     bool
	logFormat string
	// process is set when these globals are the peapod process's own
	// (main), not a test's calling the commands in its process: only then
	// may a command tune the Go runtime of the process (see shortLived).
	process bool
}

// shortLived turns Go's garbage collector off for a command that exits
// within milliseconds (run -d, rm): such a command allocates a few MiB
// (manifest decoding, validation), crossing the collector's 4 MiB minimum
// goal once in about every second run, and a collection cycle then costs
// 1–2 ms of a ~20 ms command (GODEBUG=gctrace=1 shows it). The memory
// limit brings the collector back for a large manifest or a pull.
func (g *globals) shortLived() {
	if !g.process {
		return
	}
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(shortLivedMemoryLimit)
}

// shortLivedMemoryLimit is the heap at which a shortLived command collects
// after all.
const shortLivedMemoryLimit = 64 << 20

// dirs is the on-disk layout of the roots.
func (g *globals) dirs() layout.Root { return layout.Root{Root: g.root, RunRoot: g.runRoot} }

func main() {
	g := &globals{process: true}
	root := newRootCommand(g)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

// exitError carries a specific exit code (exec passes its command's).
type exitError struct {
	// code is the process exit code.
	code int
}

func (e exitError) Error() string { return fmt.Sprintf("exit code %d", e.code) }

func newRootCommand(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "peapod",
		Short:         "Run Kubernetes pods on a plain Linux machine",
		Example:       "  sudo peapod run -d -f examples/two-containers.yaml\n  sudo peapod ps",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if err := g.setupDebug(); err != nil {
				return err
			}
			if os.Geteuid() != 0 {
				return errors.New("peapod must run as root (try: sudo peapod ...)")
			}
			return nil
		},
	}
	f := root.PersistentFlags()
	f.StringVar(&g.root, "root", "/var/lib/peapod", "persistent state: images, pod records, logs, leases")
	f.StringVar(&g.runRoot, "run-root", "/run/peapod", "volatile state: specs, status, sockets, namespace pins")
	f.StringVarP(&g.namespace, "namespace", "n", "default", "the pods' Kubernetes namespace")
	f.StringVar(&g.cgroupDriver, "cgroup-driver", "auto", "cgroup driver: auto, v1 or v2")
	f.StringVar(&g.bridge, "bridge", "", "bridge of this root's pod network (default peapod0; fixed at first use)")
	f.StringVar(&g.subnet, "subnet", "", "subnet of this root's pod network (default 10.220.0.0/16; fixed at first use)")
	f.StringVar(&g.netMode, "network", "", `pod network: "" for the built-in bridge, or "cni:NAME" for the conflist NAME in /etc/cni/net.d run with the plugins in /usr/lib/cni and /opt/cni/bin (fixed at first use)`)
	f.Float64Var(&g.backoffInitial, "backoff-initial", 10, "crash-loop backoff after the second exit, in seconds (kubelet: 10)")
	f.Float64Var(&g.backoffMax, "backoff-max", 300, "maximum crash-loop backoff, in seconds (kubelet: 300)")
	f.BoolVar(&g.debug, "debug", os.Getenv(ktrace.EnvDebug) == "1", "log every kernel operation (unshare, clone, setns, mount, pivot_root, netlink, nftables, cgroup writes) with its duration on stderr; also PEAPOD_DEBUG=1")
	f.StringVar(&g.logFormat, "log-format", "text", "format of --debug lines: text or json")
	root.AddCommand(newRunCommand(g), newPsCommand(g), newGetCommand(g), newInspectCommand(g),
		newStopCommand(g), newRmCommand(g), newExecCommand(g), newLogsCommand(g), newWaitCommand(g),
		newEventsCommand(g), newImageCommand(g), newGcCommand(g), newNetCommand(g), newVersionCommand(), newMetricsCommand(g), newCriCommand(g),
		newTopCommand(g), newStatsCommand(g), newUpdateCommand(g))
	root.AddCommand(newPortForwardCommand(g), newCpCommand(g))
	root.AddCommand(newCheckCommand(g))
	root.AddCommand(newAttachCommand(g))
	root.AddCommand(newLoginCommand(g), newLogoutCommand(g))
	finishCommands(root, g)
	return root
}

// networkConfig is the root's network config file.
type networkConfig struct {
	// Version is state.Version.
	Version string `json:"version"`
	// Bridge and Subnet of the root's pod network.
	Bridge string `json:"bridge"`
	Subnet string `json:"subnet"`
	// Network is "" for the built-in bridge or "cni:<conflist name>".
	Network string `json:"network,omitempty"`
	// CNIConfDir and CNIBinDirs locate an external chain's config and plugins.
	CNIConfDir string   `json:"cniConfDir,omitempty"`
	CNIBinDirs []string `json:"cniBinDirs,omitempty"`
}

// loadNetwork loads the root's network config, writing it on first use from
// the flags (or defaults); later flags that differ are an error, since pods
// already live on that network.
func (g *globals) loadNetwork() (cni.Config, *networkConfig, error) {
	path := g.dirs().NetworkConfig()
	c := cni.DefaultConfig(g.root)
	var nc networkConfig
	err := state.ReadJSON(path, &nc)
	switch {
	case errors.Is(err, state.ErrNotFound):
		nc = networkConfig{Version: state.Version, Bridge: c.Bridge, Subnet: c.Subnet.String(), Network: g.netMode}
		if strings.HasPrefix(g.netMode, "cni:") {
			nc.CNIConfDir, nc.CNIBinDirs = "/etc/cni/net.d", []string{"/usr/lib/cni", "/opt/cni/bin"}
		} else if g.netMode != "" {
			return c, nil, fmt.Errorf(`invalid --network %q: use "" (the built-in bridge) or "cni:NAME"`, g.netMode)
		}
		if g.bridge != "" {
			nc.Bridge = g.bridge
		}
		if g.subnet != "" {
			nc.Subnet = g.subnet
		}
		if _, err := netip.ParsePrefix(nc.Subnet); err != nil {
			return c, nil, fmt.Errorf("invalid --subnet %q: %w", nc.Subnet, err)
		}
		if err := os.MkdirAll(g.root, 0o700); err != nil {
			return c, nil, fmt.Errorf("failed to create root %q: %w", g.root, err)
		}
		if err := state.WriteJSON(path, &nc); err != nil {
			return c, nil, err
		}
	case err != nil:
		return c, nil, err
	default:
		if g.bridge != "" && g.bridge != nc.Bridge {
			return c, nil, fmt.Errorf("--bridge %q differs from %q in %s; this root's pods use that network", g.bridge, nc.Bridge, path)
		}
		if g.netMode != "" && g.netMode != nc.Network {
			return c, nil, fmt.Errorf("--network %q differs from %q in %s; this root's pods use that network", g.netMode, nc.Network, path)
		}
		if g.subnet != "" && g.subnet != nc.Subnet {
			return c, nil, fmt.Errorf("--subnet %q differs from %q in %s; this root's pods use that network", g.subnet, nc.Subnet, path)
		}
	}
	prefix, err := netip.ParsePrefix(nc.Subnet)
	if err != nil {
		return c, nil, fmt.Errorf("invalid subnet %q in %s: %w", nc.Subnet, path, err)
	}
	c.Bridge, c.Subnet = nc.Bridge, prefix.Masked()
	c.Gateway = c.Subnet.Addr().Next()
	c.DataDir = g.dirs().NetDataDir(c.Bridge)
	return c, &nc, nil
}

// manager opens the pod manager of the chosen root.
func (g *globals) manager() (*pod.Manager, error) {
	netc, nc, err := g.loadNetwork()
	if err != nil {
		return nil, err
	}
	var ch *chain.Chain
	if name, ok := strings.CutPrefix(nc.Network, "cni:"); ok {
		ch, err = chain.Load(nc.CNIConfDir, name, nc.CNIBinDirs, chain.WithCacheDir(g.dirs().CNICacheDir()))
		if err != nil {
			return nil, err
		}
	}
	sup, err := helperPath("PEAPOD_SUPERVISOR", "peapod-supervisor")
	if err != nil {
		return nil, err
	}
	initBin, err := helperPath("PEAPOD_INIT", "peapod-init")
	if err != nil {
		return nil, err
	}
	return pod.Open(pod.Options{
		Root: g.root, RunRoot: g.runRoot, CgroupDriver: g.cgroupDriver, Network: netc, Chain: ch, Supervisor: sup, Init: initBin,
		BackoffInitialSeconds: g.backoffInitial, BackoffMaxSeconds: g.backoffMax, Warn: os.Stderr, Trace: traceOut(),
	})
}

// traceOut is stderr when PEAPOD_TRACE is set: run and rm then print how
// long each of their steps took.
func traceOut() io.Writer {
	if os.Getenv("PEAPOD_TRACE") == "" {
		return nil
	}
	return os.Stderr
}

// helperPath finds one of peapod's helper binaries: $env, else name beside
// this binary.
func helperPath(env, name string) (string, error) {
	if p := os.Getenv(env); p != "" {
		return p, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("failed to find the peapod binary: %w", err)
	}
	p := filepath.Join(filepath.Dir(self), name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s not found beside %s (set %s): %w", name, self, env, err)
	}
	return p, nil
}
