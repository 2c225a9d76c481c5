package manifest

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestHostname: the kubelet's hostname rules for names the API server
// accepts: dots kept, a name over 63 characters cut to 63 with trailing '-'
// and '.' trimmed, spec.hostname first.
func TestHostname(t *testing.T) {
	long := strings.Repeat("a", 61) + ".-b" + strings.Repeat("c", 40) // cut at 63 ends in ".-"
	tests := []struct {
		name, hostname, want string
	}{
		{"web", "", "web"},
		{"web.v1.example", "", "web.v1.example"},
		{strings.Repeat("a", 63), "", strings.Repeat("a", 63)},
		{strings.Repeat("a", 64), "", strings.Repeat("a", 63)},
		{long, "", strings.Repeat("a", 61)},
		{name253, "", strings.Repeat("a", 61) + "b"},
		{name253, "front", "front"},
	}
	for _, tt := range tests {
		pod := &corev1.Pod{}
		pod.Name, pod.Spec.Hostname = tt.name, tt.hostname
		if got := Hostname(pod); got != tt.want {
			t.Errorf("Hostname(name %q, hostname %q) = %q, want %q", tt.name, tt.hostname, got, tt.want)
		}
	}
}

// TestLongDottedNameSpec: a pod with a 253-character dotted name passes
// Load and becomes a spec whose hostname, HOSTNAME and /etc/hosts entry are
// the kubelet's truncated name, and whose paths do not contain the name.
func TestLongDottedNameSpec(t *testing.T) {
	pods, _, err := Load([]byte(strings.ReplaceAll(minimalPod, "%s", name253)), "long.yaml")
	if err != nil {
		t.Fatalf("Load() of a pod named with 253 characters: %v", err)
	}
	pod := pods[0]
	pod.Spec.Containers[0].Image = "busybox:1.36" // in testImages
	want := strings.Repeat("a", 61) + "b"
	out, _, err := ToSpec(pod, testInput())
	if err != nil {
		t.Fatalf("ToSpec() error = %v", err)
	}
	if out.Hostname != want || out.Name != name253 {
		t.Errorf("spec hostname %q name %q, want hostname %q and the whole name", out.Hostname, out.Name, want)
	}
	c := out.Containers[0]
	if !containsString(c.OCI.Process.Env, "HOSTNAME="+want) {
		t.Errorf("container env %q has no HOSTNAME=%s", c.OCI.Process.Env, want)
	}
	for _, p := range []string{c.OCI.Root.Path, c.Rootfs.Upper, c.Rootfs.Work, c.LogPath, c.Cgroup} {
		if strings.Contains(p, "aaaa") {
			t.Errorf("path %q is built from the pod name", p)
		}
	}
	hostname, hosts, _, err := etcFiles(pod, "10.88.0.5", hostFiles{})
	if err != nil {
		t.Fatal(err)
	}
	if string(hostname) != want+"\n" || !strings.Contains(string(hosts), "10.88.0.5\t"+want+"\n") {
		t.Errorf("/etc/hostname %q, /etc/hosts %q: want the truncated name %q", hostname, hosts, want)
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
