package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// conflist writes a one-plugin conflist named name into the run's conf dir
// and loads it back as a runtime would. Both libcni variants get the same
// keys, those of the cni-bridge variant: the bridge as gateway, no default
// route, no masquerade (so no iptables or nftables rules), host-local IPAM
// with its lease dir in the run's scratch dir. cniVersion 1.0.0 is the
// newest Debian's plugins (1.1.1) speak.
func (b *bench) conflist(name, pluginType, bridge string, subnet netip.Prefix) (*libcni.NetworkConfigList, error) {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       name,
		"plugins": []map[string]any{{
			"type": pluginType, "bridge": bridge, "isGateway": true, "ipMasq": false,
			"ipam": map[string]any{
				"type":    "host-local",
				"subnet":  subnet.String(),
				"dataDir": filepath.Join(b.work, "ipam-"+name),
			},
		}},
	}
	data, err := json.Marshal(conf)
	if err != nil {
		return nil, fmt.Errorf("failed to encode conflist %q: %w", name, err)
	}
	confDir := filepath.Join(b.work, "cni-conf")
	if err := os.MkdirAll(confDir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create CNI conf dir %q: %w", confDir, err)
	}
	file := filepath.Join(confDir, name+".conflist")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		return nil, fmt.Errorf("failed to write conflist %q: %w", file, err)
	}
	list, err := libcni.LoadNetworkConf(confDir, name)
	if err != nil {
		return nil, fmt.Errorf("failed to load CNI network %q from %q: %w", name, confDir, err)
	}
	if err := b.checkPlugin(pluginType); err != nil {
		return nil, err
	}
	if pluginType == "bridge" {
		if err := b.checkPlugin("host-local"); err != nil {
			return nil, err
		}
	}
	return list, nil
}

// libcniConfig is libcni over the reference plugin dir then peapod-cni's,
// its result cache in the run's scratch dir (not /var/lib/cni).
func (b *bench) libcniConfig() *libcni.CNIConfig {
	if b.cc == nil {
		b.cc = libcni.NewCNIConfigWithCacheDir(b.cniPath(), filepath.Join(b.work, "cni-cache"), nil)
	}
	return b.cc
}

// cniPath is CNI_PATH for the libcni variants. The reference dir comes first
// so bridge and host-local are Debian's whatever else peapod-cni's dir holds.
func (b *bench) cniPath() []string {
	return []string{b.o.cniPath, filepath.Dir(b.o.peapodCNI)}
}

// checkPlugin refuses to run when libcni would exec another binary for a
// plugin type than the one meant: bridge and host-local from -cni-path,
// peapod-cni the -peapod-cni binary.
func (b *bench) checkPlugin(pluginType string) error {
	want := filepath.Join(b.o.cniPath, pluginType)
	if pluginType == "peapod-cni" {
		want = b.o.peapodCNI
	}
	got, err := invoke.FindInPath(pluginType, b.cniPath())
	if err != nil {
		return fmt.Errorf("failed to find CNI plugin %q in %v: %w", pluginType, b.cniPath(), err)
	}
	gotReal, err1 := filepath.EvalSymlinks(got)
	wantReal, err2 := filepath.EvalSymlinks(want)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("failed to resolve CNI plugin %q: %w", pluginType, err)
	}
	if gotReal != wantReal {
		return fmt.Errorf("CNI plugin %q resolves to %s in %v, not %s", pluginType, got, b.cniPath(), want)
	}
	return nil
}

// libcniCycle runs ADD then DEL of one container through libcni and returns
// the host veth named in ADD's result.
func (b *bench) libcniCycle(list *libcni.NetworkConfigList, bridge, pin, id string) (string, error) {
	ctx := context.Background()
	cc := b.libcniConfig()
	rt := &libcni.RuntimeConf{ContainerID: id, NetNS: pin, IfName: "eth0"}
	var veth string
	r, addErr := cc.AddNetworkList(ctx, list, rt)
	if addErr != nil {
		addErr = fmt.Errorf("failed to add %q to CNI network %q: %w", id, list.Name, addErr)
	} else {
		veth, addErr = hostVeth(r, bridge)
	}
	// DEL even after a failed ADD, as the spec asks of a runtime: it frees
	// whatever the plugin got before it failed.
	if err := cc.DelNetworkList(ctx, list, rt); err != nil {
		return veth, errors.Join(addErr, fmt.Errorf("failed to delete %q from CNI network %q: %w", id, list.Name, err))
	}
	return veth, addErr
}

// hostVeth is the result's host interface: not in a sandbox, not the bridge.
func hostVeth(r types.Result, bridge string) (string, error) {
	res, err := current.NewResultFromResult(r)
	if err != nil {
		return "", fmt.Errorf("failed to read CNI result: %w", err)
	}
	for _, iface := range res.Interfaces {
		if iface.Sandbox == "" && iface.Name != bridge {
			return iface.Name, nil
		}
	}
	return "", fmt.Errorf("CNI result names no host veth: %v", res.Interfaces)
}
