package cri_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/peapod/peapod/internal/testutil"
)

// crictlEvent is what `crictl events` prints of an event (protojson).
type crictlEvent struct {
	ContainerID        string `json:"containerId"`
	ContainerEventType string `json:"containerEventType"`
	PodSandboxStatus   *struct {
		ID string `json:"id"`
	} `json:"podSandboxStatus"`
	ContainersStatuses []struct {
		ID       string `json:"id"`
		State    string `json:"state"`
		ExitCode int    `json:"exitCode"`
	} `json:"containersStatuses"`
}

// awaitInotifyWatch waits until process pid holds an inotify instance
// with a watch: the daemon makes its watch when the first client of
// GetContainerEvents subscribes (and drops it with the last), and crictl
// prints nothing that says it subscribed. /proc is polled: no event says
// when another process made a watch.
func awaitInotifyWatch(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(eventTimeout)
	for {
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, e := range ents {
			link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
			if link != "anon_inode:inotify" {
				continue
			}
			info, _ := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, e.Name()))
			if strings.Contains(string(info), "inotify wd:") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("peapod cri (pid %d) made no inotify watch in %v", pid, eventTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCrictlEvents: `crictl events` against the real daemon sees a
// sandbox run, a container created and started that exits by itself
// (exit code 3 in the statuses), its removal and the sandbox's, in order;
// when the daemon stops (SIGTERM), crictl's stream ends cleanly (exit 0)
// and the daemon exits; nothing is left.
func TestCrictlEvents(t *testing.T) {
	d := startDaemon(t)
	d.run("peapod", "image", "import", busyboxTar, "--name", "busybox:latest")
	dir := t.TempDir()
	sbCfg := writeJSON(t, dir, "sandbox.json", `{"metadata": {"name": "ev", "namespace": "default", "attempt": 0, "uid": "uid-ev"}, "linux": {}}`)
	ctrCfg := writeJSON(t, dir, "ctr.json", `{"metadata": {"name": "exits"}, "image": {"image": "busybox:latest"}, "command": ["sh", "-c", "exit 3"], "linux": {}}`)
	warm := strings.TrimSpace(d.run("crictl", "runp", sbCfg))
	d.run("crictl", "rmp", "-f", warm)
	before := testutil.TakeSnapshot(t, d.roots())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := d.crictlCmd(ctx, "events")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testutil.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("crictl events: %v", err)
	}
	exited := make(chan error, 1)
	events := make(chan crictlEvent, 100)
	go func() {
		dec := json.NewDecoder(bufio.NewReader(out))
		for {
			var ev crictlEvent
			if err := dec.Decode(&ev); err != nil {
				close(events)
				exited <- cmd.Wait()
				return
			}
			events <- ev
		}
	}()
	awaitInotifyWatch(t, d.cmd.Process.Pid)

	pod := strings.TrimSpace(d.run("crictl", "runp", sbCfg))
	// A failed test leaves nothing (the daemon still runs then).
	t.Cleanup(func() { _, _ = d.try("rmp", "-f", pod) })
	id := strings.TrimSpace(d.run("crictl", "create", pod, ctrCfg, sbCfg))
	d.run("crictl", "start", id)
	next := func(id string) crictlEvent {
		t.Helper()
		timeout := time.After(eventTimeout)
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatalf("crictl events ended while waiting for an event of %s: %v\n%s", id, <-exited, stderr.String())
				}
				if ev.ContainerID == id {
					return ev
				}
			case <-timeout:
				t.Fatalf("crictl events printed no event of %s in %v", id, eventTimeout)
			}
		}
	}
	expect := func(id string, types ...string) []crictlEvent {
		t.Helper()
		var got []crictlEvent
		for _, typ := range types {
			ev := next(id)
			if ev.ContainerEventType != typ {
				t.Fatalf("event of %s: %s, want %s", id, ev.ContainerEventType, typ)
			}
			got = append(got, ev)
		}
		return got
	}
	expect(pod, "CONTAINER_CREATED_EVENT", "CONTAINER_STARTED_EVENT")
	evs := expect(id, "CONTAINER_CREATED_EVENT", "CONTAINER_STARTED_EVENT", "CONTAINER_STOPPED_EVENT")
	found := false
	for _, st := range evs[2].ContainersStatuses {
		if st.ID == id {
			found = true
			if st.State != "CONTAINER_EXITED" || st.ExitCode != 3 {
				t.Errorf("STOPPED event's status of %s: %s with %d, want CONTAINER_EXITED with 3", id, st.State, st.ExitCode)
			}
		}
	}
	if !found || evs[2].PodSandboxStatus == nil || evs[2].PodSandboxStatus.ID != pod {
		t.Errorf("STOPPED event %+v lacks the container's or the sandbox's status", evs[2])
	}
	d.run("crictl", "rm", id)
	expect(id, "CONTAINER_DELETED_EVENT")
	d.run("crictl", "stopp", pod)
	expect(pod, "CONTAINER_STOPPED_EVENT")
	d.run("crictl", "rmp", pod)
	expect(pod, "CONTAINER_DELETED_EVENT")

	// The daemon's stop ends the stream: crictl exits 0, the daemon too.
	daemon := d.cmd
	_ = daemon.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("crictl events after the daemon's stop: %v\n%s", err, stderr.String())
		}
	case <-time.After(eventTimeout):
		t.Errorf("crictl events still runs %v after the daemon's SIGTERM", eventTimeout)
	}
	select {
	case err := <-d.exited:
		if err != nil {
			t.Errorf("peapod cri exited with %v", err)
		}
	case <-time.After(eventTimeout):
		_ = daemon.Process.Kill()
		t.Fatalf("peapod cri did not exit %v after SIGTERM with a client of events", eventTimeout)
	}
	d.cmd = nil // stopped here; the start's cleanup has nothing to stop
	if _, err := os.Stat(filepath.Join(d.sock)); !os.IsNotExist(err) {
		t.Errorf("socket %s left after the daemon exited: %v", d.sock, err)
	}
	testutil.AssertNoLeak(t, before, d.roots())
}
