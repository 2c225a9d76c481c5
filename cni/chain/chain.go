// Package chain runs a pod network through an external CNI chain with
// libcni: a conflist found by name in a config dir, plugins found in bin
// dirs. The pod manager uses it for a root configured with
// `network: cni:<conflist name>`; the built-in network (package cni) needs
// no fork/exec and is the default.
package chain

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// ErrNoPodIP is returned by Add when the chain's result gives the sandbox
// interface no IPv4 address.
var ErrNoPodIP = errors.New("CNI result has no IPv4 address in the pod")

// Chain is one loaded CNI network configuration list.
type Chain struct {
	list *libcni.NetworkConfigList // the parsed conflist
	cni  *libcni.CNIConfig         // plugin search path and result cache
}

// Attachment is one (container, interface) pair GC must keep.
type Attachment struct {
	ContainerID string // the container id given to Add
	IfName      string // the interface given to Add
}

// Option adjusts Load.
type Option func(*options)

// options are Load's settings.
type options struct {
	cacheDir string // libcni's result cache; "" = libcni's /var/lib/cni
}

// WithCacheDir keeps libcni's result cache (needed by CHECK and GC) in dir
// instead of /var/lib/cni.
func WithCacheDir(dir string) Option { return func(o *options) { o.cacheDir = dir } }

// Load reads the network configuration named name (a .conflist, or a single
// .conf promoted to a list) from confDir; plugins are looked up in binDirs.
func Load(confDir, name string, binDirs []string, opts ...Option) (*Chain, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	list, err := libcni.LoadNetworkConf(confDir, name)
	if err != nil {
		return nil, fmt.Errorf("failed to load CNI network %q from %q: %w", name, confDir, err)
	}
	return &Chain{list: list, cni: libcni.NewCNIConfigWithCacheDir(binDirs, o.cacheDir, nil)}, nil
}

// Name is the network's name.
func (c *Chain) Name() string { return c.list.Name }

// runtimeConf is the per-call part of a CNI invocation.
func runtimeConf(containerID, netnsPath, ifName string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: containerID, NetNS: netnsPath, IfName: ifName}
}

// Add runs ADD through the chain and returns the pod's IPv4 address on
// ifName. When the result has none, the chain is rolled back with DEL.
func (c *Chain) Add(ctx context.Context, containerID, netnsPath, ifName string) (ip netip.Addr, err error) {
	rt := runtimeConf(containerID, netnsPath, ifName)
	r, err := c.cni.AddNetworkList(ctx, c.list, rt)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("failed to add %q to CNI network %q: %w", containerID, c.list.Name, err)
	}
	// registered before the result is read: the chain has allocated
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Del(ctx, containerID, netnsPath, ifName))
		}
	}()
	res, err := current.NewResultFromResult(r)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("failed to read CNI result of %q: %w", containerID, err)
	}
	return sandboxIP(res, ifName)
}

// sandboxIP finds the IPv4 address of the interface ifName inside a sandbox;
// an address with no interface index counts when it is the only one.
func sandboxIP(res *current.Result, ifName string) (netip.Addr, error) {
	for _, ipc := range res.IPs {
		ip, ok := netip.AddrFromSlice(ipc.Address.IP.To4())
		if !ok {
			continue
		}
		if ipc.Interface == nil {
			if len(res.IPs) == 1 {
				return ip, nil
			}
			continue
		}
		if i := *ipc.Interface; i >= 0 && i < len(res.Interfaces) &&
			res.Interfaces[i].Sandbox != "" && res.Interfaces[i].Name == ifName {
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%w (interface %s)", ErrNoPodIP, ifName)
}

// Del runs DEL through the chain; plugins treat a missing attachment as success.
func (c *Chain) Del(ctx context.Context, containerID, netnsPath, ifName string) error {
	if err := c.cni.DelNetworkList(ctx, c.list, runtimeConf(containerID, netnsPath, ifName)); err != nil {
		return fmt.Errorf("failed to delete %q from CNI network %q: %w", containerID, c.list.Name, err)
	}
	return nil
}

// Check runs CHECK through the chain against the cached ADD result.
func (c *Chain) Check(ctx context.Context, containerID, netnsPath, ifName string) error {
	if err := c.cni.CheckNetworkList(ctx, c.list, runtimeConf(containerID, netnsPath, ifName)); err != nil {
		return fmt.Errorf("CNI network %q: check of %q failed: %w", c.list.Name, containerID, err)
	}
	return nil
}

// GC deletes every cached attachment not in valid and, for a CNI 1.1 chain,
// asks each plugin to remove what it holds for anything else.
func (c *Chain) GC(ctx context.Context, valid []Attachment) error {
	args := &libcni.GCArgs{}
	for _, a := range valid {
		args.ValidAttachments = append(args.ValidAttachments, types.GCAttachment{ContainerID: a.ContainerID, IfName: a.IfName})
	}
	if err := c.cni.GCNetworkList(ctx, c.list, args); err != nil {
		return fmt.Errorf("failed to garbage-collect CNI network %q: %w", c.list.Name, err)
	}
	return nil
}

// Status asks every plugin whether it can serve ADD (CNI 1.1; an older
// chain has no STATUS and reports ready).
func (c *Chain) Status(ctx context.Context) error {
	if err := c.cni.GetStatusNetworkList(ctx, c.list); err != nil {
		return fmt.Errorf("CNI network %q is not ready: %w", c.list.Name, err)
	}
	return nil
}
