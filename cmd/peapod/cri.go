package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/peapod/peapod/image"
	"github.com/spf13/cobra"
)

// Defaults of `peapod cri`: its pods live in a root of their own, so a
// kubelet sees only what it created, on a network of their own, so the
// two roots' address pools never overlap.
const (
	criRoot    = "/var/lib/peapod-cri"
	criRunRoot = "/run/peapod-cri"
	criSocket  = "/run/peapod/cri.sock"
	criBridge  = "peapodcri0"
	criSubnet  = "10.221.0.0/16"
)

func newCriCommand(g *globals) *cobra.Command {
	var listen, streamingAddress, registryConfig string
	cmd := &cobra.Command{
		Use:   "cri",
		Short: "Serve the Kubernetes CRI (runtime v1) on a unix socket for a kubelet",
		Long: `Serve the Kubernetes Container Runtime Interface (k8s.io/cri-api runtime v1,
gRPC) on --listen, mode 0660 owned by root. Its pods live in their own root
(` + criRoot + `, ` + criRunRoot + ` unless --root/--run-root are given) on
their own network (bridge ` + criBridge + `, ` + criSubnet + ` by default);
` + "`peapod --root " + criRoot + " --run-root " + criRunRoot + " ps`" + ` shows them.

The server is the peapod-cri binary beside peapod (or $PEAPOD_CRI), so gRPC
stays out of every other command's start-up. Exec and port-forward streams
go through its streaming server on loopback (--streaming-address), attach too.

Point a kubelet at it with:
  --container-runtime-endpoint=unix://` + criSocket + `
  --cgroup-driver=cgroupfs   (the sandbox's cgroup_parent gives its QoS class; the pod
                             cgroup goes under peapod's cgroup of that class)

Pulls go through the mirrors of the registry config (` + image.DefaultRegistryConfig + `
or --registry-config), as peapod image pull's do.`,
		Example: "  sudo peapod cri\n  sudo crictl --runtime-endpoint unix://" + criSocket + " pods",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pf := cmd.Flags()
			if !pf.Changed("root") {
				g.root = criRoot
				if !pf.Changed("bridge") {
					g.bridge = criBridge
				}
				if !pf.Changed("subnet") {
					g.subnet = criSubnet
				}
			}
			if !pf.Changed("run-root") {
				g.runRoot = criRunRoot
			}
			// A mistake in the registry config fails here, before the
			// root's network is fixed; peapod-cri reads it again.
			cfgPath, missingOK := registryConfig, false
			if cfgPath == "" {
				cfgPath, missingOK = image.DefaultRegistryConfig, true
			}
			if _, err := image.LoadRegistryConfig(cfgPath, missingOK); err != nil {
				return err
			}
			argv, err := g.criArgs(listen, streamingAddress)
			if err != nil {
				return err
			}
			if registryConfig != "" {
				argv = append(argv, "--registry-config", registryConfig)
			}
			bin, err := helperPath("PEAPOD_CRI", "peapod-cri")
			if err != nil {
				return err
			}
			if err := syscall.Exec(bin, append([]string{"peapod-cri"}, argv...), os.Environ()); err != nil {
				return fmt.Errorf("failed to exec %s: %w", bin, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", criSocket, "unix socket to serve the CRI on")
	cmd.Flags().StringVar(&registryConfig, "registry-config", "", "registry config of the kubelet's pulls: mirrors, TLS, insecure registries (default "+image.DefaultRegistryConfig+", if it exists)")
	cmd.Flags().StringVar(&streamingAddress, "streaming-address", "127.0.0.1:0", "loopback host:port of the streaming server of exec and port-forward (port 0: any free port)")
	return cmd
}

// criArgs resolves the root's network (fixing it on first use, as run
// does) and the helpers' paths into peapod-cri's command line.
func (g *globals) criArgs(listen, streamingAddress string) ([]string, error) {
	netc, nc, err := g.loadNetwork()
	if err != nil {
		return nil, err
	}
	sup, err := helperPath("PEAPOD_SUPERVISOR", "peapod-supervisor")
	if err != nil {
		return nil, err
	}
	initBin, err := helperPath("PEAPOD_INIT", "peapod-init")
	if err != nil {
		return nil, err
	}
	argv := []string{
		"--listen", listen, "--streaming-address", streamingAddress, "--root", g.root, "--run-root", g.runRoot, "--cgroup-driver", g.cgroupDriver,
		"--supervisor", sup, "--init", initBin,
		"--backoff-initial", strconv.FormatFloat(g.backoffInitial, 'g', -1, 64),
		"--backoff-max", strconv.FormatFloat(g.backoffMax, 'g', -1, 64),
	}
	if name, ok := strings.CutPrefix(nc.Network, "cni:"); ok {
		return append(argv, "--cni-conflist", name, "--cni-conf-dir", nc.CNIConfDir, "--cni-bin-dirs", strings.Join(nc.CNIBinDirs, ":")), nil
	}
	return append(argv, "--bridge", netc.Bridge, "--subnet", netc.Subnet.String()), nil
}
