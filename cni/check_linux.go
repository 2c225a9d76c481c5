package cni

import (
	"fmt"
	"os"
	"strings"

	"github.com/google/nftables"
)

// brNetfilterSysctl is 1 when br_netfilter sends bridged frames through the
// iptables FORWARD chain, where a DROP policy silently eats pod-to-pod traffic.
const brNetfilterSysctl = "/proc/sys/net/bridge/bridge-nf-call-iptables"

// Check returns warnings about host firewall settings that would silently
// break the pod network (common after Docker or firewalld). It changes nothing.
func Check(c Config) []string {
	var warnings []string
	if b, err := os.ReadFile(brNetfilterSysctl); err == nil && strings.TrimSpace(string(b)) == "1" {
		warnings = append(warnings, fmt.Sprintf(
			"br_netfilter is loaded and net.bridge.bridge-nf-call-iptables=1: traffic between pods on bridge %q passes the iptables FORWARD chain", c.Bridge))
	}
	chains, err := (&nftables.Conn{}).ListChains()
	if err != nil {
		return append(warnings, fmt.Sprintf("could not list nftables chains to check the FORWARD policy: %v", err))
	}
	for _, ch := range chains {
		if ch.Hooknum == nil || *ch.Hooknum != *nftables.ChainHookForward {
			continue
		}
		if ch.Policy != nil && *ch.Policy == nftables.ChainPolicyDrop {
			warnings = append(warnings, fmt.Sprintf(
				"chain %s of table %s has policy drop on the forward hook: pod traffic leaving bridge %q may be dropped (e.g. iptables FORWARD policy DROP)",
				ch.Name, ch.Table.Name, c.Bridge))
		}
	}
	return warnings
}
