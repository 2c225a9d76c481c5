package namespaces

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/testutil"
	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/spec"
)

// testSandboxOptions returns options with unique names and removes whatever
// they pin when the test ends, even if it fails.
func testSandboxOptions(t *testing.T) SandboxOptions {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	id := hex.EncodeToString(b)
	o := SandboxOptions{
		RunDir:    t.TempDir(),
		NetnsName: "peapod-test-" + id,
		Hostname:  "pod-" + id,
	}
	t.Cleanup(func() {
		if err := RemoveSandbox(o); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return o
}

// hostNSInode is the inode of this process's namespace of the given /proc name.
func hostNSInode(t *testing.T, name string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/"+name, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// mountsUnder returns the mountinfo lines whose mount point lies under one of paths.
func mountsUnder(t *testing.T, paths ...string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		for _, p := range paths {
			if len(fields) > 4 && strings.HasPrefix(fields[4], p) {
				out = append(out, s.Text())
			}
		}
	}
	return out
}

// ipNetnsList returns `ip netns list`.
func ipNetnsList(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	return string(out)
}

// hostnameIn reads the hostname seen inside the UTS namespace pinned at pin.
func hostnameIn(t *testing.T, pin string) string {
	t.Helper()
	var uts unix.Utsname
	if err := Do(pin, unix.CLONE_NEWUTS, func() error { return unix.Uname(&uts) }); err != nil {
		t.Fatal(err)
	}
	return unix.ByteSliceToString(uts.Nodename[:])
}

func TestCreateSandbox(t *testing.T) {
	testutil.RequireRoot(t)
	o := testSandboxOptions(t)
	netPin := filepath.Join(netnsDir, o.NetnsName)
	hostNet := hostNSInode(t, "net")

	sb, err := CreateSandbox(o)
	if err != nil {
		t.Fatal(err)
	}
	// No thread, the main one included, may stay in the pod's namespaces.
	assertAllThreadsIn(t, hostNet)
	for key, proc := range map[string]string{spec.NSNet: "net", spec.NSUTS: "uts", spec.NSIPC: "ipc"} {
		ino, err := PinInode(sb.Paths[key])
		if err != nil {
			t.Fatalf("%s pin: %v", key, err)
		}
		if host := hostNSInode(t, proc); ino == host {
			t.Errorf("%s pin %q holds the host's namespace %d", key, sb.Paths[key], host)
		}
	}
	if sb.Paths[spec.NSNet] != netPin {
		t.Errorf("net pin = %q, want %q", sb.Paths[spec.NSNet], netPin)
	}
	if !strings.Contains(ipNetnsList(t), o.NetnsName) {
		t.Errorf("ip netns list does not show %q", o.NetnsName)
	}
	if got := hostnameIn(t, sb.Paths[spec.NSUTS]); got != o.Hostname {
		t.Errorf("hostname in sandbox = %q, want %q", got, o.Hostname)
	}

	for i := range 2 {
		if err := RemoveSandbox(o); err != nil {
			t.Fatalf("RemoveSandbox #%d: %v", i+1, err)
		}
	}
	for _, p := range sb.Paths {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("pin %q left after RemoveSandbox: %v", p, err)
		}
	}
	if m := mountsUnder(t, o.RunDir, netPin); len(m) != 0 {
		t.Errorf("mounts left: %q", m)
	}
	if strings.Contains(ipNetnsList(t), o.NetnsName) {
		t.Errorf("ip netns list still shows %q", o.NetnsName)
	}
}

func TestCreateSandboxHostNetwork(t *testing.T) {
	testutil.RequireRoot(t)
	o := testSandboxOptions(t)
	o.HostNetwork = true
	sb, err := CreateSandbox(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(sb.Paths) != 1 || sb.Paths[spec.NSIPC] == "" {
		t.Fatalf("host-network sandbox pins %v, want only ipc", sb.Paths)
	}
	if ino, err := PinInode(sb.Paths[spec.NSIPC]); err != nil || ino == hostNSInode(t, "ipc") {
		t.Errorf("ipc pin inode %d (%v), host's is %d", ino, err, hostNSInode(t, "ipc"))
	}
	if _, err := os.Lstat(filepath.Join(netnsDir, o.NetnsName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("host-network sandbox created a netns pin: %v", err)
	}
}

// TestCreateSandboxHostIPC: a host-IPC sandbox pins net and uts of its
// own and no ipc; with host network too it pins nothing, and removing it
// leaves nothing.
func TestCreateSandboxHostIPC(t *testing.T) {
	testutil.RequireRoot(t)
	o := testSandboxOptions(t)
	o.HostIPC = true
	t.Cleanup(func() { RemoveSandbox(o) })
	sb, err := CreateSandbox(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(sb.Paths) != 2 || sb.Paths[spec.NSNet] == "" || sb.Paths[spec.NSUTS] == "" {
		t.Fatalf("host-IPC sandbox pins %v, want net and uts", sb.Paths)
	}
	if _, err := os.Lstat(layout.Run(o.RunDir).NSPin("ipc")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("host-IPC sandbox created an ipc pin: %v", err)
	}
	for key, proc := range map[string]string{spec.NSNet: "net", spec.NSUTS: "uts"} {
		if ino, err := PinInode(sb.Paths[key]); err != nil || ino == hostNSInode(t, proc) {
			t.Errorf("%s pin inode %d (%v), host's is %d", key, ino, err, hostNSInode(t, proc))
		}
	}
	if err := RemoveSandbox(o); err != nil {
		t.Fatal(err)
	}

	h := testSandboxOptions(t)
	h.HostNetwork, h.HostIPC = true, true
	t.Cleanup(func() { RemoveSandbox(h) })
	sb, err = CreateSandbox(h)
	if err != nil {
		t.Fatal(err)
	}
	if len(sb.Paths) != 0 {
		t.Fatalf("host-network, host-IPC sandbox pins %v, want none", sb.Paths)
	}
	if err := RemoveSandbox(h); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(layout.Run(h.RunDir).NSDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("namespace dir left: %v", err)
	}
}

// A pin that already exists makes CreateSandbox fail after it pinned net and
// uts; those must be rolled back and the foreign file left alone.
func TestCreateSandboxRollsBack(t *testing.T) {
	testutil.RequireRoot(t)
	o := testSandboxOptions(t)
	netPin := filepath.Join(netnsDir, o.NetnsName)
	foreign := layout.Run(o.RunDir).NSPin("ipc")
	if err := os.MkdirAll(filepath.Dir(foreign), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(foreign, []byte("not ours"), 0o600); err != nil {
		t.Fatal(err)
	}

	if _, err := CreateSandbox(o); !errors.Is(err, os.ErrExist) {
		t.Fatalf("CreateSandbox over an existing pin: err = %v, want ErrExist", err)
	}
	for _, p := range []string{netPin, layout.Run(o.RunDir).NSPin("uts")} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("pin %q left after a failed CreateSandbox: %v", p, err)
		}
	}
	if b, err := os.ReadFile(foreign); err != nil || string(b) != "not ours" {
		t.Errorf("foreign file changed: %q, %v", b, err)
	}
	if m := mountsUnder(t, o.RunDir, netPin); len(m) != 0 {
		t.Errorf("mounts left: %q", m)
	}
}

// RemoveSandbox after a crash half-way through pinning: one pin mounted, one
// file created but not yet mounted, one never created.
func TestRemoveSandboxAfterHalfCreate(t *testing.T) {
	testutil.RequireRoot(t)
	o := testSandboxOptions(t)
	if err := ensureNetnsDir(); err != nil {
		t.Fatal(err)
	}
	netPin := filepath.Join(netnsDir, o.NetnsName)
	var undo []func()
	if err := pinNamespace("/proc/self/ns/net", netPin, &undo); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(layout.Run(o.RunDir).NSDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(layout.Run(o.RunDir).NSPin("uts"), nil, 0o444); err != nil {
		t.Fatal(err)
	}

	for i := range 2 {
		if err := RemoveSandbox(o); err != nil {
			t.Fatalf("RemoveSandbox #%d: %v", i+1, err)
		}
	}
	if _, err := os.Lstat(netPin); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("netns pin left: %v", err)
	}
	if _, err := os.Lstat(layout.Run(o.RunDir).NSDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ns dir left: %v", err)
	}
	if m := mountsUnder(t, o.RunDir, netPin); len(m) != 0 {
		t.Errorf("mounts left: %q", m)
	}
}

func TestRemoveSandboxNeverCreated(t *testing.T) {
	testutil.RequireRoot(t)
	o := testSandboxOptions(t)
	if err := RemoveSandbox(o); err != nil {
		t.Fatal(err)
	}
}

func TestPinInodeNotPinned(t *testing.T) {
	plain := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(plain, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{plain, plain + "-missing"} {
		if _, err := PinInode(p); !errors.Is(err, ErrNotPinned) {
			t.Errorf("PinInode(%q) = %v, want ErrNotPinned", p, err)
		}
	}
}

func TestSandboxOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		o    SandboxOptions
		ok   bool
	}{
		{"pod network", SandboxOptions{RunDir: "/r", NetnsName: "peapod-x", Hostname: "web"}, true},
		{"host network needs no netns", SandboxOptions{RunDir: "/r", HostNetwork: true}, true},
		{"no run dir", SandboxOptions{NetnsName: "peapod-x"}, false},
		{"no netns name", SandboxOptions{RunDir: "/r"}, false},
		{"netns name with slash", SandboxOptions{RunDir: "/r", NetnsName: "../etc"}, false},
		{"hidden netns name", SandboxOptions{RunDir: "/r", NetnsName: ".x"}, false},
		{"hostname too long", SandboxOptions{RunDir: "/r", NetnsName: "x", Hostname: strings.Repeat("h", 65)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.o.validate(); (err == nil) != tt.ok {
				t.Errorf("validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
