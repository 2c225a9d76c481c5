package containerinit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/namespaces"
	"github.com/peapod/peapod/runtime/spec"
)

func TestParseMountOptions(t *testing.T) {
	tests := []struct {
		opts []string
		want parsedMount
	}{
		{nil, parsedMount{}},
		{[]string{"ro", "nosuid", "nodev", "mode=755", "size=1k"},
			parsedMount{flags: unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV, data: "mode=755,size=1k"}},
		{[]string{"ro", "rw"}, parsedMount{}},
		{[]string{"rbind", "rslave", spec.SubPathOption + "a/b"},
			parsedMount{flags: unix.MS_BIND | unix.MS_REC, propagation: []uintptr{unix.MS_SLAVE | unix.MS_REC}, subPath: "a/b"}},
		// rro is no mount(2) flag and must not reach the data string.
		{[]string{"rbind", "rprivate", "ro", spec.RecursiveReadOnlyOption},
			parsedMount{flags: unix.MS_BIND | unix.MS_REC | unix.MS_RDONLY, propagation: []uintptr{unix.MS_PRIVATE | unix.MS_REC}, recursiveRO: true}},
	}
	for _, tt := range tests {
		if got := parseMountOptions(tt.opts); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseMountOptions(%q) = %+v, want %+v", tt.opts, got, tt.want)
		}
	}
}

func TestCheckMountDestination(t *testing.T) {
	tests := []struct {
		m  specs.Mount
		ok bool
	}{
		{specs.Mount{Destination: "/proc", Type: "proc"}, true},
		{specs.Mount{Destination: "/data", Type: "bind"}, true},
		{specs.Mount{Destination: "/proc", Type: "bind"}, false},
		{specs.Mount{Destination: "/proc/sys/kernel", Type: "bind"}, false},
		{specs.Mount{Destination: "/x/../proc/self", Type: "tmpfs"}, false},
		{specs.Mount{Destination: "relative", Type: "tmpfs"}, false},
		{specs.Mount{Destination: "/", Type: "tmpfs"}, false},
	}
	for _, tt := range tests {
		if err := checkMountDestination(tt.m); (err == nil) != tt.ok {
			t.Errorf("checkMountDestination(%s on %q) = %v, want ok=%v", tt.m.Type, tt.m.Destination, err, tt.ok)
		}
	}
}

func TestOverlayOptions(t *testing.T) {
	r := spec.Rootfs{Lowers: []string{"/l/top", "/l/base"}, Upper: "/u", Work: "/w"}
	if err := checkRootfs(r); err != nil {
		t.Errorf("checkRootfs(%+v) = %v", r, err)
	}
	if got, want := overlayOptions(r.Lowers, r), "lowerdir=/l/top:/l/base,upperdir=/u,workdir=/w"; got != want {
		t.Errorf("overlayOptions = %q, want %q", got, want)
	}
	bad := []spec.Rootfs{
		{Upper: "/u", Work: "/w"},
		{Lowers: []string{"/a,b"}, Upper: "/u", Work: "/w"},
		{Lowers: []string{"/a:b"}, Upper: "/u", Work: "/w"},
		{Lowers: []string{"rel"}, Upper: "/u", Work: "/w"},
		{Lowers: []string{"/l"}, Upper: "/u:x", Work: "/w"},
		{Lowers: layerPaths("/l", MaxOverlayLowers+1), Upper: "/u", Work: "/w"},
	}
	for _, r := range bad {
		if err := checkRootfs(r); err == nil {
			t.Errorf("checkRootfs(%d lowers %.40q..., upper %q) accepted", len(r.Lowers), r.Lowers, r.Upper)
		}
	}
}

// layerPaths returns n store-like layer paths under dir, top first.
func layerPaths(dir string, n int) []string {
	var out []string
	for i := n - 1; i >= 0; i-- {
		out = append(out, fmt.Sprintf("%s/%064x", dir, i))
	}
	return out
}

// TestPickOverlayMethod: shallow images keep plain mount(2); a deep one
// (60 layers of /var/lib/peapod's store: 5.3 KB of lowerdir) goes through
// lowerdir+ where the kernel has it and every path fits an fsconfig
// string, else through /proc/self/fd names.
func TestPickOverlayMethod(t *testing.T) {
	const store = "/var/lib/peapod/images/layers"
	long := "/" + strings.Repeat("d", 300)
	tests := []struct {
		name         string
		r            spec.Rootfs
		lowerdirPlus bool
		want         overlayMethod
	}{
		{"shallow", spec.Rootfs{Lowers: layerPaths(store, 40), Upper: "/u", Work: "/w"}, true, overlayData},
		{"shallow old kernel", spec.Rootfs{Lowers: layerPaths(store, 40), Upper: "/u", Work: "/w"}, false, overlayData},
		{"deep", spec.Rootfs{Lowers: layerPaths(store, 60), Upper: "/u", Work: "/w"}, true, overlayLowerdirPlus},
		{"deep old kernel", spec.Rootfs{Lowers: layerPaths(store, 60), Upper: "/u", Work: "/w"}, false, overlayFdNames},
		{"deep, long upper", spec.Rootfs{Lowers: layerPaths(store, 60), Upper: long, Work: "/w"}, true, overlayFdNames},
		{"deep, long lower", spec.Rootfs{Lowers: layerPaths(long, 12), Upper: "/u", Work: "/w"}, true, overlayFdNames},
	}
	for _, tt := range tests {
		if got := pickOverlayMethod(tt.r, tt.lowerdirPlus); got != tt.want {
			t.Errorf("%s: pickOverlayMethod = %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestParseKernelVersion(t *testing.T) {
	tests := []struct {
		release    string
		maj, minor int
		ok         bool
	}{
		{"6.1.0-27-amd64", 6, 1, true},
		{"6.8.0-31-generic", 6, 8, true},
		{"6.18.44-fc-v1045", 6, 18, true},
		{"5.14.0-427.el9.x86_64", 5, 14, true},
		{"6.10", 6, 10, true},
		{"garbage", 0, 0, false},
	}
	for _, tt := range tests {
		maj, minor, ok := parseKernelVersion(tt.release)
		if maj != tt.maj || minor != tt.minor || ok != tt.ok {
			t.Errorf("parseKernelVersion(%q) = %d, %d, %v; want %d, %d, %v", tt.release, maj, minor, ok, tt.maj, tt.minor, tt.ok)
		}
	}
}

func TestResolveCapSetsClampsToHeld(t *testing.T) {
	held := func(c capability.Cap) bool { return c != capability.CAP_SYS_RESOURCE }
	req := &specs.LinuxCapabilities{
		Bounding:  []string{"CAP_CHOWN", "CAP_SYS_RESOURCE"},
		Effective: []string{"cap_kill"},
	}
	got, err := resolveCapSets(req, held)
	if err != nil {
		t.Fatal(err)
	}
	if want := []capability.Cap{capability.CAP_CHOWN}; !reflect.DeepEqual(got.bounding, want) {
		t.Errorf("bounding = %v, want %v", got.bounding, want)
	}
	if want := []capability.Cap{capability.CAP_KILL}; !reflect.DeepEqual(got.effective, want) {
		t.Errorf("effective = %v, want %v", got.effective, want)
	}
	if _, err := resolveCapSets(&specs.LinuxCapabilities{Bounding: []string{"CAP_BOGUS"}}, held); err == nil {
		t.Error("unknown capability accepted")
	}
}

func TestClampRlimit(t *testing.T) {
	tests := []struct{ want, cur, out unix.Rlimit }{
		{unix.Rlimit{Cur: 10, Max: 20}, unix.Rlimit{Cur: 5, Max: 100}, unix.Rlimit{Cur: 10, Max: 20}},
		{unix.Rlimit{Cur: 500, Max: 1000}, unix.Rlimit{Cur: 5, Max: 100}, unix.Rlimit{Cur: 100, Max: 100}},
		{unix.Rlimit{Cur: 50, Max: 1000}, unix.Rlimit{Cur: 5, Max: 100}, unix.Rlimit{Cur: 50, Max: 100}},
	}
	for _, tt := range tests {
		if got := clampRlimit(tt.want, tt.cur); got != tt.out {
			t.Errorf("clampRlimit(%+v, %+v) = %+v, want %+v", tt.want, tt.cur, got, tt.out)
		}
	}
}

func TestFindExecutable(t *testing.T) {
	dir := t.TempDir()
	for name, mode := range map[string]os.FileMode{"tool": 0o755, "data": 0o644} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "subdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := "/nonexistent:" + dir
	if got, err := findExecutable("tool", path); err != nil || got != dir+"/tool" {
		t.Errorf("findExecutable(tool) = %q, %v", got, err)
	}
	if got, err := findExecutable(dir+"/tool", ""); err != nil || got != dir+"/tool" {
		t.Errorf("findExecutable(abs) = %q, %v", got, err)
	}
	for _, name := range []string{"data", "subdir", "missing", dir + "/missing", dir + "/data"} {
		if _, err := findExecutable(name, path); !errors.Is(err, namespaces.ErrExecNotFound) {
			t.Errorf("findExecutable(%q) = %v, want ErrExecNotFound", name, err)
		}
	}
}

func TestMergeDevices(t *testing.T) {
	mode := os.FileMode(0o600)
	got := mergeDevices(defaultDevices[:2], []specs.LinuxDevice{
		{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5, FileMode: &mode},
		{Path: "/dev/ptmx", Type: "c", Major: 5, Minor: 2},
		{Path: "/dev/net/tun", Type: "c", Major: 10, Minor: 200},
	})
	var paths []string
	for _, d := range got {
		paths = append(paths, d.Path)
	}
	if want := []string{"/dev/null", "/dev/zero", "/dev/net/tun"}; !reflect.DeepEqual(paths, want) {
		t.Fatalf("merged paths = %v, want %v", paths, want)
	}
	if got[1].FileMode == nil || *got[1].FileMode != mode {
		t.Errorf("spec device did not override the default /dev/zero")
	}
}

func TestEnvHelpers(t *testing.T) {
	env := []string{"PATH=/a", "X=1", "PATH=/b"}
	if got := namespaces.EnvLookup(env, "PATH", "def"); got != "/b" {
		t.Errorf("namespaces.EnvLookup(PATH) = %q, want the last one", got)
	}
	if got := namespaces.EnvLookup(env, "HOME", "def"); got != "def" {
		t.Errorf("namespaces.EnvLookup(HOME) = %q, want default", got)
	}
	if got := namespaces.WithHome(env, "/home/u"); got[len(got)-1] != "HOME=/home/u" || len(env) != 3 {
		t.Errorf("withHome = %v (input %v)", got, env)
	}
	if got := namespaces.WithHome([]string{"HOME=/x"}, "/home/u"); len(got) != 1 {
		t.Errorf("withHome overrode HOME: %v", got)
	}
}

// The exec constructor gets capabilities as numbers from namespaces'
// own table (the supervisor must not link the capability library): it
// must agree with the library the init stage uses.
func TestCapabilityTableAgrees(t *testing.T) {
	for _, c := range capability.ListKnown() {
		name := "CAP_" + strings.ToUpper(c.String())
		if bit, ok := namespaces.CapabilityBit(name); !ok || bit != uint(c) {
			t.Errorf("namespaces.CapabilityBit(%s) = %d, %v; want %d", name, bit, ok, c)
		}
	}
	if _, ok := namespaces.CapabilityBit("CHOWN"); ok {
		t.Error(`CapabilityBit("CHOWN") accepted a name without CAP_`)
	}
}
