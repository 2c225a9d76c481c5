package chain

import (
	"context"
	"encoding/json"
	"github.com/peapod/peapod/internal/testutil"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/peapod/peapod/cni/internal/nettest"
)

// refPluginDir is where Debian's containernetworking-plugins (1.1.1, CNI up
// to 1.0.0) put the reference plugins.
const refPluginDir = "/usr/lib/cni"

// referenceChain writes a bridge + host-local + portmap + loopback conflist
// (cniVersion 1.0.0) for a bridge and subnet of the test's own into a temp
// conf dir and loads it with a temp cache dir.
func referenceChain(t *testing.T) (*Chain, netip.Prefix) {
	t.Helper()
	_, err := os.Stat(filepath.Join(refPluginDir, "bridge"))
	testutil.Requiref(t, err == nil, "Debian's containernetworking-plugins are not installed: %v", err)
	nettest.CleanupIptablesTables(t)
	subnet := nettest.Subnet(t, nettest.BlockChain)
	bridge := "pr" + nettest.RandHex(t, 6)
	t.Cleanup(func() {
		if err := nettest.DeleteBridge(bridge); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	name := "peapod-test-" + nettest.RandHex(t, 4)
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       name,
		"plugins": []map[string]any{{
			"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": false,
			"ipam": map[string]any{
				"type":    "host-local",
				"ranges":  [][]map[string]string{{{"subnet": subnet.String()}}},
				"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
				"dataDir": filepath.Join(t.TempDir(), "ipam"),
			},
		}, {
			"type": "portmap", "capabilities": map[string]bool{"portMappings": true},
		}, {
			"type": "loopback",
		}},
	}
	b, err := json.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	confDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(confDir, "10-test.conflist"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(confDir, name, []string{refPluginDir}, WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	return c, subnet
}

// addPod runs Add in a fresh netns and registers Del.
func addPod(t *testing.T, c *Chain, id string) (string, netip.Addr) {
	t.Helper()
	ns := nettest.NewNetns(t)
	ip, err := c.Add(context.Background(), id, ns, "eth0")
	t.Cleanup(func() {
		if err := c.Del(context.Background(), id, ns, "eth0"); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if err != nil {
		t.Fatalf("Add(%q): %v", id, err)
	}
	return ns, ip
}

func TestReferenceChainPodToPod(t *testing.T) {
	c, subnet := referenceChain(t)
	ctx := context.Background()
	nsA, ipA := addPod(t, c, "pod-a")
	nsB, ipB := addPod(t, c, "pod-b")
	if ipA == ipB || !subnet.Contains(ipA) || !subnet.Contains(ipB) {
		t.Fatalf("pod IPs %s and %s: want distinct addresses in %s", ipA, ipB, subnet)
	}
	srv := nettest.Serve(t, nsB, netip.AddrPortFrom(ipB, 0))
	got, err := nettest.PeerSeen(nsA, srv)
	if err != nil {
		t.Fatalf("pod A → pod B: %v", err)
	}
	if got != ipA.String() {
		t.Fatalf("pod B saw %s, want pod A's own %s", got, ipA)
	}
	if err := c.Check(ctx, "pod-a", nsA, "eth0"); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if err := c.Status(ctx); err != nil {
		t.Fatalf("Status of a 1.0.0 chain (no STATUS verb): %v", err)
	}
	for i := range 2 {
		if err := c.Del(ctx, "pod-a", nsA, "eth0"); err != nil {
			t.Fatalf("Del #%d: %v", i+1, err)
		}
	}
	if _, err := nettest.PeerSeen(nsA, srv); err == nil {
		t.Fatal("pod A still reaches pod B after Del")
	}
	// GC with only pod B valid: libcni DELs cached attachments not listed
	if err := c.GC(ctx, []Attachment{{ContainerID: "pod-b", IfName: "eth0"}}); err != nil {
		t.Fatalf("GC: %v", err)
	}
	if err := c.Check(ctx, "pod-b", nsB, "eth0"); err != nil {
		t.Fatalf("Check of pod B after GC: %v", err)
	}
}

func TestLoadMissing(t *testing.T) {
	if _, err := Load(t.TempDir(), "nope", []string{refPluginDir}); err == nil {
		t.Fatal("Load of a missing network succeeded")
	}
}
