package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheck runs `peapod check` on this host: every line OK or WARN, each
// WARN with its fix, exit 0; and the check writes nothing into a new root.
func TestCheck(t *testing.T) {
	e := newEnv(t)
	out, stderr, code := e.run("", "check")
	if code != 0 {
		t.Fatalf("peapod check: exit code %d\nstdout:\n%s\nstderr: %s", code, out, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i, line := range lines {
		switch {
		case strings.HasPrefix(line, "OK "):
		case strings.HasPrefix(line, "WARN "):
			if i+1 >= len(lines) || !strings.Contains(lines[i+1], "fix: ") {
				t.Errorf("WARN without a fix line: %q", line)
			}
		case strings.HasPrefix(line, "FAIL "):
			t.Errorf("check fails on the host the root tests run on: %q", line)
		}
	}
	for _, want := range []string{"kernel", "mnt namespace", "net namespace", "pid namespace", "overlayfs", "veth", "bridge ", "nftables",
		"cgroup mode", "cgroup driver", "cgroup controllers", "/run/netns", "ip_forward", "space in --root", "space in --run-root", "subnet " + e.subnet.String()} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(lines[len(lines)-1], " 0 FAIL") {
		t.Errorf("summary %q, want 0 FAIL", lines[len(lines)-1])
	}
}

// TestCheckFailsOnOverlappingSubnet gives a new root a subnet that overlaps
// lo's 127.0.0.1/8: check names the overlap with the fix, exits 1 and
// leaves the root unwritten (a `run` would fix the subnet at first use).
func TestCheckFailsOnOverlappingSubnet(t *testing.T) {
	e := newEnv(t)
	own := e.root
	e.root = filepath.Join(shortTempDir(t), "fresh")
	t.Cleanup(func() { e.root = own }) // before the env's teardown
	// e.args passes the env's --subnet first; cobra keeps the last
	out, _, code := e.run("", "--subnet", "127.1.0.0/24", "check")
	if code != 1 {
		t.Fatalf("check with an overlapping subnet: exit code %d, want 1\n%s", code, out)
	}
	if !strings.Contains(out, "FAIL  subnet 127.1.0.0/24") || !strings.Contains(out, `overlaps address 127.0.0.1/8 on "lo"`) || !strings.Contains(out, "fix: pick a free subnet") {
		t.Errorf("output does not name the overlap and its fix:\n%s", out)
	}
	if _, err := os.Stat(e.root); !os.IsNotExist(err) {
		t.Errorf("check created %s (%v), want nothing written", e.root, err)
	}
}

// TestHostWarningOncePerNetwork: the warnings about the host's firewall
// (br_netfilter here, when loaded) come with their fix at the network's
// first pod, and not again: neither at the next pod nor when the bridge is
// made again after `net rm`.
func TestHostWarningOncePerNetwork(t *testing.T) {
	e := newEnv(t)
	b, _ := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables")
	loaded := strings.TrimSpace(string(b)) == "1"
	_, stderr, code := e.run(onePod("w1"), "run", "-d", "-f", "-")
	if code != 0 {
		t.Fatalf("run: exit %d: %s", code, stderr)
	}
	if loaded {
		if !strings.Contains(stderr, "br_netfilter is loaded") || !strings.Contains(stderr, "to fix: allow the bridge there (iptables -I FORWARD -i "+e.bridge) {
			t.Errorf("first pod: no br_netfilter warning with its fix:\n%s", stderr)
		}
	} else {
		t.Log("br_netfilter is not on here: only checking that nothing repeats")
	}
	first := stderr
	_, stderr, _ = e.run(onePod("w2"), "run", "-d", "-f", "-")
	e.mustRun("rm", "-f", "w1", "w2")
	e.mustRun("net", "rm")
	_, again, _ := e.run(onePod("w3"), "run", "-d", "-f", "-")
	for _, s := range []string{stderr, again} {
		if strings.Contains(s, "Warning: network") {
			t.Errorf("a host warning repeated (first run said %q):\n%s", first, s)
		}
	}
}
