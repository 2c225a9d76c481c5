package cni

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/peapod/peapod/cni/ipam"
	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/ktrace"

	"github.com/peapod/peapod/internal/kfeature"
)

// forwardLock, in DataDir, serialises the network's first and last pod
// (its lease count against its masquerade and forwarding).
const forwardLock = "forward.lock"

// masqTable names the nftables table that holds the network's masquerade rule.
func masqTable(c Config) *nftables.Table {
	return &nftables.Table{Name: "peapod-" + c.Bridge, Family: nftables.TableFamilyIPv4}
}

// enableEgress turns on masquerade and IP forwarding for the network; the
// network holds forwarding (see holdForwarding) until its last pod goes.
func enableEgress(c Config) error {
	return withForwardLock(c, func() error {
		if err := ensureMasquerade(c); err != nil {
			return err
		}
		return holdForwarding(c)
	})
}

// disableEgressIfIdle lets go of forwarding once the network holds no lease.
// The lock makes the lease count and the restore one step against a
// concurrent first pod.
//
// The masquerade table stays, like the bridge it belongs to, until
// RemoveNetwork: deleting a nat table makes the kernel wait for an RCU
// grace period (~10 ms measured here), which every last pod of a network
// would otherwise pay, and the rule matches nothing without pods and
// forwarding.
func disableEgressIfIdle(c Config, store *ipam.Store) error {
	return withForwardLock(c, func() error {
		empty, err := store.Empty()
		if err != nil || !empty {
			return err
		}
		return releaseForwarding(c)
	})
}

// ensureMasquerade installs `ip saddr <subnet> ip daddr != <subnet>
// masquerade` in a postrouting nat chain of table peapod-<bridge>, once.
func ensureMasquerade(c Config) error {
	conn := &nftables.Conn{}
	want := &nftables.Chain{
		Name:     "postrouting",
		Table:    masqTable(c),
		Type:     nftables.ChainTypeNAT,
		Hooknum:  nftables.ChainHookPostrouting,
		Priority: nftables.ChainPriorityNATSource,
	}
	// Look before writing: a transaction adding the nat base chain costs
	// 8–13 ms at commit on this kernel even when the chain exists (measured
	// with --debug on every pod start), while this dump costs a fraction of
	// a millisecond. A missing table or chain is an error here, and the
	// writes below make them; the forward lock keeps two first pods from
	// both adding the rule.
	if rules, err := conn.GetRules(want.Table, want); err == nil && len(rules) > 0 {
		return nil
	}
	table := conn.AddTable(masqTable(c)) // NEWTABLE without EXCL: exists = fine
	want.Table = table
	chain := conn.AddChain(want)
	if err := ktrace.Do("nft add chain", "ip "+table.Name+" postrouting (nat)", conn.Flush); err != nil {
		return fmt.Errorf("failed to create nftables chain %s/postrouting: %w", table.Name, kfeature.Nftables.Wrap(err))
	}
	rules, err := conn.GetRules(table, chain)
	if err != nil {
		return fmt.Errorf("failed to list rules of %s/postrouting: %w", table.Name, err)
	}
	if len(rules) > 0 {
		return nil
	}
	conn.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: masqExprs(c)})
	if err := ktrace.Do("nft add rule", "ip "+table.Name+" postrouting: ip saddr "+c.Subnet.String()+" ip daddr != "+c.Subnet.String()+" masquerade", conn.Flush); err != nil {
		return fmt.Errorf("failed to add masquerade rule for %s: %w", c.Subnet, err)
	}
	return nil
}

// masqExprs is `ip saddr <subnet> ip daddr != <subnet> masquerade`.
func masqExprs(c Config) []expr.Any {
	mask := net.CIDRMask(c.Subnet.Bits(), 32)
	network := c.Subnet.Addr().AsSlice()
	match := func(offset uint32, op expr.CmpOp) []expr.Any {
		return []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
			&expr.Cmp{Op: op, Register: 1, Data: network},
		}
	}
	exprs := match(12, expr.CmpOpEq)                   // IPv4 source address
	exprs = append(exprs, match(16, expr.CmpOpNeq)...) // IPv4 destination address
	return append(exprs, &expr.Masq{})
}

// deleteMasquerade removes the network's table; already gone is success.
func deleteMasquerade(c Config) error {
	conn := &nftables.Conn{}
	conn.DelTable(masqTable(c))
	if err := ktrace.Do("nft delete table", "ip "+masqTable(c).Name, conn.Flush); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("failed to delete nftables table %s: %w", masqTable(c).Name, err)
	}
	return nil
}

// withForwardLock runs fn under an flock on DataDir's forward lock.
func withForwardLock(c Config, fn func() error) error {
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("failed to create %q: %w", c.DataDir, err)
	}
	f, err := os.OpenFile(filepath.Join(c.DataDir, forwardLock), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("failed to open forward lock in %q: %w", c.DataDir, err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("failed to lock %q: %w", f.Name(), err)
	}
	return fn()
}

// writeAtomic writes data to path through a temp file and rename.
func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("failed to write %q: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("failed to rename %q into place: %w", path, err)
	}
	return nil
}

// ErrNetworkInUse is returned by RemoveNetwork while pods hold leases.
var ErrNetworkInUse = errors.New("network in use")

// RemoveNetwork removes what outlives pods: the bridge and the masquerade
// table (host-port tables go with their last mapping), and lets go of
// ip_forward. It refuses while any pod holds
// a lease; removing a network that is already gone is success.
func RemoveNetwork(c Config) error {
	c, err := c.normalize()
	if err != nil {
		return err
	}
	store, err := ipam.Open(c.DataDir, c.Subnet, c.Gateway)
	if err != nil {
		return err
	}
	return withForwardLock(c, func() error {
		leases, err := store.Leases()
		if err != nil {
			return err
		}
		if len(leases) > 0 {
			return fmt.Errorf("failed to remove network %s: %d pods hold addresses in %s: %w", c.Bridge, len(leases), c.Subnet, ErrNetworkInUse)
		}
		errs := []error{deleteMasquerade(c), releaseForwarding(c)}
		if err := deleteLink(c.Bridge); err != nil {
			errs = append(errs, fmt.Errorf("failed to delete bridge %s: %w", c.Bridge, err))
		}
		return errors.Join(errs...)
	})
}
