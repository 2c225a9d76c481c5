package cni

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// BenchmarkPodNetwork measures one pod's network life in-process: netns
// created → SetupPod → TeardownPod → netns unpinned, with the host veth gone.
func BenchmarkPodNetwork(b *testing.B) {
	c := testConfig(b)
	if _, err := EnsureBridge(c); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	b.ResetTimer()
	for i := range b.N {
		path := filepath.Join(dir, fmt.Sprint(i))
		uid := fmt.Sprintf("bench-%d", i)
		if err := createNetns(path); err != nil {
			b.Fatal(err)
		}
		res, err := SetupPod(c, path, uid)
		if err != nil {
			b.Fatal(err)
		}
		if err := TeardownPod(c, path, uid, netip.Addr{}); err != nil {
			b.Fatal(err)
		}
		if err := deleteNetns(path); err != nil {
			b.Fatal(err)
		}
		if linkExists(b, res.HostVeth) {
			b.Fatalf("host veth %q outlived TeardownPod", res.HostVeth)
		}
	}
}

// BenchmarkPodNetworkParallel is BenchmarkPodNetwork with concurrent pods:
// the kernel's RCU waits on veth deletion overlap, so ns/op is per pod.
func BenchmarkPodNetworkParallel(b *testing.B) {
	c := testConfig(b)
	if _, err := EnsureBridge(c); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	var next atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			path := filepath.Join(dir, fmt.Sprint(i))
			uid := fmt.Sprintf("bench-%d", i)
			if err := createNetns(path); err != nil {
				b.Error(err)
				return
			}
			_, err := SetupPod(c, path, uid)
			err = errors.Join(err, TeardownPod(c, path, uid, netip.Addr{}), deleteNetns(path))
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}
