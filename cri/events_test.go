package cri_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/peapod/peapod/internal/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// eventTimeout bounds the wait for one event (a loaded 2-core VM).
const eventTimeout = 30 * time.Second

// eventStream is one GetContainerEvents client; its events arrive on c,
// which is closed with the stream's end (err).
type eventStream struct {
	c   chan *runtimeapi.ContainerEventResponse
	end chan error
}

// openEvents opens a stream and returns once the server has subscribed it
// (the response headers), so nothing after is missed.
func (e *env) openEvents(ctx context.Context) *eventStream {
	e.t.Helper()
	st, err := e.rt.GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
	if err != nil {
		e.t.Fatalf("GetContainerEvents: %v", err)
	}
	if _, err := st.Header(); err != nil {
		e.t.Fatalf("GetContainerEvents' headers: %v", err)
	}
	s := &eventStream{c: make(chan *runtimeapi.ContainerEventResponse, 1000), end: make(chan error, 1)}
	go func() {
		defer close(s.c)
		for {
			ev, err := st.Recv()
			if err != nil {
				s.end <- err
				return
			}
			s.c <- ev
		}
	}()
	return s
}

// next returns the next event of id, skipping others' (the warm-up's).
func (s *eventStream) next(t *testing.T, id string) *runtimeapi.ContainerEventResponse {
	t.Helper()
	timeout := time.After(eventTimeout)
	for {
		select {
		case ev, ok := <-s.c:
			if !ok {
				t.Fatalf("event stream ended (%v) while waiting for an event of %s", <-s.end, id)
			}
			if ev.ContainerId == id {
				return ev
			}
		case <-timeout:
			t.Fatalf("no event of %s in %v", id, eventTimeout)
		}
	}
}

// expect takes the next events of id and checks their types.
func (s *eventStream) expect(t *testing.T, id string, types ...runtimeapi.ContainerEventType) []*runtimeapi.ContainerEventResponse {
	t.Helper()
	var out []*runtimeapi.ContainerEventResponse
	for _, typ := range types {
		ev := s.next(t, id)
		if ev.ContainerEventType != typ {
			t.Fatalf("event of %s: %s, want %s", id, ev.ContainerEventType, typ)
		}
		if d := time.Since(time.Unix(0, ev.CreatedAt)); d < 0 || d > eventTimeout {
			t.Errorf("event %s of %s: created_at %d is %v from now", typ, id, ev.CreatedAt, d)
		}
		out = append(out, ev)
	}
	return out
}

// statusOf finds a container's status in an event.
func statusOf(ev *runtimeapi.ContainerEventResponse, id string) *runtimeapi.ContainerStatus {
	for _, st := range ev.ContainersStatuses {
		if st.Id == id {
			return st
		}
	}
	return nil
}

// TestContainerEvents: two clients watch while a sandbox runs, a container
// is created and started, exits by itself (only its supervisor sees it:
// no RPC says it), is removed, and the sandbox is removed: each client
// gets CREATED, STARTED, STOPPED (with the exit code in the statuses) and
// DELETED for the container, in order, and the sandbox's own events, with
// the sandbox's status; a client that goes away leaves the server serving
// the other; nothing is left behind.
func TestContainerEvents(t *testing.T) {
	e := newEnv(t)
	e.importBusybox()
	before := e.snapshot()
	ctxA, cancelA := context.WithCancel(context.Background())
	defer cancelA()
	ctxB, cancelB := context.WithCancel(context.Background())
	defer cancelB()
	a, b := e.openEvents(ctxA), e.openEvents(ctxB)
	// Eight more clients that come and leave at once, concurrently, must
	// not disturb the others.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctxC, cancelC := context.WithCancel(context.Background())
			defer cancelC()
			c, err := e.rt.GetContainerEvents(ctxC, &runtimeapi.GetEventsRequest{})
			if err == nil {
				_, err = c.Header()
			}
			if err != nil {
				t.Errorf("GetContainerEvents: %v", err)
				return
			}
			cancelC()
			if _, err := c.Recv(); status.Code(err) != codes.Canceled {
				t.Errorf("cancelled client's stream ended with %v, want Canceled", err)
			}
		}()
	}
	wg.Wait()

	sbCfg := config("events", 0)
	sb := e.run(sbCfg)
	cfg := ctrConfig("exits", 0)
	cfg.Command = []string{"sh", "-c", "exit 3"}
	id := e.create(sb, cfg, sbCfg)
	if _, err := e.rt.StartContainer(e.ctx(), &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	const (
		created = runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT
		started = runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT
		stopped = runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT
		deleted = runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT
	)
	for name, s := range map[string]*eventStream{"a": a, "b": b} {
		sbEvs := s.expect(t, sb, created, started)
		if st := sbEvs[1].PodSandboxStatus; st == nil || st.Id != sb || st.Metadata.GetName() != "events" {
			t.Errorf("client %s: sandbox STARTED event's sandbox status = %v, want sandbox %s named events", name, st, sb)
		}
		evs := s.expect(t, id, created, started, stopped)
		if st := evs[0].PodSandboxStatus; st == nil || st.Id != sb || st.State != runtimeapi.PodSandboxState_SANDBOX_READY {
			t.Errorf("client %s: CREATED event's sandbox status = %v, want ready sandbox %s", name, st, sb)
		}
		if st := statusOf(evs[0], id); st == nil || st.Metadata.GetName() != "exits" {
			t.Errorf("client %s: CREATED event's statuses %v lack container %s", name, evs[0].ContainersStatuses, id)
		}
		st := statusOf(evs[2], id)
		if st == nil || st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 3 || st.FinishedAt == 0 {
			t.Errorf("client %s: STOPPED event's status of %s = %v, want EXITED with exit code 3 and a finish time", name, id, st)
		} else {
			t.Logf("client %s: STOPPED sent %v after the exit", name, time.Duration(evs[2].CreatedAt-st.FinishedAt))
		}
	}
	if _, err := e.rt.RemoveContainer(e.ctx(), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("RemoveContainer: %v", err)
	}
	for name, s := range map[string]*eventStream{"a": a, "b": b} {
		ev := s.expect(t, id, deleted)[0]
		if statusOf(ev, id) != nil {
			t.Errorf("client %s: DELETED event still has the status of %s", name, id)
		}
		if st := ev.PodSandboxStatus; st == nil || st.Id != sb {
			t.Errorf("client %s: DELETED event's sandbox status = %v, want sandbox %s", name, st, sb)
		}
	}
	e.remove(sb)
	for name, s := range map[string]*eventStream{"a": a, "b": b} {
		// The kubelet ignores an event without the sandbox's status and
		// metadata: a removed sandbox's is its last, not ready.
		ev := s.expect(t, sb, stopped, deleted)[1]
		if st := ev.PodSandboxStatus; st == nil || st.Id != sb || st.Metadata.GetUid() != "uid-events" || st.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
			t.Errorf("client %s: removed sandbox's DELETED event's status = %v, want sandbox %s of uid-events, not ready", name, st, sb)
		}
	}
	cancelA()
	cancelB()
	for name, s := range map[string]*eventStream{"a": a, "b": b} {
		select {
		case err := <-s.end:
			if status.Code(err) != codes.Canceled && !errors.Is(err, io.EOF) {
				t.Errorf("client %s's stream ended with %v, want Canceled", name, err)
			}
		case <-time.After(eventTimeout):
			t.Errorf("client %s's stream did not end after its cancel", name)
		}
	}
	// The watch lives while a client listens: with the last gone, the
	// server (this process) holds no inotify instance.
	awaitNoInotify(t, os.Getpid())
	testutil.AssertNoLeak(t, before, e.roots())
}

// awaitNoInotify waits until process pid holds no inotify instance (the
// server drops its watch after the stream's end, which the client cannot
// see: /proc is polled).
func awaitNoInotify(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(eventTimeout)
	for {
		held := 0
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, e := range ents {
			if link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); link == "anon_inode:inotify" {
				held++
			}
		}
		if held == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still holds %d inotify instances %v after its last events client left", pid, held, eventTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
