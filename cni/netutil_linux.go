package cni

import (
	"errors"

	"github.com/vishvananda/netlink"
	"net/netip"

	"golang.org/x/sys/unix"
)

// netipPrefix is ip with the subnet's prefix length, host bits kept.
func netipPrefix(ip netip.Addr, bits int) netip.Prefix { return netip.PrefixFrom(ip, bits) }

// isNotFound reports the errors a delete of something already gone returns.
func isNotFound(err error) bool {
	return errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH)
}

// dumpRetries bounds retryDump.
const dumpRetries = 10

// retryDump repeats a netlink dump that the kernel interrupted
// (NLM_F_DUMP_INTR) because the table changed while it was being read:
// with pods created and removed side by side, links, addresses and routes
// change all the time, and an interrupted dump may be incomplete.
func retryDump[T any](dump func() (T, error)) (T, error) {
	for i := 1; ; i++ {
		v, err := dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) || i == dumpRetries {
			return v, err
		}
	}
}
