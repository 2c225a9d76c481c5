package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/cni"
)

// The net variants, in the order they rotate through.
const (
	vPeapod      = "peapod"
	vCNIBridge   = "cni-bridge"
	vFloor       = "kernel-floor"
	vFloorUnpin  = "floor-unpin"
	vPeapodCNILC = "peapod-cni-libcni"
	vBridgeLC    = "bridge-libcni"
)

var allVariants = []string{vPeapod, vCNIBridge, vFloor, vFloorUnpin, vPeapodCNILC, vBridgeLC}

// netOptions are the flags of `benchtool net`.
type netOptions struct {
	runs       int           // counted runs per variant
	warmup     int           // uncounted runs per variant
	dir        string        // parent of the run's scratch directory
	variants   []string      // the variants to run, in rotation order
	bridge     string        // peapod's bridge
	subnet     netip.Prefix  // peapod's subnet
	cniBridge  string        // cni-bridge's bridge
	cniSubnet  netip.Prefix  // cni-bridge's host-local subnet
	pcniBridge string        // peapod-cni-libcni's bridge
	pcniSubnet netip.Prefix  // peapod-cni-libcni's subnet
	lcniBridge string        // bridge-libcni's bridge
	lcniSubnet netip.Prefix  // bridge-libcni's host-local subnet
	cniPath    string        // where the reference plugins live
	peapodCNI  string        // the peapod-cni binary
	vethWait   time.Duration // how long to wait for a host veth to go
}

// runNet is `benchtool net`: it times one pod network's life, interleaved,
// for scenario 5 of scripts/bench.sh: a network namespace is created and pinned, the pod is
// connected, disconnected, the pin is removed, and the clock stops only once
// the host veth is gone. The variants, run in rotating order:
//
//   - peapod: package cni in-process, as the CLI does;
//   - cni-bridge: the reference bridge + host-local plugins through the CNI
//     protocol (exec, JSON on stdin), as a runtime using them does;
//   - kernel-floor: a bare veth pair, its peer born in the netns, whose host
//     end is then deleted: no bridge, no address, no IPAM. The least any
//     implementation can do for the same end mark;
//   - floor-unpin: the same pair, left to die with the netns: the clock stops
//     at the host end's RTM_DELLINK after the unpin;
//   - peapod-cni-libcni and bridge-libcni: the peapod-cni plugin and the
//     reference bridge + host-local, both run by libcni from conflists
//     it writes (cniVersion 1.0.0, the same keys for both).
//
// All create the netns the same way. It prints one "VARIANT MILLISECONDS"
// line per counted run on stdout; at the end it removes everything it
// created (bridges, veths, netns pins, IPAM and libcni data), checks that
// nothing is left and fails if something is.
func runNet(args []string) error {
	fs := flag.NewFlagSet("net", flag.ContinueOnError)
	var o netOptions
	var variants string
	var vethWaitMs int
	fs.IntVar(&o.runs, "runs", 20, "counted runs per variant")
	fs.IntVar(&o.warmup, "warmup", 3, "uncounted runs per variant")
	fs.StringVar(&o.dir, "dir", "/run/peapod-bench/net", "where the run's scratch directory is made")
	fs.StringVar(&variants, "variants", strings.Join(allVariants, ","), "comma-separated variants, in rotation order")
	fs.StringVar(&o.bridge, "bridge", "ppbnet0", "peapod's bridge")
	prefixFlag(fs, &o.subnet, "subnet", "10.233.0.0/16", "peapod's subnet")
	fs.StringVar(&o.cniBridge, "cni-bridge", "ppbcni1", "cni-bridge's bridge")
	prefixFlag(fs, &o.cniSubnet, "cni-subnet", "10.234.0.0/16", "cni-bridge's host-local subnet")
	fs.StringVar(&o.pcniBridge, "peapod-cni-bridge", "ppbcni2", "peapod-cni-libcni's bridge")
	prefixFlag(fs, &o.pcniSubnet, "peapod-cni-subnet", "10.235.0.0/16", "peapod-cni-libcni's subnet")
	fs.StringVar(&o.lcniBridge, "libcni-bridge", "ppbcni3", "bridge-libcni's bridge")
	prefixFlag(fs, &o.lcniSubnet, "libcni-subnet", "10.236.0.0/16", "bridge-libcni's host-local subnet")
	fs.StringVar(&o.cniPath, "cni-path", "/usr/lib/cni", "reference plugin directory")
	fs.StringVar(&o.peapodCNI, "peapod-cni", "", "peapod-cni binary (default: peapod-cni on PATH)")
	fs.IntVar(&vethWaitMs, "veth-wait-ms", 5000, "deadline for a host veth to disappear")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.vethWait = time.Duration(vethWaitMs) * time.Millisecond
	for v := range strings.SplitSeq(variants, ",") {
		if !slices.Contains(allVariants, v) {
			return fmt.Errorf("unknown variant %q (known: %s)", v, strings.Join(allVariants, ", "))
		}
		if slices.Contains(o.variants, v) {
			return fmt.Errorf("variant %q given twice", v)
		}
		o.variants = append(o.variants, v)
	}
	if o.runs < 1 || o.warmup < 0 {
		return fmt.Errorf("need -runs ≥ 1 and -warmup ≥ 0, got %d and %d", o.runs, o.warmup)
	}
	return run(o)
}

// prefixFlag defines an IPv4 prefix flag with a default.
func prefixFlag(fs *flag.FlagSet, p *netip.Prefix, name, def, usage string) {
	*p = netip.MustParsePrefix(def)
	fs.Func(name, usage+" (default "+def+")", func(s string) error {
		v, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("failed to parse subnet %q: %w", s, err)
		}
		if !v.Addr().Is4() {
			return fmt.Errorf("subnet %s is not IPv4", s)
		}
		*p = v.Masked()
		return nil
	})
}

// variant is one way of wiring a pod.
type variant struct {
	name string // printed with each sample
	// cycle connects and disconnects the netns at pin and returns the host
	// veth's name ("" when none was made).
	cycle func(pin, id string) (string, error)
	// watch: wait for the veth's RTM_DELLINK on a subscription opened before
	// the clock starts, instead of polling its name.
	watch bool
}

func run(o netOptions) (err error) {
	b, err := prepare(o)
	if err != nil {
		return err
	}
	// On any failure or signal too: remove what was made, then check.
	defer func() {
		err = errors.Join(err, b.cleanup())
		err = errors.Join(err, b.check())
	}()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, unix.SIGINT, unix.SIGTERM)
	defer signal.Stop(stop)

	var variants []variant
	for _, name := range o.variants {
		v, err := b.variant(name)
		if err != nil {
			return err
		}
		variants = append(variants, v)
	}
	for i := range o.warmup + o.runs {
		for j := range variants {
			select {
			case s := <-stop:
				return fmt.Errorf("interrupted by %v at run %d", s, i)
			default:
			}
			// Rotate the order so no variant always runs first.
			v := variants[(i+j)%len(variants)]
			ms, err := b.timeCycle(v, fmt.Sprintf("nb%d-%s", i, v.name))
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

// variant sets up a variant's network and returns it.
func (b *bench) variant(name string) (variant, error) {
	o := b.o
	switch name {
	case vPeapod:
		c := cni.Config{Bridge: o.bridge, Subnet: o.subnet, DataDir: filepath.Join(b.work, "ipam-peapod")}
		if _, err := cni.EnsureBridge(c); err != nil {
			return variant{}, fmt.Errorf("failed to set up peapod's network on %q: %w", o.bridge, err)
		}
		return variant{name: name, cycle: func(pin, id string) (string, error) { return peapodCycle(c, pin, id) }}, nil
	case vCNIBridge:
		return variant{name: name, cycle: b.pluginCycle}, nil
	case vFloor:
		return variant{name: name, cycle: func(pin, id string) (string, error) { return floorCycle(pin, id, true) }}, nil
	case vFloorUnpin:
		return variant{name: name, cycle: func(pin, id string) (string, error) { return floorCycle(pin, id, false) }, watch: true}, nil
	case vPeapodCNILC:
		list, err := b.conflist("ppbench-pcni", "peapod-cni", o.pcniBridge, o.pcniSubnet)
		if err != nil {
			return variant{}, err
		}
		return variant{name: name, cycle: func(pin, id string) (string, error) {
			return b.libcniCycle(list, o.pcniBridge, pin, id)
		}}, nil
	case vBridgeLC:
		list, err := b.conflist("ppbench-lcni", "bridge", o.lcniBridge, o.lcniSubnet)
		if err != nil {
			return variant{}, err
		}
		return variant{name: name, cycle: func(pin, id string) (string, error) {
			return b.libcniCycle(list, o.lcniBridge, pin, id)
		}}, nil
	}
	return variant{}, fmt.Errorf("unknown variant %q", name)
}

// timeCycle times netns creation → connect → disconnect → unpin → veth gone.
func (b *bench) timeCycle(v variant, id string) (float64, error) {
	pin := filepath.Join(b.work, id)
	var w *linkWatch
	if v.watch {
		var err error
		if w, err = watchLinks(); err != nil {
			return 0, err
		}
		defer w.close()
	}
	b.pins[pin] = true
	start := time.Now()
	if err := createNetns(pin); err != nil {
		return 0, err
	}
	veth, err := v.cycle(pin, id)
	if veth != "" {
		b.links[veth] = true
	}
	if derr := deleteNetns(pin); derr == nil {
		delete(b.pins, pin)
	} else if err == nil {
		err = derr
	}
	if err != nil {
		return 0, err
	}
	if w != nil {
		err = w.awaitGone(veth, b.o.vethWait)
	} else {
		err = waitLinkGone(veth, b.o.vethWait)
	}
	if err != nil {
		return 0, err
	}
	return float64(time.Since(start).Microseconds()) / 1000, nil
}

func peapodCycle(c cni.Config, pin, id string) (string, error) {
	res, err := cni.SetupPod(c, pin, id)
	if err != nil {
		return "", err
	}
	return res.HostVeth, cni.TeardownPod(c, pin, id, res.IP.Addr())
}

// pluginCycle runs the reference plugin's ADD then DEL by hand. The bridge
// plugin names the host veth at random; it is found as the bridge's only port.
func (b *bench) pluginCycle(pin, id string) (string, error) {
	o := b.o
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"ppbench-net","type":"bridge",`+
		`"bridge":%q,"isGateway":true,"ipMasq":false,"ipam":{"type":"host-local",`+
		`"subnet":%q,"dataDir":%q}}`, o.cniBridge, o.cniSubnet.String(), filepath.Join(b.work, "ipam-cni"))
	if err := plugin(o, "ADD", conf, pin, id); err != nil {
		// DEL frees whatever the plugin got before it failed.
		return "", errors.Join(err, plugin(o, "DEL", conf, pin, id))
	}
	veth, err := onlyPort(o.cniBridge)
	if err != nil {
		return "", errors.Join(err, plugin(o, "DEL", conf, pin, id))
	}
	return veth, plugin(o, "DEL", conf, pin, id)
}

func plugin(o netOptions, command, conf, pin, id string) error {
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

// waitLinkGone polls the link's name every 200 µs up to limit. After a
// synchronous delete it returns at the first look: the kernel acks
// RTM_DELLINK only once the device is unregistered.
func waitLinkGone(name string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		gone, err := linkGone(name)
		if err != nil {
			return err
		}
		if gone {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("host veth %q still there after %v", name, limit)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// linkGone reports whether no host link has the name.
func linkGone(name string) (bool, error) {
	_, err := netlink.LinkByName(name)
	if err == nil {
		return false, nil
	}
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return true, nil
	}
	return false, fmt.Errorf("failed to look up link %q: %w", name, err)
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
			errc <- fmt.Errorf("failed to unshare netns for %q: %w", path, err)
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
