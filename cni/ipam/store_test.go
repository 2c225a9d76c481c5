package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"testing"
)

func openStore(t *testing.T, subnet string) *Store {
	t.Helper()
	p := netip.MustParsePrefix(subnet)
	s, err := Open(t.TempDir(), p, p.Addr().Next())
	if err != nil {
		t.Fatalf("Open(%s): %v", subnet, err)
	}
	return s
}

func mustAllocate(t *testing.T, s *Store, owner, ifName string) netip.Addr {
	t.Helper()
	ip, err := s.Allocate(owner, ifName)
	if err != nil {
		t.Fatalf("Allocate(%q, %q): %v", owner, ifName, err)
	}
	return ip
}

func TestOpenRejects(t *testing.T) {
	for _, tc := range []struct {
		name, subnet, gateway string
	}{
		{"gateway outside", "10.0.0.0/24", "10.0.1.1"},
		{"too small", "10.0.0.0/31", "10.0.0.0"},
		{"ipv6", "fd00::/64", "fd00::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(t.TempDir(), netip.MustParsePrefix(tc.subnet), netip.MustParseAddr(tc.gateway))
			if err == nil {
				t.Fatalf("Open(%s, %s) succeeded, want an error", tc.subnet, tc.gateway)
			}
		})
	}
}

func TestAllocateSequence(t *testing.T) {
	for _, tc := range []struct {
		subnet, gateway string
		want            []string
	}{
		// the gateway, network and broadcast addresses are skipped
		{"10.1.0.0/29", "10.1.0.1", []string{"10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6"}},
		{"10.1.0.0/29", "10.1.0.4", []string{"10.1.0.1", "10.1.0.2", "10.1.0.3", "10.1.0.5", "10.1.0.6"}},
		{"10.1.0.8/30", "10.1.0.10", []string{"10.1.0.9"}},
	} {
		t.Run(tc.subnet+"-gw-"+tc.gateway, func(t *testing.T) {
			s, err := Open(t.TempDir(), netip.MustParsePrefix(tc.subnet), netip.MustParseAddr(tc.gateway))
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range tc.want {
				if got := mustAllocate(t, s, fmt.Sprintf("pod%d", i), "eth0"); got.String() != want {
					t.Errorf("allocation %d = %s, want %s", i, got, want)
				}
			}
			_, err = s.Allocate("one-too-many", "eth0")
			if !errors.Is(err, ErrExhausted) {
				t.Fatalf("allocation past the range: err = %v, want ErrExhausted", err)
			}
		})
	}
}

func TestExhaustionMessage(t *testing.T) {
	s := openStore(t, "10.220.0.0/29")
	for i := range 5 {
		mustAllocate(t, s, fmt.Sprintf("pod%d", i), "eth0")
	}
	_, err := s.Allocate("pod5", "eth0")
	if err == nil || err.Error() != "no free IP in 10.220.0.0/29" {
		t.Fatalf("err = %v, want %q", err, "no free IP in 10.220.0.0/29")
	}
	leases, err := s.Leases()
	if err != nil {
		t.Fatal(err)
	}
	if len(leases) != 5 {
		t.Fatalf("after exhaustion %d leases, want 5: %v", len(leases), leases)
	}
}

func TestCursorAvoidsImmediateReuse(t *testing.T) {
	s := openStore(t, "10.1.0.0/24")
	a := mustAllocate(t, s, "a", "eth0")
	if err := s.Release("a", "eth0"); err != nil {
		t.Fatal(err)
	}
	b := mustAllocate(t, s, "b", "eth0")
	if a == b {
		t.Fatalf("released %s was handed out again at once", a)
	}
	// a freed address comes back once the cursor wraps round
	small := openStore(t, "10.2.0.0/30") // a single leasable address
	x := mustAllocate(t, small, "x", "eth0")
	if err := small.Release("x", "eth0"); err != nil {
		t.Fatal(err)
	}
	if y := mustAllocate(t, small, "y", "eth0"); y != x {
		t.Fatalf("after wrap-around got %s, want the freed %s", y, x)
	}
}

func TestAllocateIdempotent(t *testing.T) {
	s := openStore(t, "10.1.0.0/24")
	a := mustAllocate(t, s, "pod", "eth0")
	if again := mustAllocate(t, s, "pod", "eth0"); again != a {
		t.Fatalf("re-allocate gave %s, want %s", again, a)
	}
	if other := mustAllocate(t, s, "pod", "net1"); other == a {
		t.Fatalf("second interface of the same pod got the same IP %s", a)
	}
	leases, _ := s.Leases()
	if len(leases) != 2 {
		t.Fatalf("%d leases, want 2: %v", len(leases), leases)
	}
}

func TestReleaseByOwnerOnly(t *testing.T) {
	s := openStore(t, "10.1.0.0/24")
	a := mustAllocate(t, s, "a", "eth0")
	b := mustAllocate(t, s, "b", "eth0")
	for _, tc := range []struct{ owner, ifName string }{
		{"nobody", "eth0"}, // unknown owner: not found = nil
		{"b", "net1"},      // right owner, other interface
	} {
		if err := s.Release(tc.owner, tc.ifName); err != nil {
			t.Fatalf("Release(%q, %q): %v", tc.owner, tc.ifName, err)
		}
	}
	if err := s.Release("a", "eth0"); err != nil {
		t.Fatal(err)
	}
	if err := s.Release("a", "eth0"); err != nil {
		t.Fatalf("second release: %v", err)
	}
	leases, err := s.Leases()
	if err != nil {
		t.Fatal(err)
	}
	want := []Lease{{IP: b, Owner: "b", IfName: "eth0"}}
	if fmt.Sprint(leases) != fmt.Sprint(want) {
		t.Fatalf("leases = %v, want %v (a had %s)", leases, want, a)
	}
}

func TestReleaseAt(t *testing.T) {
	tests := []struct {
		name string
		// hint picks the address passed to ReleaseAt from the leases made
		hint func(a, b netip.Addr) netip.Addr
	}{
		{"its own address", func(a, _ netip.Addr) netip.Addr { return a }},
		{"another owner's address", func(_, b netip.Addr) netip.Addr { return b }},
		{"a free address", func(netip.Addr, netip.Addr) netip.Addr { return netip.MustParseAddr("10.1.0.200") }},
		{"outside the subnet", func(netip.Addr, netip.Addr) netip.Addr { return netip.MustParseAddr("192.0.2.1") }},
		{"no address", func(netip.Addr, netip.Addr) netip.Addr { return netip.Addr{} }},
		{"an IPv6 address", func(netip.Addr, netip.Addr) netip.Addr { return netip.MustParseAddr("fd00::1") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, "10.1.0.0/24")
			a := mustAllocate(t, s, "a", "eth0")
			b := mustAllocate(t, s, "b", "eth0")
			// a's other interface keeps its lease
			c := mustAllocate(t, s, "a", "net1")
			// twice: the second finds nothing, still no error
			for i := range 2 {
				if err := s.ReleaseAt(tc.hint(a, b), "a", "eth0"); err != nil {
					t.Fatalf("ReleaseAt #%d: %v", i+1, err)
				}
			}
			leases, err := s.Leases()
			if err != nil {
				t.Fatal(err)
			}
			want := []Lease{{b, "b", "eth0"}, {c, "a", "net1"}}
			if fmt.Sprint(leases) != fmt.Sprint(want) {
				t.Fatalf("leases = %v, want %v", leases, want)
			}
		})
	}
}

func TestReleaseAtReadsHostLocalLease(t *testing.T) {
	s := openStore(t, "10.1.0.0/24")
	ip := netip.MustParseAddr("10.1.0.9")
	if err := os.WriteFile(s.dir+"/"+ip.String(), []byte("ctr\r\neth0"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseAt(ip, "ctr", "eth0"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.dir + "/" + ip.String()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("host-local's lease still there: %v", err)
	}
}

func TestEmpty(t *testing.T) {
	s := openStore(t, "10.1.0.0/24")
	empty := func() bool {
		t.Helper()
		e, err := s.Empty()
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	if !empty() {
		t.Fatal("a new store is not empty")
	}
	// lock, cursor, a temp file and a directory named like an address are
	// no leases
	ip := mustAllocate(t, s, "a", "eth0")
	if err := os.WriteFile(s.dir+"/"+tmpPrefix+"x", []byte("a\neth0"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(s.dir+"/10.1.0.77", 0o700); err != nil {
		t.Fatal(err)
	}
	if empty() {
		t.Fatalf("store with %s leased is empty", ip)
	}
	if err := s.Release("a", "eth0"); err != nil {
		t.Fatal(err)
	}
	if !empty() {
		t.Fatal("store is not empty after its only lease went")
	}
}

func TestGC(t *testing.T) {
	s := openStore(t, "10.1.0.0/24")
	ips := map[string]netip.Addr{}
	for _, o := range []string{"live1", "dead1", "live2", "dead2"} {
		ips[o] = mustAllocate(t, s, o, "eth0")
	}
	live := map[string]bool{"live1": true, "live2": true}
	freed, err := s.GC(func(owner string) bool { return live[owner] })
	if err != nil {
		t.Fatal(err)
	}
	want := []Lease{{ips["dead1"], "dead1", "eth0"}, {ips["dead2"], "dead2", "eth0"}}
	if fmt.Sprint(freed) != fmt.Sprint(want) {
		t.Fatalf("freed = %v, want %v", freed, want)
	}
	left, _ := s.Leases()
	if len(left) != 2 || left[0].Owner != "live1" || left[1].Owner != "live2" {
		t.Fatalf("left = %v, want live1 and live2", left)
	}
	again, err := s.GC(func(owner string) bool { return live[owner] })
	if err != nil || len(again) != 0 {
		t.Fatalf("second GC freed %v, err %v; want nothing", again, err)
	}
}

func TestLeasesIgnoresForeignFilesAndReadsHostLocal(t *testing.T) {
	s := openStore(t, "10.1.0.0/24")
	// host-local writes "id\r\nifname"; the cursor and lock files are not leases
	if err := os.WriteFile(s.dir+"/10.1.0.9", []byte("ctr\r\neth0"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.dir+"/"+cursorFile, []byte("10.1.0.9"), 0o600); err != nil {
		t.Fatal(err)
	}
	leases, err := s.Leases()
	if err != nil {
		t.Fatal(err)
	}
	want := []Lease{{netip.MustParseAddr("10.1.0.9"), "ctr", "eth0"}}
	if fmt.Sprint(leases) != fmt.Sprint(want) {
		t.Fatalf("leases = %v, want %v", leases, want)
	}
	if got := mustAllocate(t, s, "next", "eth0"); got.String() != "10.1.0.10" {
		t.Fatalf("after cursor 10.1.0.9 got %s, want 10.1.0.10", got)
	}
}

func TestConcurrentAllocationsDistinct(t *testing.T) {
	s := openStore(t, "10.1.0.0/24")
	const n = 20
	got := make([]netip.Addr, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// a Store per goroutine, as separate processes would have
			other, err := Open(s.dir, s.subnet, s.gateway)
			if err != nil {
				errs[i] = err
				return
			}
			got[i], errs[i] = other.Allocate(fmt.Sprintf("pod%d", i), "eth0")
		})
	}
	wg.Wait()
	seen := map[netip.Addr]int{}
	for i, ip := range got {
		if errs[i] != nil {
			t.Fatalf("allocation %d: %v", i, errs[i])
		}
		if j, dup := seen[ip]; dup {
			t.Fatalf("pods %d and %d both got %s", j, i, ip)
		}
		seen[ip] = i
	}
	leases, _ := s.Leases()
	if len(leases) != n {
		t.Fatalf("%d leases on disk, want %d", len(leases), n)
	}
}

func TestRejectsBadNames(t *testing.T) {
	s := openStore(t, "10.1.0.0/24")
	for _, tc := range []struct{ owner, ifName string }{{"", "eth0"}, {"a\nb", "eth0"}, {"a", ""}} {
		if _, err := s.Allocate(tc.owner, tc.ifName); err == nil {
			t.Errorf("Allocate(%q, %q) succeeded, want an error", tc.owner, tc.ifName)
		}
	}
}
