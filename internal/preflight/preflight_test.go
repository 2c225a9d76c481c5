package preflight

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/peapod/peapod/cgroups"
	"github.com/peapod/peapod/internal/kfeature"
)

// fakeHost answers every question as a healthy pure cgroup v2 host does;
// each test case breaks one thing.
type fakeHost struct {
	release       string
	nsMissing     map[string]bool
	nsProbeErr    map[string]error
	filesystems   string
	rootFS        string
	bridgeErr     error
	vethErr       error
	nftErr        error
	mode          cgroups.Mode
	driver        string
	ctrls         []string
	cgErr         error
	propagation   string
	forward       string
	free          map[string]uint64
	netWarnings   []Result
	overlap       error
	bridgeState   string
	bridgeErrLink error
}

func healthy() *fakeHost {
	return &fakeHost{
		release: "6.1.0-18-amd64 x86_64", filesystems: "nodev\ttmpfs\nnodev\toverlay\n\text4\n", rootFS: "ext4",
		mode: cgroups.ModeUnified, driver: "v2", ctrls: []string{"cpuset", "cpu", "io", "memory", "pids"},
		propagation: "shared", forward: "0", free: map[string]uint64{"/var/lib/peapod": 10 << 30, "/run/peapod": 100 << 20},
		bridgeState: "not created yet: the first pod creates it",
	}
}

func (f *fakeHost) KernelRelease() (string, error)      { return f.release, nil }
func (f *fakeHost) HasNamespaceFile(kind string) bool   { return !f.nsMissing[kind] }
func (f *fakeHost) ProbeNamespace(kind string) error    { return f.nsProbeErr[kind] }
func (f *fakeHost) Filesystems() (string, error)        { return f.filesystems, nil }
func (f *fakeHost) FSTypeName(string) (string, error)   { return f.rootFS, nil }
func (f *fakeHost) ProbeLinks() (error, error)          { return f.bridgeErr, f.vethErr }
func (f *fakeHost) ProbeNftables() error                { return f.nftErr }
func (f *fakeHost) NetnsPropagation() (string, error)   { return f.propagation, nil }
func (f *fakeHost) Sysctl(string) (string, error)       { return f.forward, nil }
func (f *fakeHost) FreeBytes(p string) (uint64, error)  { return f.free[p], nil }
func (f *fakeHost) NetworkWarnings(Network) []Result    { return f.netWarnings }
func (f *fakeHost) SubnetOverlap(Network) error         { return f.overlap }
func (f *fakeHost) BridgeState(Network) (string, error) { return f.bridgeState, f.bridgeErrLink }
func (f *fakeHost) Cgroups(string) (cgroups.Mode, string, []string, error) {
	return f.mode, f.driver, f.ctrls, f.cgErr
}

func opts() Options {
	return Options{Root: "/var/lib/peapod", RunRoot: "/run/peapod", CgroupDriver: "auto",
		Network: Network{Bridge: "peapod0", Subnet: netip.MustParsePrefix("10.220.0.0/16"), DataDir: "/var/lib/peapod/net/peapod0"}}
}

func TestRun(t *testing.T) {
	for _, tt := range []struct {
		name   string
		break_ func(*fakeHost, *Options)
		// check and level of the one result that must change; "" = all OK
		check string
		level Level
		// words that must be in its detail or fix
		words []string
	}{
		{"healthy", func(*fakeHost, *Options) {}, "", OK, nil},
		{"old kernel", func(f *fakeHost, _ *Options) { f.release = "4.19.0-1 x86_64" }, "kernel", Fail, []string{"5.3", "pidfd_open"}},
		{"no net namespace", func(f *fakeHost, _ *Options) { f.nsMissing = map[string]bool{"net": true} }, "net namespace", Fail, []string{"CONFIG_NET_NS"}},
		{"clone refused", func(f *fakeHost, _ *Options) {
			f.nsProbeErr = map[string]error{"pid": errors.New("operation not permitted")}
		}, "pid namespace", Fail, []string{"not permitted", "CONFIG_PID_NS"}},
		{"no overlay", func(f *fakeHost, _ *Options) { f.filesystems = "nodev\ttmpfs\n" }, "overlayfs", Fail, []string{kfeature.Overlay.Fix}},
		{"root on overlay", func(f *fakeHost, _ *Options) { f.rootFS = "overlayfs" }, "overlayfs", Fail, []string{"--root /var/lib/peapod is on overlayfs"}},
		{"no bridge", func(f *fakeHost, _ *Options) { f.bridgeErr = errors.New("operation not supported") }, "bridge", Fail, []string{"modprobe bridge"}},
		{"no veth", func(f *fakeHost, _ *Options) { f.vethErr = errors.New("operation not supported") }, "veth", Fail, []string{"modprobe veth"}},
		{"no nftables", func(f *fakeHost, _ *Options) { f.nftErr = errors.New("protocol not supported") }, "nftables", Fail, []string{"nf_tables"}},
		{"hybrid with v2 driver", func(f *fakeHost, o *Options) {
			f.mode, f.ctrls, o.CgroupDriver = cgroups.ModeHybrid, nil, "v2"
		}, "cgroup controllers", Warn, []string{"missing cpu memory pids", "--cgroup-driver=v1"}},
		{"no cgroup driver", func(f *fakeHost, o *Options) {
			f.mode, f.cgErr, o.CgroupDriver = cgroups.ModeUnified, cgroups.ErrUnsupported, "v1"
		}, "cgroup driver", Fail, []string{"--cgroup-driver=v1", "cgroup2"}},
		{"private /run/netns", func(f *fakeHost, _ *Options) { f.propagation = "private" }, "/run/netns", Warn, []string{"make-rshared"}},
		{"no /run/netns mount", func(f *fakeHost, _ *Options) { f.propagation = "" }, "", OK, nil},
		{"root nearly full", func(f *fakeHost, _ *Options) { f.free["/var/lib/peapod"] = 500 << 20 }, "space in --root", Warn, []string{"500.0 MiB", "1.0 GiB"}},
		{"root full", func(f *fakeHost, _ *Options) { f.free["/var/lib/peapod"] = 1 << 20 }, "space in --root", Fail, []string{"1.0 MiB"}},
		{"run root full", func(f *fakeHost, _ *Options) { f.free["/run/peapod"] = 4096 }, "space in --run-root", Fail, []string{"4.0 KiB"}},
		{"subnet overlaps", func(f *fakeHost, _ *Options) {
			f.overlap = errors.New("pod subnet 10.220.0.0/16 overlaps route 10.220.1.0/24 dev \"eth1\"")
		}, "subnet 10.220.0.0/16", Fail, []string{"eth1", "--subnet"}},
		{"bridge name taken", func(f *fakeHost, _ *Options) {
			f.bridgeErrLink = errors.New(`link "peapod0" exists but is a veth, not a bridge`)
		}, "bridge peapod0", Fail, []string{"not a bridge", "--bridge"}},
		{"br_netfilter", func(f *fakeHost, _ *Options) {
			f.netWarnings = []Result{{"br_netfilter", Warn, "br_netfilter is loaded", "iptables -I FORWARD"}}
		}, "br_netfilter", Warn, []string{"iptables -I FORWARD"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, o := healthy(), opts()
			tt.break_(f, &o)
			rs := Run(f, o)
			found := false
			for _, r := range rs {
				if r.Check == tt.check {
					found = true
					if r.Level != tt.level {
						t.Errorf("%s: level %v, want %v (%+v)", r.Check, r.Level, tt.level, r)
					}
					for _, w := range tt.words {
						if !strings.Contains(r.Detail+" "+r.Fix, w) {
							t.Errorf("%s: %q / %q lacks %q", r.Check, r.Detail, r.Fix, w)
						}
					}
					if r.Level != OK && r.Fix == "" {
						t.Errorf("%s is %v without a fix", r.Check, r.Level)
					}
					continue
				}
				if r.Level != OK {
					t.Errorf("%s: %v (%s), want OK: only %q should change", r.Check, r.Level, r.Detail, tt.check)
				}
			}
			if tt.check != "" && !found {
				t.Errorf("no result named %q in %+v", tt.check, rs)
			}
			if want := tt.level == Fail; (Failed(rs) > 0) != want {
				t.Errorf("Failed = %d, want failures %v", Failed(rs), want)
			}
		})
	}
}

func TestPrint(t *testing.T) {
	var b bytes.Buffer
	if err := Print(&b, []Result{
		{Check: "kernel", Level: OK, Detail: "6.1.0 x86_64"},
		{"overlayfs", Fail, "not in /proc/filesystems", "modprobe overlay"},
	}); err != nil {
		t.Fatal(err)
	}
	want := "OK    kernel                 6.1.0 x86_64\n" +
		"FAIL  overlayfs              not in /proc/filesystems\n" +
		"                             fix: modprobe overlay\n" +
		"\n1 OK, 0 WARN, 1 FAIL\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestHasFilesystem(t *testing.T) {
	fs := "nodev\tsysfs\nnodev\toverlay\n\text4\n"
	if !hasFilesystem(fs, "overlay") || !hasFilesystem(fs, "ext4") || hasFilesystem(fs, "xfs") || hasFilesystem(fs, "nodev") {
		t.Error("hasFilesystem misreads /proc/filesystems")
	}
}
