package cni

import (
	"errors"
	"net/netip"

	"golang.org/x/sys/unix"
)

// netipPrefix is ip with the subnet's prefix length, host bits kept.
func netipPrefix(ip netip.Addr, bits int) netip.Prefix { return netip.PrefixFrom(ip, bits) }

// isNotFound reports the errors a delete of something already gone returns.
func isNotFound(err error) bool {
	return errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH)
}
