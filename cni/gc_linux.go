package cni

import (
	"errors"
	"fmt"
	"os"

	"github.com/peapod/peapod/cni/ipam"
)

// GC removes what pods that keep does not claim left on the network: host
// port mappings, bridge ports (host veths labelled peapod:<uid>) with their
// anti-spoofing tables, and leases, then turns egress off if no lease is
// left. It returns what it removed, one line each; a second run removes
// nothing.
func GC(c Config, keep func(podUID string) bool) (removed []string, err error) {
	return GCAttachments(c, func(a Attachment) bool { return keep(a.Owner) }, false)
}

// GCDryRun lists what GC would remove, and removes nothing.
func GCDryRun(c Config, keep func(podUID string) bool) ([]string, error) {
	return GCAttachments(c, func(a Attachment) bool { return keep(a.Owner) }, true)
}

// GCAttachments is GC by attachment (owner and interface), as the CNI GC verb
// needs. A pod's host port mappings go when its eth0 is not kept.
func GCAttachments(c Config, keep func(Attachment) bool, dryRun bool) (removed []string, err error) {
	if c, err = c.normalize(); err != nil {
		return nil, err
	}
	keepPod := func(pod string) bool { return keep(Attachment{Owner: pod, IfName: PodIfName}) }
	steps := []func(Config, func(Attachment) bool, func(string) bool, bool) ([]string, error){
		// tables after leases: a table is debris only once no lease names its veth
		gcPortMappings, gcBridgePorts, gcLeases, gcAntispoofTables,
	}
	for _, step := range steps {
		lines, err := step(c, keep, keepPod, dryRun)
		removed = append(removed, lines...)
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// gcPortMappings drops the host port mappings of pods not kept.
func gcPortMappings(c Config, _ func(Attachment) bool, keepPod func(string) bool, dryRun bool) ([]string, error) {
	var records []mappingRecord
	var err error
	if dryRun {
		var state *portState
		if state, err = readPortState(c); err == nil {
			records = state.removePods(func(pod string) bool { return !keepPod(pod) })
		}
	} else {
		records, err = removePortMappings(c, func(pod string) bool { return !keepPod(pod) }, true)
	}
	var lines []string
	for _, m := range records {
		lines = append(lines, fmt.Sprintf("host port %s of pod %q", m.PortMapping, m.Pod))
	}
	return lines, err
}

// gcBridgePorts deletes the host veths of attachments not kept.
func gcBridgePorts(c Config, keep func(Attachment) bool, _ func(string) bool, dryRun bool) ([]string, error) {
	ports, err := Pods(c)
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, p := range ports {
		if keep(Attachment{Owner: p.PodUID, IfName: p.IfName}) {
			continue
		}
		if !dryRun {
			if err := removeHostVeth(c, p.HostVeth); err != nil {
				return lines, err
			}
		}
		lines = append(lines, fmt.Sprintf("bridge port %s of pod %q", p.HostVeth, p.PodUID))
	}
	return lines, nil
}

// gcAntispoofTables deletes the network's anti-spoofing tables whose host
// veth is gone and whose attachment holds no lease (a teardown killed
// between the two deletes): the kernel keeps them, and would bind them to the
// next veth of that name. A veth that is gone says nothing alone: a pod's
// veth dies with its netns before its teardown runs, and the same owner may
// be attaching again. Attach leases before it creates the table and Detach
// deletes the table before it releases the lease, so the decision and the
// deletes run under the IPAM lock: no attachment can start or end meanwhile.
func gcAntispoofTables(c Config, keep func(Attachment) bool, _ func(string) bool, dryRun bool) ([]string, error) {
	var lines []string
	err := withLeases(c, func(leases []ipam.Lease) error {
		leased := map[string]bool{}
		for _, l := range leases {
			a := Attachment{Owner: l.Owner, IfName: l.IfName}
			// a dry run released nothing; count only what the real run keeps
			if !dryRun || keep(a) {
				leased[hostVethName(c, a)] = true
			}
		}
		orphans, err := orphanAntispoofTables(c, leased)
		if err != nil {
			return err
		}
		for _, veth := range orphans {
			if !dryRun {
				if err := deleteAntispoof(c, veth); err != nil {
					return err
				}
			}
			lines = append(lines, fmt.Sprintf("anti-spoofing table %s of gone veth %s", antispoofTable(c, veth).Name, veth))
		}
		return nil
	})
	return lines, err
}

// withLeases runs fn with the network's leases and its IPAM lock held; a
// network never used has no leases and no directory to create.
func withLeases(c Config, fn func([]ipam.Lease) error) error {
	if _, err := os.Stat(c.DataDir); errors.Is(err, os.ErrNotExist) {
		return fn(nil)
	}
	store, err := ipam.Open(c.DataDir, c.Subnet, c.Gateway)
	if err != nil {
		return err
	}
	return store.WithLeases(fn)
}

// gcLeases releases the leases of attachments not kept, and turns egress off
// when none is left.
func gcLeases(c Config, keep func(Attachment) bool, _ func(string) bool, dryRun bool) ([]string, error) {
	if _, err := os.Stat(c.DataDir); errors.Is(err, os.ErrNotExist) {
		return nil, nil // never used: nothing leased, and no directory to create
	}
	store, err := ipam.Open(c.DataDir, c.Subnet, c.Gateway)
	if err != nil {
		return nil, err
	}
	all, err := store.Leases()
	if err != nil {
		return nil, err
	}
	var leases []ipam.Lease
	for _, l := range all {
		if keep(Attachment{Owner: l.Owner, IfName: l.IfName}) {
			continue
		}
		if !dryRun {
			// by owner, as teardown does: a lease is never freed by its IP
			if err := store.Release(l.Owner, l.IfName); err != nil {
				return nil, fmt.Errorf("failed to release IP of pod %q: %w", l.Owner, err)
			}
		}
		leases = append(leases, l)
	}
	if !dryRun {
		if err := disableEgressIfIdle(c, store); err != nil {
			return nil, fmt.Errorf("failed to turn off egress of network %q: %w", c.Bridge, err)
		}
	}
	var lines []string
	for _, l := range leases {
		lines = append(lines, fmt.Sprintf("lease %s of pod %q", l.IP, l.Owner))
	}
	return lines, nil
}
