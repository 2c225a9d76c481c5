// Command netbench times one pod network's life, A/B interleaved, for
// scenario 5 of scripts/bench.sh: a network namespace is created and pinned,
// the pod is connected, disconnected, the pin is removed, and the clock stops
// only once the host veth is gone. Variant "peapod" calls package cni
// in-process, as the CLI does; variant "cni-bridge" runs the reference
// bridge + host-local plugins through the CNI protocol (exec, JSON on stdin),
// as a runtime using them does. Both create the netns the same way.
//
// It prints one "VARIANT MILLISECONDS" line per counted run.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/cni"
)

// options are the command-line flags.
type options struct {
	runs       int          // counted runs per variant
	warmup     int          // uncounted runs per variant
	dir        string       // scratch directory: netns pins, IPAM data
	bridge     string       // peapod's bridge
	subnet     netip.Prefix // peapod's subnet
	cniBridge  string       // the reference bridge plugin's bridge
	cniSubnet  string       // the reference host-local subnet
	cniPath    string       // where the reference plugins live
	vethWaitMs int          // how long to wait for a host veth to go
}

func main() {
	var o options
	var subnet string
	flag.IntVar(&o.runs, "runs", 20, "counted runs per variant")
	flag.IntVar(&o.warmup, "warmup", 3, "uncounted runs per variant")
	flag.StringVar(&o.dir, "dir", "/run/peapod-bench/netbench", "scratch directory")
	flag.StringVar(&o.bridge, "bridge", "ppbnet0", "peapod bridge")
	flag.StringVar(&subnet, "subnet", "10.233.0.0/16", "peapod subnet")
	flag.StringVar(&o.cniBridge, "cni-bridge", "ppbcni1", "reference bridge plugin's bridge")
	flag.StringVar(&o.cniSubnet, "cni-subnet", "10.234.0.0/16", "reference host-local subnet")
	flag.StringVar(&o.cniPath, "cni-path", "/usr/lib/cni", "reference plugin directory")
	flag.IntVar(&o.vethWaitMs, "veth-wait-ms", 5000, "deadline for a host veth to disappear")
	flag.Parse()
	p, err := netip.ParsePrefix(subnet)
	if err != nil {
		fatal(fmt.Errorf("failed to parse subnet %q: %w", subnet, err))
	}
	o.subnet = p
	if err := run(o); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "netbench:", err)
	os.Exit(1)
}

// variant is one way of wiring a pod; cycle returns the host veth's name.
type variant struct {
	name  string                               // printed with each sample
	cycle func(pin, id string) (string, error) // connect + disconnect
}

func run(o options) error {
	if err := os.MkdirAll(o.dir, 0o700); err != nil {
		return fmt.Errorf("failed to create scratch dir %q: %w", o.dir, err)
	}
	c := cni.Config{Bridge: o.bridge, Subnet: o.subnet, DataDir: filepath.Join(o.dir, "ipam-peapod")}
	if _, err := cni.EnsureBridge(c); err != nil {
		return err
	}
	variants := []variant{
		{"peapod", func(pin, id string) (string, error) { return peapodCycle(c, pin, id) }},
		{"cni-bridge", func(pin, id string) (string, error) { return pluginCycle(o, pin, id) }},
	}
	for i := range o.warmup + o.runs {
		for j := range variants {
			// Alternate the order so neither side always runs second.
			v := variants[(i+j)%len(variants)]
			ms, err := timeCycle(o, v, fmt.Sprintf("nb%d-%s", i, v.name))
			if err != nil {
				return fmt.Errorf("%s run %d: %w", v.name, i, err)
			}
			if i >= o.warmup {
				fmt.Printf("%s %.3f\n", v.name, ms)
			}
		}
	}
	return nil
}

// timeCycle times netns creation → connect → disconnect → unpin → veth gone.
func timeCycle(o options, v variant, id string) (float64, error) {
	pin := filepath.Join(o.dir, id)
	start := time.Now()
	if err := createNetns(pin); err != nil {
		return 0, err
	}
	veth, err := v.cycle(pin, id)
	if derr := deleteNetns(pin); err == nil {
		err = derr
	}
	if err != nil {
		return 0, err
	}
	if err := waitLinkGone(veth, time.Duration(o.vethWaitMs)*time.Millisecond); err != nil {
		return 0, err
	}
	return float64(time.Since(start).Microseconds()) / 1000, nil
}

func peapodCycle(c cni.Config, pin, id string) (string, error) {
	res, err := cni.SetupPod(c, pin, id)
	if err != nil {
		return "", err
	}
	return res.HostVeth, cni.TeardownPod(c, pin, id)
}

// pluginCycle runs the reference plugin's ADD then DEL. The bridge plugin
// names the host veth at random; it is found as the bridge's only port.
func pluginCycle(o options, pin, id string) (string, error) {
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"ppbench-net","type":"bridge",`+
		`"bridge":%q,"isGateway":true,"ipMasq":false,"ipam":{"type":"host-local",`+
		`"subnet":%q,"dataDir":%q}}`, o.cniBridge, o.cniSubnet, filepath.Join(o.dir, "ipam-cni"))
	if err := plugin(o, "ADD", conf, pin, id); err != nil {
		return "", err
	}
	veth, err := onlyPort(o.cniBridge)
	if err != nil {
		return "", err
	}
	return veth, plugin(o, "DEL", conf, pin, id)
}

func plugin(o options, command, conf, pin, id string) error {
	cmd := exec.Command(filepath.Join(o.cniPath, "bridge"))
	cmd.Env = []string{
		"CNI_COMMAND=" + command, "CNI_CONTAINERID=" + id, "CNI_NETNS=" + pin,
		"CNI_IFNAME=eth0", "CNI_PATH=" + o.cniPath, "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
	}
	cmd.Stdin = bytes.NewBufferString(conf)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("failed to run bridge plugin %s for %q: %w: %s", command, id, err, out.String())
	}
	return nil
}

// onlyPort names the single port of a bridge.
func onlyPort(bridge string) (string, error) {
	br, err := netlink.LinkByName(bridge)
	if err != nil {
		return "", fmt.Errorf("failed to look up bridge %q: %w", bridge, err)
	}
	links, err := netlink.LinkList()
	if err != nil {
		return "", fmt.Errorf("failed to list links: %w", err)
	}
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			return l.Attrs().Name, nil
		}
	}
	return "", fmt.Errorf("bridge %q has no port", bridge)
}

// waitLinkGone polls: the kernel sends no event the harness can wait on
// cheaply when a veth dies with its netns.
func waitLinkGone(name string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if _, err := netlink.LinkByName(name); err != nil {
			var nf netlink.LinkNotFoundError
			if errors.As(err, &nf) {
				return nil
			}
			return fmt.Errorf("failed to look up link %q: %w", name, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("host veth %q still there after %v", name, limit)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// createNetns pins a new network namespace at path, as `ip netns add` does.
func createNetns(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("failed to create netns pin %q: %w", path, err)
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		// The thread is left locked and so discarded: it is in the new netns.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("failed to unshare netns: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("failed to pin netns on %q: %w", path, err)
			return
		}
		errc <- nil
	}()
	return <-errc
}

// deleteNetns unpins a netns; already gone is success.
func deleteNetns(path string) error {
	err := unix.Unmount(path, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("failed to unpin netns %q: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to remove netns pin %q: %w", path, err)
	}
	return nil
}
