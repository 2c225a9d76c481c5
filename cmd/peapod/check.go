package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/peapod/peapod/cni"
	"github.com/peapod/peapod/internal/preflight"
	"github.com/peapod/peapod/runtime/state"
	"github.com/spf13/cobra"
)

func newCheckCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Check that this host can run pods: kernel, namespaces, overlayfs, veth, bridge, nftables, cgroups, network, space",
		Long: "check asks the host for every kernel feature and setting a pod needs, like lxc-checkconfig or docker info,\n" +
			"and prints one line per check: OK, WARN (pods run, but something will not work or may surprise) or FAIL\n" +
			"(pods cannot run), with what to do. Its probes create namespaces, links and nftables tables only inside\n" +
			"throwaway namespaces, and it writes nothing in the roots. It exits 1 when a check fails.",
		Example: "  sudo peapod check\n  sudo peapod --cgroup-driver v2 --root /srv/peapod check",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return executeCheck(g, preflight.LinuxHost{}, cmd.OutOrStdout())
		},
	}
}

func executeCheck(g *globals, h preflight.Host, out io.Writer) error {
	n, err := g.peekNetwork()
	if err != nil {
		return err
	}
	rs := preflight.Run(h, preflight.Options{Root: g.root, RunRoot: g.runRoot, CgroupDriver: g.cgroupDriver, Network: n})
	if err := preflight.Print(out, rs); err != nil {
		return err
	}
	if f := preflight.Failed(rs); f > 0 {
		return fmt.Errorf("%d check(s) failed: pods cannot run on this host until they are fixed", f)
	}
	return nil
}

// peekNetwork is the root's network as loadNetwork would set it up, without
// writing network.json: check changes nothing.
func (g *globals) peekNetwork() (preflight.Network, error) {
	var nc networkConfig
	err := state.ReadJSON(g.dirs().NetworkConfig(), &nc)
	configured := err == nil
	switch {
	case errors.Is(err, state.ErrNotFound):
		d := cni.DefaultConfig(g.root)
		nc = networkConfig{Bridge: d.Bridge, Subnet: d.Subnet.String(), Network: g.netMode}
		if g.bridge != "" {
			nc.Bridge = g.bridge
		}
		if g.subnet != "" {
			nc.Subnet = g.subnet
		}
	case err != nil:
		return preflight.Network{}, err
	}
	prefix, err := netip.ParsePrefix(nc.Subnet)
	if err != nil {
		return preflight.Network{}, fmt.Errorf("invalid subnet %q: %w", nc.Subnet, err)
	}
	chain, _ := strings.CutPrefix(nc.Network, "cni:")
	return preflight.Network{
		Bridge: nc.Bridge, Subnet: prefix.Masked(), DataDir: g.dirs().NetDataDir(nc.Bridge), Chain: chain, Configured: configured,
	}, nil
}
