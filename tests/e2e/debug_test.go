package e2e

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestDebugTracesKernelOperations runs the README's two-container example
// with --debug and checks that the kernel operations a learner wants to
// see are there, from each of the three processes that perform them: the
// CLI (sandbox unshare and pins, bridge, veth, addresses), the supervisor
// (setns into the pod, the clone of the init stage, cgroup joins) and the
// init stage inside the container (overlay mount, pivot_root).
//
// The CLI's stderr is a pipe here (cmd.Stderr is a buffer), and `run`
// returns only once every holder of that pipe closed it: a supervisor,
// init stage or workload that kept the debug descriptor would make the
// run time out, so the run returning also proves none leaks into a container.
func TestDebugTracesKernelOperations(t *testing.T) {
	manifest, err := os.ReadFile("../../examples/two-containers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	_, stderr, code := e.run(string(manifest), "--debug", "run", "-d", "-f", "-")
	if code != 0 {
		t.Fatalf("peapod --debug run: exit code %d\nstderr: %s", code, stderr)
	}
	for _, want := range [][]string{
		{"msg=unshare", "proc=peapod ", "CLONE_NEWNET|CLONE_NEWUTS|CLONE_NEWIPC"},
		{"msg=mount", "proc=peapod ", "target=/run/netns/peapod-", "flags=MS_BIND"},
		{`msg="netlink link add"`, `object="bridge ` + e.bridge},
		{`msg="netlink link add"`, `object="veth pp`, "peer eth0", "master " + e.bridge},
		{`msg="netlink addr add"`, "dev eth0 (pod netns)"},
		{`msg="nft create table"`, "antispoof"},
		{"msg=setns", "proc=peapod-supervisor", "type=CLONE_NEWNET", "path=/run/netns/peapod-"},
		{"msg=clone", "proc=peapod-supervisor", "flags=CLONE_NEWNS|CLONE_NEWPID", "init"},
		{`msg="cgroup write"`, "proc=peapod-supervisor", "cgroup.procs"},
		{"msg=mount", "proc=peapod-init", "type=overlay", "rootfs/app"},
		{"msg=mount", "proc=peapod-init", "type=overlay", "rootfs/sidecar"},
		{"msg=mount", "proc=peapod-init", "type=proc"},
		{"msg=pivot_root", "proc=peapod-init", "new_root=" + e.runRoot, "rootfs/app"},
		{"msg=pivot_root", "proc=peapod-init", "rootfs/sidecar"},
	} {
		if !hasLineWithAll(stderr, want) {
			t.Errorf("--debug output has no line with all of %q\nstderr:\n%s", want, stderr)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if strings.HasPrefix(line, "time=") && !strings.Contains(line, " duration=") {
			t.Errorf("debug line without a duration: %s", line)
		}
	}
	// Without --debug nothing of it appears.
	e.mustRun("rm", "-f", "web")
	_, stderr, code = e.run(string(manifest), "run", "-d", "-f", "-")
	if code != 0 || strings.Contains(stderr, "level=DEBUG") {
		t.Fatalf("run without --debug: exit code %d, stderr:\n%s", code, stderr)
	}
}

// TestDebugJSON checks --log-format json: every line of stderr that is not
// a warning is one JSON object with the operation and its duration.
func TestDebugJSON(t *testing.T) {
	e := newEnv(t)
	_, stderr, code := e.run(onePod("dbg"), "--debug", "--log-format", "json", "run", "-d", "-f", "-")
	if code != 0 {
		t.Fatalf("peapod --debug run: exit code %d\nstderr: %s", code, stderr)
	}
	ops := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if strings.HasPrefix(line, "Warning:") {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not a JSON line: %q: %v", line, err)
		}
		if _, ok := rec["duration"]; !ok {
			t.Errorf("line without duration: %s", line)
		}
		ops[rec["proc"].(string)+" "+rec["msg"].(string)] = true
	}
	for _, want := range []string{"peapod unshare", "peapod-supervisor setns", "peapod-supervisor clone", "peapod-init mount", "peapod-init pivot_root"} {
		if !ops[want] {
			t.Errorf("no %q line; got %v", want, ops)
		}
	}
	if _, stderr, code := e.run("", "--debug", "--log-format", "yaml", "ps"); code == 0 || !strings.Contains(stderr, `invalid --log-format "yaml"`) {
		t.Errorf("--log-format yaml: exit code %d, stderr %q; want an error naming the flag", code, stderr)
	}
}

// onePod is a one-container busybox pod that sleeps.
func onePod(name string) string {
	return `apiVersion: v1
kind: Pod
metadata:
  name: ` + name + `
spec:
  containers:
  - name: main
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
`
}

// hasLineWithAll reports whether one line of out contains every string of want.
func hasLineWithAll(out string, want []string) bool {
	for _, line := range strings.Split(out, "\n") {
		ok := true
		for _, w := range want {
			if !strings.Contains(line, w) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}
