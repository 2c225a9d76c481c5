// Command peapod-cri serves the Kubernetes CRI (runtime v1) for one peapod
// root. It is started by `peapod cri`, which resolves the root's network
// and helper paths and passes them as flags; it is a binary of its own so
// that gRPC and k8s.io/cri-api (several ms of package initialisation) stay
// out of every other `peapod` command's start-up.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/peapod/peapod/cni"
	"github.com/peapod/peapod/cni/chain"
	"github.com/peapod/peapod/cri"
	"github.com/peapod/peapod/image"
	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/pod"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// DefaultSocket is where the CRI socket is served by default.
const DefaultSocket = "/run/peapod/cri.sock"

// config is the command line.
type config struct {
	listen, root, runRoot, cgroupDriver string
	streamingAddress                    string
	bridge, subnet                      string
	cniConflist, cniConfDir, cniBinDirs string
	supervisor, init                    string
	backoffInitial, backoffMax          float64
	registryConfig                      string
}

func main() {
	var c config
	fs := flag.NewFlagSet("peapod-cri", flag.ExitOnError)
	fs.StringVar(&c.listen, "listen", DefaultSocket, "unix socket to serve the CRI on (mode 0660, owned by root)")
	fs.StringVar(&c.streamingAddress, "streaming-address", cri.DefaultStreamingAddress, "loopback host:port of the streaming server of exec and port-forward (port 0: any)")
	fs.StringVar(&c.root, "root", "/var/lib/peapod-cri", "persistent root of the CRI's pods")
	fs.StringVar(&c.runRoot, "run-root", "/run/peapod-cri", "volatile root of the CRI's pods")
	fs.StringVar(&c.cgroupDriver, "cgroup-driver", "auto", "cgroup driver: auto, v1 or v2")
	fs.StringVar(&c.bridge, "bridge", "", "bridge of the pod network (required without --cni-conflist)")
	fs.StringVar(&c.subnet, "subnet", "", "subnet of the pod network (required without --cni-conflist)")
	fs.StringVar(&c.cniConflist, "cni-conflist", "", "run this CNI conflist instead of the built-in bridge")
	fs.StringVar(&c.cniConfDir, "cni-conf-dir", "/etc/cni/net.d", "where --cni-conflist is found")
	fs.StringVar(&c.cniBinDirs, "cni-bin-dirs", "/usr/lib/cni:/opt/cni/bin", "colon-separated CNI plugin directories")
	fs.StringVar(&c.supervisor, "supervisor", "", "path of peapod-supervisor (required)")
	fs.StringVar(&c.init, "init", "", "path of peapod-init (required)")
	fs.Float64Var(&c.backoffInitial, "backoff-initial", 10, "crash-loop backoff after the second exit, in seconds")
	fs.Float64Var(&c.backoffMax, "backoff-max", 300, "maximum crash-loop backoff, in seconds")
	fs.StringVar(&c.registryConfig, "registry-config", "", "registry config of pulls: mirrors, TLS, insecure registries (default "+image.DefaultRegistryConfig+", if it exists)")
	fs.Parse(os.Args[1:])
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "peapod-cri:", err)
		os.Exit(1)
	}
}

func run(c config) error {
	if c.supervisor == "" || c.init == "" {
		return errors.New("--supervisor and --init are required (peapod cri passes them)")
	}
	// The registry config is read first: a mistake in it fails the start,
	// not the kubelet's first pull.
	cfgPath, missingOK := c.registryConfig, false
	if cfgPath == "" {
		cfgPath, missingOK = image.DefaultRegistryConfig, true
	}
	registries, err := image.LoadRegistryConfig(cfgPath, missingOK)
	if err != nil {
		return err
	}
	var netc cni.Config
	var ch *chain.Chain
	if c.cniConflist != "" {
		ch, err = chain.Load(c.cniConfDir, c.cniConflist, strings.Split(c.cniBinDirs, ":"), chain.WithCacheDir(layout.Root{Root: c.root, RunRoot: c.runRoot}.CNICacheDir()))
		if err != nil {
			return err
		}
	} else {
		prefix, err := netip.ParsePrefix(c.subnet)
		if err != nil || c.bridge == "" {
			return fmt.Errorf("--bridge %q and --subnet %q must name the pod network", c.bridge, c.subnet)
		}
		netc = cni.DefaultConfig(c.root)
		netc.Bridge, netc.Subnet = c.bridge, prefix.Masked()
		netc.Gateway = netc.Subnet.Addr().Next()
		netc.DataDir = layout.NetDataDir(c.root, c.bridge)
	}
	m, err := pod.Open(pod.Options{
		Root: c.root, RunRoot: c.runRoot, CgroupDriver: c.cgroupDriver, Network: netc, Chain: ch,
		Supervisor: c.supervisor, Init: c.init, BackoffInitialSeconds: c.backoffInitial, BackoffMaxSeconds: c.backoffMax, Warn: os.Stderr,
		Trace: traceOut(),
	})
	if err != nil {
		return err
	}
	ln, err := cri.Listen(c.listen)
	if err != nil {
		return err
	}
	srv := cri.New(m, version)
	srv.SetRegistries(registries)
	streamAddr, stopStreaming, err := srv.StartStreaming(c.streamingAddress)
	if err != nil {
		ln.Close()
		return err
	}
	defer stopStreaming()
	g := cri.NewGRPCServer(srv)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		// Pods outlive the daemon: only the socket goes. The event
		// streams never end by themselves: they end first, cleanly.
		srv.StopEvents()
		g.GracefulStop()
	}()
	fmt.Fprintf(os.Stderr, "peapod-cri: streaming on http://%s\n", streamAddr)
	fmt.Fprintf(os.Stderr, "peapod-cri: serving the CRI on %s for root %s\n", c.listen, c.root)
	err = g.Serve(ln)
	os.Remove(c.listen)
	return err
}

// traceOut is stderr when PEAPOD_TRACE is set, as for `peapod run` and
// `rm`: each sandbox's creation and removal then prints how long each of
// its steps took (scripts/bench.sh's scenario 9 reads them).
func traceOut() io.Writer {
	if os.Getenv("PEAPOD_TRACE") == "" {
		return nil
	}
	return os.Stderr
}
