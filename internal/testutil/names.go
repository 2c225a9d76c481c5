package testutil

import (
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"sync"
	"testing"
)

// RandHex returns n random bytes in hex, for test-only names (bridges,
// cgroups) that must not collide with anything else on the machine.
func RandHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("failed to read random bytes: %v", err)
	}
	return hex.EncodeToString(b)
}

// Subnets hands out distinct random /24s of one /16 to the tests of a
// process, so two pod networks of one test run never share a subnet.
type Subnets struct {
	// base is the /16 the /24s come from.
	base netip.Prefix
	// mu guards used.
	mu sync.Mutex
	// used holds the third octets handed out.
	used map[byte]bool
}

// NewSubnets makes a picker of /24s inside base, a /16 such as "10.224.0.0/16".
func NewSubnets(base string) *Subnets {
	return &Subnets{base: netip.MustParsePrefix(base), used: map[byte]bool{}}
}

// Pick returns a /24 not handed out before.
func (s *Subnets) Pick(t testing.TB) netip.Prefix {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.used) == 256 {
		t.Fatalf("every /24 of %s is taken", s.base)
	}
	for {
		var r [1]byte
		if _, err := rand.Read(r[:]); err != nil {
			t.Fatalf("failed to pick a subnet: %v", err)
		}
		if !s.used[r[0]] {
			s.used[r[0]] = true
			a := s.base.Addr().As4()
			return netip.PrefixFrom(netip.AddrFrom4([4]byte{a[0], a[1], r[0], 0}), 24)
		}
	}
}
