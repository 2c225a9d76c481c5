package cgroups

import "testing"

func TestOwnV1Path(t *testing.T) {
	const self = `13:misc:/
12:cpu,cpuacct:/user.slice
11:freezer:/peapod-x/a b
4:name=systemd:/user.slice/session-1.scope
0::/user.slice/session-1.scope
`
	for _, tc := range []struct {
		controller, want string
		ok               bool
	}{
		{"freezer", "/peapod-x/a b", true},
		{"cpuacct", "/user.slice", true},
		{"name=systemd", "/user.slice/session-1.scope", true},
		{"memory", "", false},
		{"", "", false}, // the v2 line's empty controller list is not a v1 hierarchy
	} {
		got, ok := ownV1Path([]byte(self), tc.controller)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ownV1Path(%q) = %q, %v; want %q, %v", tc.controller, got, ok, tc.want, tc.ok)
		}
	}
}
