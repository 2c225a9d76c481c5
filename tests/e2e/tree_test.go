package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestInspectTreeAndNetDot draws a real two-container pod with a host port
// and checks the picture against the kernel: the shared net namespace's
// inode is what /proc/<container pid>/ns/net says, each container's mount
// and pid namespaces are its own with its main process as pid 1 inside,
// the network path names the pod's IP, its host veth and the bridge, and
// the DOT graph holds the pod, its veth, IP and host port.
func TestInspectTreeAndNetDot(t *testing.T) {
	e := newEnv(t)
	port := 21000 + int(e.subnet.Addr().As4()[2])*10
	app := ctr("app", "sleep", "3600")
	app.Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: int32(port), Protocol: corev1.ProtocolTCP}}
	e.runPod(podJSON(newPod("pic", app, ctr("side", "sleep", "3601"))))
	ip := e.ipOf("pic")
	v := e.inspect("pic")
	tree := e.mustRun("inspect", "pic", "--tree")
	netnsName := strings.TrimPrefix(v.Namespaces["network"].Path, "/run/netns/")

	netLink, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", v.container(t, "app").PID))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"pod default/pic  Running",
		"net    " + netLink,
		"/run/netns/" + netnsName,
		"container app  running",
		"container side  running",
		fmt.Sprintf("%d", v.container(t, "side").PID),
		"eth0 " + ip + "/24",
		"port of bridge " + e.bridge,
		e.bridge + " " + e.subnet.Addr().Next().String() + "/24",
		fmt.Sprintf("hostPort tcp 0.0.0.0:%d -> 80", port),
	} {
		if !strings.Contains(tree, want) {
			t.Errorf("tree lacks %q:\n%s", want, tree)
		}
	}
	for _, c := range []string{"app", "side"} {
		pid := v.container(t, c).PID
		mnt, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid))
		if !strings.Contains(tree, "mnt    "+mnt+"  its own") {
			t.Errorf("tree does not show %s's own mount namespace %s:\n%s", c, mnt, tree)
		}
		if !strings.Contains(tree, fmt.Sprintf("%-7d → %-4s sleep", pid, "1")) {
			t.Errorf("tree does not show %s's main process %d as pid 1 inside:\n%s", c, pid, tree)
		}
	}
	dot := e.mustRun("net", "--dot")
	for _, want := range []string{
		`digraph "peapod-` + e.bridge + `"`,
		`label="pod default/pic\nnetns ` + netnsName + `"`,
		`label="eth0\n` + ip + `/24"`,
		fmt.Sprintf(`label="hostPort tcp 0.0.0.0:%d -> 80"`, port),
		"-> br_" + e.bridge + " [dir=both, label=\"port\"]",
	} {
		if !strings.Contains(dot, want) {
			t.Errorf("net --dot lacks %q:\n%s", want, dot)
		}
	}
	if strings.Count(dot, "{") != strings.Count(dot, "}") {
		t.Errorf("unbalanced DOT:\n%s", dot)
	}
	// A pod that does not exist is an error naming it.
	if _, stderr, code := e.run("", "inspect", "nosuch", "--tree"); code == 0 || !strings.Contains(stderr, "nosuch") {
		t.Errorf("inspect nosuch --tree: exit %d, stderr %q", code, stderr)
	}
}
