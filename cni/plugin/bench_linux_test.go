package plugin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/peapod/peapod/cni/internal/nettest"
)

// BenchmarkPeapodCNIvsBridge measures one pod's network life through libcni
// (netns created → ADD → DEL → netns unpinned) for peapod-cni and for the
// reference bridge + host-local, interleaved so both see the same machine
// state; it reports peapod-ns/op, bridge-ns/op and their ratio.
func BenchmarkPeapodCNIvsBridge(b *testing.B) {
	if _, err := os.Stat(filepath.Join(refPluginDir, "bridge")); err != nil {
		b.Skipf("Debian's containernetworking-plugins are not installed: %v", err)
	}
	peapod, ref := newTestNet(b), newTestNet(b)
	peapodList := peapod.conflist(b, "1.0.0", peapod.pluginJSON("peapod-cni"))
	refList := ref.conflist(b, "1.0.0", ref.pluginJSON("bridge"))
	peapodCC, refCC := peapod.cniConfig(binDir), ref.cniConfig(refPluginDir)
	dir := b.TempDir()
	var peapodTime, refTime time.Duration
	b.ResetTimer()
	for i := range b.N {
		d, err := cycle(peapodCC, peapodList, filepath.Join(dir, fmt.Sprint("p", i)), fmt.Sprint("p", i))
		if err != nil {
			b.Fatalf("peapod-cni: %v", err)
		}
		peapodTime += d
		if d, err = cycle(refCC, refList, filepath.Join(dir, fmt.Sprint("r", i)), fmt.Sprint("r", i)); err != nil {
			b.Fatalf("bridge: %v", err)
		}
		refTime += d
	}
	b.ReportMetric(float64(peapodTime.Nanoseconds())/float64(b.N), "peapod-ns/op")
	b.ReportMetric(float64(refTime.Nanoseconds())/float64(b.N), "bridge-ns/op")
	b.ReportMetric(float64(refTime)/float64(peapodTime), "bridge/peapod")
}

// cycle times one netns through ADD and DEL.
func cycle(cc *libcni.CNIConfig, list *libcni.NetworkConfigList, pin, id string) (time.Duration, error) {
	start := time.Now()
	if err := nettest.CreateNetns(pin); err != nil {
		return 0, err
	}
	rt := &libcni.RuntimeConf{ContainerID: id, NetNS: pin, IfName: "eth0"}
	_, addErr := cc.AddNetworkList(context.Background(), list, rt)
	delErr := cc.DelNetworkList(context.Background(), list, rt)
	unpinErr := nettest.DeleteNetns(pin)
	d := time.Since(start)
	for _, err := range []error{addErr, delErr, unpinErr} {
		if err != nil {
			return d, err
		}
	}
	return d, nil
}
