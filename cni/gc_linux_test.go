package cni

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/peapod/peapod/cni/internal/nettest"
	"github.com/peapod/peapod/cni/ipam"
)

func TestGCRemovesWhatDeadPodsLeft(t *testing.T) {
	c := hostPortConfig(t)
	live := setupPod(t, c, nettest.NewNetns(t), "live")
	dead := setupPod(t, c, nettest.NewNetns(t), "dead")
	hostPort := randomHostPort(t)
	if err := MapPorts(c, "dead", dead.IP.Addr(), []PortMapping{{HostPort: hostPort, ContainerPort: 80}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { UnmapPorts(c, "dead") })
	// the "crash": the pod manager no longer knows "dead"; its veth (kept
	// alive by the still pinned netns), lease and rules stay
	keep := func(uid string) bool { return uid == "live" }

	planned, err := GCDryRun(c, keep)
	if err != nil {
		t.Fatalf("GCDryRun: %v", err)
	}
	wantParts := []string{"host port tcp 0.0.0.0:" + strconv.Itoa(int(hostPort)), "bridge port " + dead.HostVeth, "lease " + dead.IP.Addr().String()}
	assertLines(t, "GCDryRun", planned, wantParts, `"dead"`)
	if !nettest.LinkExists(t, dead.HostVeth) || !hasTable(t, portsTable(c).Name) {
		t.Fatal("GCDryRun removed something")
	}

	removed, err := GC(c, keep)
	if err != nil {
		t.Fatalf("GC: %v", err)
	}
	if !slices.Equal(removed, planned) {
		t.Errorf("GC removed %q, the dry run planned %q", removed, planned)
	}
	if nettest.LinkExists(t, dead.HostVeth) || hasTable(t, portsTable(c).Name) {
		t.Error("GC left the dead pod's veth or host port table")
	}
	if !nettest.LinkExists(t, live.HostVeth) {
		t.Error("GC removed the live pod's veth")
	}
	again, err := GC(c, keep)
	if err != nil || len(again) != 0 {
		t.Fatalf("second GC = %q, %v; want a no-op", again, err)
	}
	if owners := leaseOwners(t, c); !slices.Equal(owners, []string{"live"}) {
		t.Fatalf("lease owners after GC = %v, want [live]", owners)
	}
}

// leaseOwners lists the owners holding leases in c's store.
func leaseOwners(t *testing.T, c Config) []string {
	t.Helper()
	store, err := ipam.Open(c.DataDir, c.Subnet, c.Gateway)
	if err != nil {
		t.Fatal(err)
	}
	leases, err := store.Leases()
	if err != nil {
		t.Fatal(err)
	}
	var owners []string
	for _, l := range leases {
		owners = append(owners, l.Owner)
	}
	return owners
}

// assertLines checks that lines has one entry per part, each naming pod.
func assertLines(t *testing.T, what string, lines, parts []string, pod string) {
	t.Helper()
	if len(lines) != len(parts) {
		t.Fatalf("%s = %q, want %d lines", what, lines, len(parts))
	}
	for i, p := range parts {
		if !strings.Contains(lines[i], p) || !strings.Contains(lines[i], pod) {
			t.Errorf("%s line %d = %q, want it to name %q and %s", what, i, lines[i], p, pod)
		}
	}
}

// gc running while pods attach must never take a pod's anti-spoofing table:
// each owner's veth is deleted behind its back (as when its netns dies
// before its teardown runs), leaving a table whose veth is gone, and the
// owners attach again while gc runs. gc judging by the veth alone found them
// all gone, then deleted the tables one by one (~10 ms each, RCU) while the
// owners attached, taking tables Attach had just replaced: the pods ran
// unguarded.
func TestGCKeepsAntispoofOfAttachingPods(t *testing.T) {
	c := testConfig(t)
	var owners []string
	nsPaths := map[string]string{}
	for i := range 10 {
		o := "pod" + strconv.Itoa(i)
		owners = append(owners, o)
		nsPaths[o] = newNetns(t)
		setupPod(t, c, nsPaths[o], o)
	}
	for range 5 {
		for _, o := range owners {
			if err := deleteLink(HostVethName(c, o)); err != nil {
				t.Fatal(err)
			}
		}
		gcErr := make(chan error, 1)
		go func() {
			_, err := GC(c, func(string) bool { return true })
			gcErr <- err
		}()
		errs := make(chan error, len(owners))
		for _, o := range owners {
			go func() {
				_, err := SetupPod(c, nsPaths[o], o)
				errs <- err
			}()
		}
		for range owners {
			if err := <-errs; err != nil {
				t.Errorf("SetupPod again: %v", err)
			}
		}
		if err := <-gcErr; err != nil {
			t.Fatalf("GC: %v", err)
		}
		// after gc ended: what it did while the pods attached stays
		for _, o := range owners {
			if err := verifyAntispoof(c, Attachment{Owner: o}); err != nil {
				t.Fatalf("pod %q attached while gc ran: %v", o, err)
			}
		}
	}
}
