package testutil

import "testing"

// TestRootsMine: with PEAPOD_E2E_SHARED_HOST a diff line counts only when
// it names the test's own state.
func TestRootsMine(t *testing.T) {
	r := Roots{
		Root: "/tmp/ppe2e1/root", RunRoot: "/tmp/ppe2e1/run",
		CgroupPrefixes: []string{"peapod-abc123"}, NftTablePrefix: "peapod-ppe2e1br",
		Mine: []string{" ppe2e1br "},
	}
	for _, tc := range []struct {
		line string
		want bool
	}{
		{"+ files: /tmp/ppe2e1/run/pods/x/status.json", true},
		{"+ cgroups: /sys/fs/cgroup/freezer/peapod-abc123/besteffort", true},
		{"+ nftables: table netdev peapod-ppe2e1br-antispoof-pp1", true},
		{"+ links: ppe2e1br ifindex=3", true},
		{"+ links: ppe2e1br2 ifindex=4", false}, // a name is matched with the spaces around it
		{"+ cgroups: /sys/fs/cgroup/freezer/peapod-def456/besteffort", false},
		{"+ mounts: /tmp/ppe2e2/run/bin/peapod-init ext4", false},
		{"- processes: pid=5 comm=peapod cgroups=/user.slice", false},
	} {
		if got := r.mine(tc.line); got != tc.want {
			t.Errorf("mine(%q) = %v, want %v", tc.line, got, tc.want)
		}
	}
	// Empty fields match nothing (an empty string is in every line).
	if (Roots{}).mine("+ links: anything") {
		t.Error("empty Roots claims a line")
	}
}
