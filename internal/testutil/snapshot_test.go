package testutil

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/peapod/peapod/internal/procfs"
)

// snap builds a snapshot by hand; the test process is PID 100.
func snap(sections map[string][]string, procs ...Process) *Snapshot {
	return &Snapshot{Sections: sections, Processes: procs, Self: 100, CgroupPrefixes: []string{"peapod-abc"}}
}

func TestDiffEntries(t *testing.T) {
	tests := []struct {
		name   string
		before map[string][]string
		after  map[string][]string
		want   []string
	}{
		{
			name:   "identical",
			before: map[string][]string{SectionMounts: {"/ ext4 /dev/vda"}, SectionLinks: {"lo ifindex=1"}},
			after:  map[string][]string{SectionMounts: {"/ ext4 /dev/vda"}, SectionLinks: {"lo ifindex=1"}},
			want:   nil,
		},
		{
			name:   "appeared and disappeared, ordered by section then entry",
			before: map[string][]string{SectionLinks: {"lo ifindex=1", "veth0 ifindex=7"}, SectionNetns: {"peapod-x"}},
			after: map[string][]string{
				SectionLinks: {"lo ifindex=1"},
				SectionFiles: {"run-root:/pods/b dir", "root:/pods/a dir"},
				SectionNetns: {"peapod-x"},
			},
			want: []string{
				"- links: veth0 ifindex=7",
				"+ files: root:/pods/a dir",
				"+ files: run-root:/pods/b dir",
			},
		},
		{
			name:   "a mount stacked on an existing mount point shows",
			before: map[string][]string{SectionMounts: {"/run/p tmpfs tmpfs"}},
			after:  map[string][]string{SectionMounts: {"/run/p tmpfs tmpfs", "/run/p tmpfs tmpfs"}},
			want:   []string{"+ mounts: /run/p tmpfs tmpfs"},
		},
		{
			name:   "same ifindex, other name",
			before: map[string][]string{SectionLinks: {"a ifindex=3"}},
			after:  map[string][]string{SectionLinks: {"b ifindex=3"}},
			want:   []string{"- links: a ifindex=3", "+ links: b ifindex=3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := snap(tt.before).Diff(snap(tt.after))
			if !slices.Equal(got, tt.want) {
				t.Errorf("Diff() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestDiffProcesses(t *testing.T) {
	machine := Process{PID: 1, StartTime: 5, Comm: "init"}
	tests := []struct {
		name   string
		before []Process
		after  []Process
		want   []string // PIDs and signs, e.g. "+42"
	}{
		{
			name:   "an unrelated new process is the machine's business",
			before: []Process{machine},
			after:  []Process{machine, {PID: 42, StartTime: 9, PPID: 7, Comm: "cron"}},
		},
		{
			name:   "peapod binaries by comm or exe",
			before: []Process{machine},
			after: []Process{
				machine,
				{PID: 42, StartTime: 9, PPID: 7, Comm: "peapod-supervis"},
				{PID: 43, StartTime: 9, PPID: 7, Comm: "exe", Exe: "/usr/local/bin/peapod-cni"},
			},
			want: []string{"+42", "+43"},
		},
		{
			name:   "a process in a peapod cgroup",
			before: []Process{machine},
			after:  []Process{machine, {PID: 42, StartTime: 9, PPID: 7, Comm: "sleep", Cgroups: []string{"/peapod-abc/pod/app"}}},
			want:   []string{"+42"},
		},
		{
			name:   "a new orphan is a detached leftover",
			before: []Process{machine},
			after:  []Process{machine, {PID: 42, StartTime: 9, PPID: 1, Comm: "sleep"}},
			want:   []string{"+42"},
		},
		{
			name:   "an orphan that was there before is not new",
			before: []Process{machine, {PID: 42, StartTime: 9, PPID: 1, Comm: "sshd"}},
			after:  []Process{machine, {PID: 42, StartTime: 9, PPID: 1, Comm: "sshd"}},
		},
		{
			name:   "the child of a leaked process, also when it sorts first",
			before: []Process{machine},
			after: []Process{
				machine,
				{PID: 30, StartTime: 9, PPID: 50, Comm: "sh"},
				{PID: 31, StartTime: 9, PPID: 30, Comm: "sleep"},
				{PID: 50, StartTime: 8, PPID: 7, Comm: "peapod-supervis"},
			},
			want: []string{"+30", "+31", "+50"},
		},
		{
			name:   "the test itself and its zombie children are left out",
			before: []Process{machine},
			after: []Process{
				machine,
				{PID: 100, StartTime: 3, PPID: 1, Comm: "peapod.test"},
				{PID: 101, StartTime: 9, PPID: 100, Comm: "peapod", Zombie: true},
			},
		},
		{
			name:   "a live peapod child of the test is a leak",
			before: []Process{machine},
			after:  []Process{machine, {PID: 101, StartTime: 9, PPID: 100, Comm: "peapod"}},
			want:   []string{"+101"},
		},
		{
			name:   "a reused PID is another process",
			before: []Process{machine, {PID: 42, StartTime: 9, PPID: 7, Comm: "peapod-supervis"}},
			after:  []Process{machine, {PID: 42, StartTime: 90, PPID: 7, Comm: "peapod-supervis"}},
			want:   []string{"+42", "-42"},
		},
		{
			name: "peapod processes that disappeared show, the test's own children and others do not",
			before: []Process{
				machine,
				{PID: 42, StartTime: 9, PPID: 7, Comm: "peapod-supervis"},
				{PID: 43, StartTime: 9, PPID: 100, Comm: "peapod"},
				{PID: 44, StartTime: 9, PPID: 1, Comm: "cron"},
			},
			after: []Process{machine},
			want:  []string{"-42"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, line := range snap(nil, tt.before...).Diff(snap(nil, tt.after...)) {
				sign, rest, _ := strings.Cut(line, " processes: pid=")
				pid, _, _ := strings.Cut(rest, " ")
				got = append(got, sign+pid)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Diff() processes = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseMountinfo(t *testing.T) {
	data := "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue\n" +
		"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n" +
		"50 27 0:4 net:[4026532300] /run/netns/p rw shared:5 - nsfs nsfs rw\n"
	got, err := parseMountinfo(data)
	if err != nil {
		t.Fatalf("parseMountinfo() error = %v", err)
	}
	want := []mountEntry{
		{root: "/mnt1", mountPoint: "/mnt2", fsType: "ext3", source: "/dev/root"},
		{root: "/", mountPoint: "/sys/fs/cgroup/unified", fsType: "cgroup2", source: "cgroup2"},
		{root: "net:[4026532300]", mountPoint: "/run/netns/p", fsType: "nsfs", source: "nsfs"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("parseMountinfo() = %+v, want %+v", got, want)
	}
	if got[0].String() != "/mnt2 ext3 /dev/root" {
		t.Errorf("String() = %q, want mount ids dropped", got[0].String())
	}
	if _, err := parseMountinfo("36 35 98:0 / /mnt rw - ext4\n"); err == nil {
		t.Errorf("parseMountinfo() of a line without source: error = nil, want an error")
	}
}

// The parsing itself is tested in internal/procfs.
func TestProcessOf(t *testing.T) {
	for state, zombie := range map[byte]bool{'S': false, 'Z': true} {
		got := processOf(procfs.Stat{PID: 42, Comm: "a) b", State: state, PPID: 7, StartTime: 4242})
		want := Process{PID: 42, PPID: 7, Comm: "a) b", StartTime: 4242, Zombie: zombie}
		if got.String() != want.String() {
			t.Errorf("processOf(state %q) = %v, want %v", state, got, want)
		}
	}
}

func TestParseProcCgroup(t *testing.T) {
	got := parseProcCgroup("12:pids:/peapod-abc/p/app\n4:memory:/peapod-abc/p/app\n1:name=systemd:/\n0::/peapod-abc/p/app\n")
	want := []string{"/peapod-abc/p/app"}
	if !slices.Equal(got, want) {
		t.Errorf("parseProcCgroup() = %v, want %v", got, want)
	}
}

func TestParseRuleset(t *testing.T) {
	ruleset := "table ip filter {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t}\n}\n" +
		"table inet peapod-abc {\n\tchain postrouting {\n\t\tip saddr 10.0.0.0/24 counter packets 12 bytes 3456 masquerade\n\t}\n}\n"
	tests := []struct {
		prefix string
		want   []string
	}{
		{
			prefix: "peapod",
			want: []string{
				"table inet peapod-abc",
				"table inet peapod-abc: chain postrouting {",
				"table inet peapod-abc: ip saddr 10.0.0.0/24 counter packets N bytes N masquerade",
			},
		},
		{prefix: "other", want: nil},
		{
			prefix: "",
			want: []string{
				"table ip filter",
				"table ip filter: chain input {",
				"table ip filter: type filter hook input priority filter; policy accept;",
				"table inet peapod-abc",
				"table inet peapod-abc: chain postrouting {",
				"table inet peapod-abc: ip saddr 10.0.0.0/24 counter packets N bytes N masquerade",
			},
		},
	}
	for _, tt := range tests {
		t.Run("prefix="+tt.prefix, func(t *testing.T) {
			got := parseRuleset(ruleset, tt.prefix)
			if !slices.Equal(got, tt.want) {
				t.Errorf("parseRuleset() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestHasComponentPrefix(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"/peapod-abc", true},
		{"/peapod-abc/pod/app", true},
		{"/system.slice/peapod-abc/pod", true},
		{"/system.slice/x-peapod-abc", false},
		{"/", false},
	}
	for _, tt := range tests {
		if got := hasComponentPrefix(tt.path, []string{"", "peapod-abc"}); got != tt.want {
			t.Errorf("hasComponentPrefix(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

func TestReadRootFilesAndLeases(t *testing.T) {
	tmp := t.TempDir()
	r := Roots{
		Root:    filepath.Join(tmp, "root"),
		RunRoot: filepath.Join(tmp, "missing-run-root"),
		Ignore:  []string{"net/last_reserved_ip.*", "cache"},
	}
	writeFile(t, filepath.Join(r.Root, "pods", "u1", "pod.json"), "{}")
	writeFile(t, filepath.Join(r.Root, "net", "10.0.0.2"), "ctr1\r\neth0")
	writeFile(t, filepath.Join(r.Root, "net", "last_reserved_ip.0"), "10.0.0.2")
	writeFile(t, filepath.Join(r.Root, "cache", "blob"), "x")
	if err := os.Symlink("pod.json", filepath.Join(r.Root, "pods", "u1", "link")); err != nil {
		t.Fatal(err)
	}

	files, err := readRootFiles(r)
	if err != nil {
		t.Fatalf("readRootFiles() error = %v", err)
	}
	slices.Sort(files)
	wantFiles := []string{
		"root:/net dir",
		"root:/net/10.0.0.2 file",
		"root:/pods dir",
		"root:/pods/u1 dir",
		"root:/pods/u1/link symlink",
		"root:/pods/u1/pod.json file",
	}
	if !slices.Equal(files, wantFiles) {
		t.Errorf("readRootFiles() =\n%s\nwant\n%s", strings.Join(files, "\n"), strings.Join(wantFiles, "\n"))
	}

	leases, err := readLeases(r)
	if err != nil {
		t.Fatalf("readLeases() error = %v", err)
	}
	wantLeases := []string{`root:/net/10.0.0.2 owner="ctr1 eth0"`}
	if !slices.Equal(leases, wantLeases) {
		t.Errorf("readLeases() = %q, want %q", leases, wantLeases)
	}
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
