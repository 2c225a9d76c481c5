// Package ipam hands out pod IPs from one subnet in the manner of CNI's
// host-local plugin: one lease file per IP naming its owner and interface, an
// flock on the network directory, and a cursor so a freed IP is not handed out
// again at once. Leases are released by owner, never by IP arithmetic: a
// caller that knows the owner's address (ReleaseAt) has that one lease read
// and its owner checked first.
package ipam

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrExhausted is returned by Allocate when every address in the range is leased.
var ErrExhausted = errors.New("no free IP")

const (
	lockFile   = "lock"               // flock target; host-local locks the same file
	cursorFile = "last_reserved_ip.0" // the IP handed out last; host-local's name for range 0
	tmpPrefix  = ".tmp-"              // scratch files renamed or linked into place
	lineBreak  = "\r\n"               // host-local's separator between owner and interface
)

// Lease is one allocated address and who holds it.
type Lease struct {
	IP     netip.Addr // the leased address
	Owner  string     // the pod uid (or CNI container id) holding it
	IfName string     // the interface inside the owner that carries it
}

// Store is a directory of leases for one subnet.
type Store struct {
	dir     string       // one file per leased IP, plus lock and cursor
	subnet  netip.Prefix // the network the leases come from
	gateway netip.Addr   // never leased
	first   netip.Addr   // first leasable address (network + 1)
	last    netip.Addr   // last leasable address (broadcast - 1)
}

// Open prepares dir as the lease store of subnet; the network address, the
// gateway and the broadcast address are never leased.
func Open(dir string, subnet netip.Prefix, gateway netip.Addr) (*Store, error) {
	if !subnet.IsValid() || !subnet.Addr().Is4() {
		return nil, fmt.Errorf("invalid IPAM subnet %q: only IPv4 prefixes are supported", subnet)
	}
	subnet = subnet.Masked()
	if subnet.Bits() > 30 {
		return nil, fmt.Errorf("IPAM subnet %s is too small: it needs room for a gateway and a pod", subnet)
	}
	if !subnet.Contains(gateway) {
		return nil, fmt.Errorf("gateway %s is not inside IPAM subnet %s", gateway, subnet)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create IPAM directory %q: %w", dir, err)
	}
	return &Store{
		dir:     dir,
		subnet:  subnet,
		gateway: gateway,
		first:   subnet.Addr().Next(),
		last:    broadcast(subnet).Prev(),
	}, nil
}

// broadcast returns the last address of an IPv4 prefix.
func broadcast(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := (uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Subnet returns the prefix the store leases from.
func (s *Store) Subnet() netip.Prefix { return s.subnet }

// Allocate leases a free address to owner's ifName. It is idempotent: the same
// owner and ifName get back the address they already hold.
func (s *Store) Allocate(owner, ifName string) (netip.Addr, error) {
	if err := validName("owner", owner); err != nil {
		return netip.Addr{}, err
	}
	if err := validName("interface", ifName); err != nil {
		return netip.Addr{}, err
	}
	var ip netip.Addr
	err := s.locked(func() error {
		leases, err := s.leases()
		if err != nil {
			return err
		}
		for _, l := range leases {
			if l.Owner == owner && l.IfName == ifName {
				ip = l.IP
				return nil
			}
		}
		ip, err = s.reserveNext(owner, ifName)
		return err
	})
	return ip, err
}

// reserveNext walks the range once, starting after the cursor, and takes the
// first address whose lease file it can create. Called with the lock held.
func (s *Store) reserveNext(owner, ifName string) (netip.Addr, error) {
	start := s.first
	if cur, ok := s.cursor(); ok && cur != s.last {
		start = cur.Next()
	}
	ip := start
	for {
		if ip != s.gateway {
			ok, err := s.reserve(ip, owner, ifName)
			if err != nil {
				return netip.Addr{}, err
			}
			if ok {
				return ip, s.setCursor(ip)
			}
		}
		if ip = ip.Next(); ip.Compare(s.last) > 0 {
			ip = s.first
		}
		if ip == start {
			return netip.Addr{}, fmt.Errorf("%w in %s", ErrExhausted, s.subnet)
		}
	}
}

// reserve creates ip's lease file; false means another owner holds it. The
// content is written to a temp file first and linked into place, so a lease
// file is never seen half-written and link's EEXIST makes the claim exclusive.
// The content is exactly host-local's "id\r\nifname": its DEL, which matches
// the whole file, then releases a lease peapod-cni wrote, and vice versa.
func (s *Store) reserve(ip netip.Addr, owner, ifName string) (bool, error) {
	tmp, err := s.writeTemp(owner + lineBreak + ifName)
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp)
	err = os.Link(tmp, filepath.Join(s.dir, ip.String()))
	if errors.Is(err, os.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("failed to write lease for %s: %w", ip, err)
	}
	return true, nil
}

// Release frees the lease of owner's ifName. A missing lease is not an error.
func (s *Store) Release(owner, ifName string) error {
	return s.locked(func() error { return s.releaseScan(owner, ifName) })
}

// ReleaseAt is Release for a caller that knows the address owner's ifName
// was given (a pod's record does): it reads the one lease at ip instead of
// every lease in the store, which a host with many pods would pay on every
// removal. When ip's lease is missing or someone else's (a hint that went
// stale), it falls back to Release's scan, so the result is Release's.
func (s *Store) ReleaseAt(ip netip.Addr, owner, ifName string) error {
	if !ip.IsValid() || !s.subnet.Contains(ip) {
		return s.Release(owner, ifName)
	}
	return s.locked(func() error {
		l, err := s.readLease(ip)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err == nil && l.Owner == owner && l.IfName == ifName {
			return s.remove(l)
		}
		return s.releaseScan(owner, ifName)
	})
}

// releaseScan removes every lease of owner's ifName. Called with the lock
// held.
func (s *Store) releaseScan(owner, ifName string) error {
	leases, err := s.leases()
	if err != nil {
		return err
	}
	for _, l := range leases {
		if l.Owner == owner && l.IfName == ifName {
			if err := s.remove(l); err != nil {
				return err
			}
		}
	}
	return nil
}

// Empty reports whether the store holds no lease. It reads the directory's
// names only: deciding a network is idle needs no lease's content.
func (s *Store) Empty() (bool, error) {
	empty := true
	err := s.locked(func() error {
		entries, err := os.ReadDir(s.dir)
		if err != nil {
			return fmt.Errorf("failed to read IPAM directory %q: %w", s.dir, err)
		}
		empty = !slices.ContainsFunc(entries, func(e os.DirEntry) bool {
			_, ok := leaseAddr(e)
			return ok
		})
		return nil
	})
	return empty, err
}

// leaseAddr is the address of a lease file, named by it; false for the
// lock, the cursor, temp files and anything else that is no lease.
func leaseAddr(e os.DirEntry) (netip.Addr, bool) {
	ip, err := netip.ParseAddr(e.Name())
	return ip, err == nil && e.Type().IsRegular()
}

// Leases lists every lease in the store, in address order.
func (s *Store) Leases() ([]Lease, error) {
	var leases []Lease
	err := s.locked(func() error {
		var err error
		leases, err = s.leases()
		return err
	})
	return leases, err
}

// WithLeases runs fn with the store's lock held and its leases: no lease is
// taken or released until fn returns, so what fn decides from them holds
// while it acts.
func (s *Store) WithLeases(fn func([]Lease) error) error {
	return s.locked(func() error {
		leases, err := s.leases()
		if err != nil {
			return err
		}
		return fn(leases)
	})
}

// GC releases every lease whose owner keep does not claim, and returns them.
func (s *Store) GC(keep func(owner string) bool) ([]Lease, error) {
	var freed []Lease
	err := s.locked(func() error {
		leases, err := s.leases()
		if err != nil {
			return err
		}
		for _, l := range leases {
			if keep(l.Owner) {
				continue
			}
			if err := s.remove(l); err != nil {
				return err
			}
			freed = append(freed, l)
		}
		return nil
	})
	return freed, err
}

// remove deletes one lease file; already gone counts as success.
func (s *Store) remove(l Lease) error {
	err := os.Remove(filepath.Join(s.dir, l.IP.String()))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to release lease %s of %q: %w", l.IP, l.Owner, err)
	}
	return nil
}

// leases reads every lease file, sorted by address. Called with the lock held.
func (s *Store) leases() ([]Lease, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("failed to read IPAM directory %q: %w", s.dir, err)
	}
	var leases []Lease
	for _, e := range entries {
		ip, ok := leaseAddr(e)
		if !ok {
			continue // lock, cursor, temp files
		}
		l, err := s.readLease(ip)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		leases = append(leases, l)
	}
	slices.SortFunc(leases, func(a, b Lease) int { return a.IP.Compare(b.IP) })
	return leases, nil
}

// readLease parses "owner\r\nifname" (host-local's format) and "owner\nifname".
func (s *Store) readLease(ip netip.Addr) (Lease, error) {
	f, err := os.Open(filepath.Join(s.dir, ip.String()))
	if err != nil {
		return Lease{}, fmt.Errorf("failed to open lease %s: %w", ip, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var lines []string
	for sc.Scan() && len(lines) < 2 {
		lines = append(lines, strings.TrimSpace(sc.Text()))
	}
	if err := sc.Err(); err != nil {
		return Lease{}, fmt.Errorf("failed to read lease %s: %w", ip, err)
	}
	l := Lease{IP: ip}
	if len(lines) > 0 {
		l.Owner = lines[0]
	}
	if len(lines) > 1 {
		l.IfName = lines[1]
	}
	return l, nil
}

// cursor returns the last reserved IP, if one is recorded and still in range.
func (s *Store) cursor() (netip.Addr, bool) {
	b, err := os.ReadFile(filepath.Join(s.dir, cursorFile))
	if err != nil {
		return netip.Addr{}, false
	}
	ip, err := netip.ParseAddr(strings.TrimSpace(string(b)))
	if err != nil || ip.Compare(s.first) < 0 || ip.Compare(s.last) > 0 {
		return netip.Addr{}, false
	}
	return ip, true
}

// setCursor records ip as the last reserved address, atomically.
func (s *Store) setCursor(ip netip.Addr) error {
	tmp, err := s.writeTemp(ip.String())
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, cursorFile)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("failed to record IPAM cursor in %q: %w", s.dir, err)
	}
	return nil
}

// writeTemp writes content to a fresh temp file in the store and returns its path.
func (s *Store) writeTemp(content string) (string, error) {
	f, err := os.CreateTemp(s.dir, tmpPrefix)
	if err != nil {
		return "", fmt.Errorf("failed to create temp file in %q: %w", s.dir, err)
	}
	_, werr := f.WriteString(content)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("failed to write temp file %q: %w", f.Name(), err)
	}
	return f.Name(), nil
}

// locked runs fn holding an exclusive flock on the store. Each call opens the
// lock file afresh: flock belongs to the open file description, so two
// goroutines of one process exclude each other just as two processes do.
func (s *Store) locked(fn func() error) error {
	f, err := os.OpenFile(filepath.Join(s.dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("failed to open IPAM lock in %q: %w", s.dir, err)
	}
	defer f.Close() // closing the last descriptor drops the lock
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("failed to lock IPAM directory %q: %w", s.dir, err)
	}
	return fn()
}

// validName refuses values that would break the line-based lease format.
func validName(what, v string) error {
	if v == "" || strings.ContainsAny(v, "\r\n") {
		return fmt.Errorf("invalid IPAM %s %q", what, v)
	}
	return nil
}
