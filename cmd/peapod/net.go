package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newNetCommand(g *globals) *cobra.Command {
	var dot bool
	cmd := &cobra.Command{
		Use:     "net",
		Short:   "Show the pod network: bridge, subnet, gateway, and each pod's IP, veth, MAC and netns",
		Example: "  sudo peapod net\n  sudo ip netns exec $(sudo peapod net | awk '/web/{print $NF}') ip addr",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dot {
				return executeNetDot(g, cmd.OutOrStdout())
			}
			return executeNet(g, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&dot, "dot", false, "write the network (bridge, pods, veths, IPs, hostPorts) as Graphviz DOT: peapod net --dot | dot -Tsvg > net.svg")
	cmd.AddCommand(&cobra.Command{
		Use:   "rm",
		Short: "Remove this root's bridge and masquerade table (refused while pods hold addresses)",
		Long: "The bridge and its masquerade rule outlive pods, so the next pod starts fast; net rm removes them\n" +
			"once no pod holds an address; ip_forward goes back to its old value once no root's pods need it.",
		Example: "  sudo peapod rm -f web && sudo peapod net rm",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := g.manager()
			if err != nil {
				return err
			}
			if err := m.RemoveNetwork(); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "network removed")
			return nil
		},
	})
	return cmd
}

func executeNet(g *globals, out io.Writer) error {
	m, err := g.manager()
	if err != nil {
		return err
	}
	v, err := m.Network()
	if err != nil {
		return err
	}
	c := v.Config
	fmt.Fprintf(out, "bridge %s  subnet %s  gateway %s  masquerade %v\n", c.Bridge, c.Subnet, c.Gateway, c.IPMasq)
	for _, w := range v.Warnings {
		fmt.Fprintf(out, "warning: %s\n", w)
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tPOD\tIP\tHOST VETH\tMAC\tNETNS")
	for _, p := range v.Pods {
		ns, name := p.Namespace, p.Name
		if name == "" {
			ns, name = "-", "<gone: "+p.UID+">"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", ns, name, dash(p.IP), p.HostVeth, p.MAC, dash(p.Netns))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
