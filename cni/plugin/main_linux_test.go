package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/peapod/peapod/cni/internal/nettest"
)

// refPluginDir is where Debian's containernetworking-plugins put the
// reference plugins (bridge, host-local, portmap, loopback).
const refPluginDir = "/usr/lib/cni"

// binDir holds the peapod-cni built by TestMain; "" when not root.
var binDir string

// TestMain builds peapod-cni into a temp CNI_PATH dir for the root tests.
func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if os.Geteuid() != 0 {
		return m.Run() // the root tests skip; only the logic tests run
	}
	dir, err := os.MkdirTemp("", "peapod-cni-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	out, err := exec.Command("go", "build", "-buildvcs=false", "-o", filepath.Join(dir, "peapod-cni"), "github.com/peapod/peapod/cmd/peapod-cni").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "failed to build peapod-cni: %v\n%s", err, out)
		return 1
	}
	binDir = dir
	return m.Run()
}

// testNet is one CNI network of a test: its own bridge, subnet and dirs.
type testNet struct {
	name     string       // the network name
	bridge   string       // the bridge name
	subnet   netip.Prefix // the pod subnet
	dataDir  string       // host-local dataDir (leases in dataDir/name)
	cacheDir string       // libcni's result cache
}

// newTestNet reserves a bridge name, a subnet in block 1 and temp dirs; the
// bridge is deleted in Cleanup.
func newTestNet(t testing.TB) testNet {
	t.Helper()
	n := testNet{
		name:     "pn" + nettest.RandHex(t, 4),
		bridge:   "pc" + nettest.RandHex(t, 6),
		subnet:   nettest.Subnet(t, nettest.BlockPlugin),
		dataDir:  filepath.Join(t.TempDir(), "ipam"),
		cacheDir: filepath.Join(t.TempDir(), "cache"),
	}
	t.Cleanup(func() {
		if err := nettest.DeleteBridge(n.bridge); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return n
}

// pluginJSON is the bridge-style configuration of one plugin entry.
func (n testNet) pluginJSON(typ string) map[string]any {
	return map[string]any{
		"type": typ, "bridge": n.bridge, "isGateway": true, "ipMasq": false,
		"ipam": map[string]any{
			"type":    "host-local",
			"ranges":  [][]map[string]string{{{"subnet": n.subnet.String()}}},
			"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
			"dataDir": n.dataDir,
		},
	}
}

// conflist builds a network configuration list from plugin entries.
func (n testNet) conflist(t testing.TB, version string, plugins ...map[string]any) *libcni.NetworkConfigList {
	t.Helper()
	b, err := json.Marshal(map[string]any{"cniVersion": version, "name": n.name, "plugins": plugins})
	if err != nil {
		t.Fatal(err)
	}
	list, err := libcni.NetworkConfFromBytes(b)
	if err != nil {
		t.Fatalf("parse conflist: %v\n%s", err, b)
	}
	return list
}

// cniConfig is libcni over the given plugin dirs, caching in the net's dir.
func (n testNet) cniConfig(dirs ...string) *libcni.CNIConfig {
	return libcni.NewCNIConfigWithCacheDir(dirs, n.cacheDir, nil)
}

// add runs ADD and registers a DEL in Cleanup; it returns the result.
func add(t testing.TB, cc *libcni.CNIConfig, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) *current.Result {
	t.Helper()
	r, err := cc.AddNetworkList(context.Background(), list, rt)
	t.Cleanup(func() {
		if err := cc.DelNetworkList(context.Background(), list, rt); err != nil {
			t.Errorf("cleanup DEL: %v", err)
		}
	})
	if err != nil {
		t.Fatalf("ADD %s: %v", rt.ContainerID, err)
	}
	res, err := current.NewResultFromResult(r)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// podIP is the result's IPv4 address on the interface inside the sandbox.
func podIP(t testing.TB, r *current.Result) netip.Prefix {
	t.Helper()
	for _, ipc := range r.IPs {
		if ipc.Interface != nil && r.Interfaces[*ipc.Interface].Sandbox != "" {
			ip, _ := netip.AddrFromSlice(ipc.Address.IP.To4())
			bits, _ := ipc.Address.Mask.Size()
			return netip.PrefixFrom(ip, bits)
		}
	}
	t.Fatalf("result has no sandbox address: %+v", r)
	return netip.Prefix{}
}
