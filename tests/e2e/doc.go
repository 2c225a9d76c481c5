// Package e2e holds peapod's end-to-end tests: they build the peapod and
// peapod-supervisor binaries once, then drive the CLI as a user would, each
// test in its own --root/--run-root pair with its own bridge and subnet, and
// check what the kernel shows (namespaces, processes, mounts, cgroups) and
// that nothing is left behind. They need root; see issue 2, "Tests that
// must exist", for the list they implement.
package e2e
