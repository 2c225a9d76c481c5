package cni

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/google/nftables"
)

// brNetfilterSysctl is 1 when br_netfilter sends bridged frames through the
// iptables FORWARD chain, where a DROP policy silently eats pod-to-pod traffic.
const brNetfilterSysctl = "/proc/sys/net/bridge/bridge-nf-call-iptables"

// HostWarning is a host setting that would silently break the pod
// network, and what to do about it.
type HostWarning struct {
	// Problem says what was found and what it does to pods.
	Problem string
	// Fix says what to do.
	Fix string
}

// String is the warning as one line.
func (w HostWarning) String() string { return w.Problem + "; to fix: " + w.Fix }

// HostWarnings returns the host firewall settings that would silently break
// the pod network (common after Docker or firewalld). It changes nothing.
func HostWarnings(c Config) []HostWarning {
	var warnings []HostWarning
	if b, err := os.ReadFile(brNetfilterSysctl); err == nil && strings.TrimSpace(string(b)) == "1" {
		warnings = append(warnings, HostWarning{
			Problem: fmt.Sprintf("br_netfilter is loaded and net.bridge.bridge-nf-call-iptables=1: traffic between pods on bridge %q passes the iptables FORWARD chain, whose DROP policy or rules (Docker sets one) drop it", c.Bridge),
			Fix:     fmt.Sprintf("allow the bridge there (iptables -I FORWARD -i %s -o %s -j ACCEPT), or sysctl -w net.bridge.bridge-nf-call-iptables=0 if nothing on this host needs it (Kubernetes nodes and Docker do)", c.Bridge, c.Bridge),
		})
	}
	chains, err := (&nftables.Conn{}).ListChains()
	if err != nil {
		return append(warnings, HostWarning{
			Problem: fmt.Sprintf("could not list nftables chains to check the FORWARD policy: %v", err),
			Fix:     "run as root with nf_tables loaded (modprobe nf_tables)",
		})
	}
	for _, ch := range chains {
		if ch.Hooknum == nil || *ch.Hooknum != *nftables.ChainHookForward {
			continue
		}
		if ch.Policy != nil && *ch.Policy == nftables.ChainPolicyDrop {
			warnings = append(warnings, HostWarning{
				Problem: fmt.Sprintf("chain %s of table %s has policy drop on the forward hook: pod traffic leaving bridge %q may be dropped (e.g. iptables FORWARD policy DROP)", ch.Name, ch.Table.Name, c.Bridge),
				Fix:     fmt.Sprintf("accept the bridge's traffic in that chain (nft insert rule %s %s %s iifname %s accept, and the same with oifname)", familyName(ch.Table.Family), ch.Table.Name, ch.Name, c.Bridge),
			})
		}
	}
	return warnings
}

// familyName is the nft spelling of a table family.
func familyName(f nftables.TableFamily) string {
	switch f {
	case nftables.TableFamilyINet:
		return "inet"
	case nftables.TableFamilyIPv4:
		return "ip"
	case nftables.TableFamilyIPv6:
		return "ip6"
	case nftables.TableFamilyBridge:
		return "bridge"
	case nftables.TableFamilyNetdev:
		return "netdev"
	case nftables.TableFamilyARP:
		return "arp"
	}
	return "ip"
}

// Check returns HostWarnings as lines.
func Check(c Config) []string {
	var out []string
	for _, w := range HostWarnings(c) {
		out = append(out, w.String())
	}
	return out
}

// CheckSubnet reports what on the host overlaps the network's subnet: the
// check EnsureBridge makes before it creates the bridge, without creating it.
func CheckSubnet(c Config) error {
	c, err := c.normalize()
	if err != nil {
		return err
	}
	br, err := bridgeByName(c)
	if err != nil && !errors.Is(err, errLinkNotFound) {
		return err
	}
	idx := 0
	if br != nil {
		idx = br.Attrs().Index
	}
	return checkOverlap(c, idx)
}

// BridgeState describes the network's bridge: missing (created by the
// first pod), or present with its ports; an error when the name is taken
// by something that is not this network's bridge.
func BridgeState(c Config) (string, error) {
	c, err := c.normalize()
	if err != nil {
		return "", err
	}
	br, err := bridgeByName(c)
	if errors.Is(err, errLinkNotFound) {
		return "not created yet: the first pod creates it", nil
	}
	if err != nil {
		return "", err
	}
	ports, err := Pods(c)
	if err != nil {
		return "", err
	}
	state := "down"
	if br.Attrs().Flags&net.FlagUp != 0 {
		state = "up"
	}
	return fmt.Sprintf("exists, %s, %d pod port(s)", state, len(ports)), nil
}
