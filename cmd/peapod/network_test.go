package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadNetworkFixedOnlyByPodCommands: a command that puts no pod on the
// network (image import, ps, …) on a fresh root writes no network config,
// so the first run may still choose --bridge and --subnet; run, apply and
// cri write it, and later flags that differ are refused naming the file.
func TestLoadNetworkFixedOnlyByPodCommands(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "network.json")
	reader := &globals{root: root, runRoot: t.TempDir()}
	c, _, err := reader.loadNetwork()
	if err != nil {
		t.Fatalf("loadNetwork on a fresh root: %v", err)
	}
	if c.Bridge != "peapod0" {
		t.Errorf("bridge %q on a fresh root without flags, want the default peapod0", c.Bridge)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("a command that runs no pod wrote %s (stat: %v)", file, err)
	}
	runner := &globals{root: root, runRoot: reader.runRoot, bridge: "ppfirst0", subnet: "10.250.0.0/24", fixNetwork: true}
	if c, _, err = runner.loadNetwork(); err != nil || c.Bridge != "ppfirst0" {
		t.Fatalf("first run with --bridge ppfirst0: bridge %q, err %v", c.Bridge, err)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("the first run did not fix the network: %v", err)
	}
	other := &globals{root: root, runRoot: reader.runRoot, bridge: "ppother0"}
	if _, _, err := other.loadNetwork(); err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("--bridge ppother0 after the network was fixed as ppfirst0: %v, want an error naming %s", err, file)
	}
	if c, _, err = reader.loadNetwork(); err != nil || c.Bridge != "ppfirst0" {
		t.Errorf("a later command without flags: bridge %q, err %v; want the fixed ppfirst0", c.Bridge, err)
	}
}
