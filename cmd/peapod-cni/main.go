// Command peapod-cni is peapod's pod network as a standard CNI plugin: a
// bridge, veth pairs and host-local IPAM, configured with the reference
// bridge plugin's keys. See package cni/plugin.
package main

import "github.com/peapod/peapod/cni/plugin"

func main() {
	plugin.Main()
}
