package cri

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fakeSource counts the starts and stops of the hub's source.
type fakeSource struct {
	mu           sync.Mutex
	starts, stop int
	gens         []uint64
	fail         error
}

func (f *fakeSource) start(gen uint64) (func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	f.starts++
	f.gens = append(f.gens, gen)
	return func() {
		f.mu.Lock()
		f.stop++
		f.mu.Unlock()
	}, nil
}

func (f *fakeSource) counts() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.starts, f.stop
}

func ev(i int) *runtimeapi.ContainerEventResponse {
	return &runtimeapi.ContainerEventResponse{ContainerId: fmt.Sprint(i)}
}

// TestEventHubFanOut: every subscriber gets every event in order, while
// others subscribe and leave concurrently; the source runs once while
// anyone listens and stops with the last subscriber.
func TestEventHubFanOut(t *testing.T) {
	var h eventHub
	src := &fakeSource{}
	const subs, events = 8, 200
	var ready, wg sync.WaitGroup
	got := make([][]string, subs)
	start := make(chan struct{})
	var gen uint64
	// anchor listens throughout, so the churn below never finds the hub
	// idle (which would restart the source).
	anchor, err := h.subscribe(src.start)
	if err != nil {
		t.Fatal(err)
	}
	for i := range subs {
		sub, err := h.subscribe(src.start)
		if err != nil {
			t.Fatal(err)
		}
		ready.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ready.Done()
			for len(got[i]) < events {
				select {
				case e := <-sub.ch:
					got[i] = append(got[i], e.ContainerId)
				case <-sub.done:
					t.Errorf("subscriber %d dropped: %v", i, sub.why)
					return
				}
			}
			h.unsubscribe(sub)
		}()
	}
	gen = src.gens[0]
	// Churn: subscribers that come and go while events flow.
	var churn sync.WaitGroup
	churn.Add(1)
	go func() {
		defer churn.Done()
		<-start
		for range 50 {
			sub, err := h.subscribe(src.start)
			if err != nil {
				t.Error(err)
				return
			}
			h.unsubscribe(sub)
		}
	}()
	ready.Wait()
	close(start)
	for i := range events {
		h.publish(gen, ev(i))
	}
	wg.Wait()
	churn.Wait()
	if len(anchor.ch) != events {
		t.Errorf("anchor holds %d events, want %d", len(anchor.ch), events)
	}
	h.unsubscribe(anchor)
	want := make([]string, events)
	for i := range want {
		want[i] = fmt.Sprint(i)
	}
	for i := range subs {
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("subscriber %d got %d events %v…, want all %d in order", i, len(got[i]), got[i][:min(5, len(got[i]))], events)
		}
	}
	if starts, stops := src.counts(); starts != 1 || stops != 1 {
		t.Errorf("source started %d and stopped %d times, want 1 and 1 (subscribers overlapped)", starts, stops)
	}
	if len(h.subs) != 0 || h.stop != nil {
		t.Errorf("hub keeps %d subscribers, source running %v", len(h.subs), h.stop != nil)
	}
}

// TestEventHubSlowSubscriber: a subscriber that stops reading is dropped
// when its buffer is full, told why; the others get every event.
func TestEventHubSlowSubscriber(t *testing.T) {
	h := eventHub{buffer: 4}
	src := &fakeSource{}
	slow, _ := h.subscribe(src.start)
	fast := []*eventSub{}
	for range 3 {
		s, _ := h.subscribe(src.start)
		fast = append(fast, s)
	}
	gen := src.gens[0]
	for i := range 4 {
		h.publish(gen, ev(i))
	}
	for _, s := range fast {
		for range 4 {
			<-s.ch
		}
	}
	select {
	case <-slow.done:
		t.Fatal("slow subscriber dropped before its buffer was full")
	default:
	}
	h.publish(gen, ev(4)) // the slow one's fifth
	select {
	case <-slow.done:
		if slow.why != errEventsOverflow {
			t.Errorf("slow subscriber dropped with %v, want the overflow", slow.why)
		}
	default:
		t.Fatal("slow subscriber with a full buffer was not dropped")
	}
	for i, s := range fast {
		select {
		case e := <-s.ch:
			if e.ContainerId != "4" {
				t.Errorf("fast subscriber %d got %s, want 4", i, e.ContainerId)
			}
		default:
			t.Errorf("fast subscriber %d did not get the event that dropped the slow one", i)
		}
	}
	h.unsubscribe(slow) // after the drop: nothing happens twice
	for _, s := range fast {
		h.unsubscribe(s)
	}
	if starts, stops := src.counts(); starts != 1 || stops != 1 {
		t.Errorf("source started %d and stopped %d times, want 1 and 1", starts, stops)
	}
}

// TestEventHubGenerations: a source stopped (its last subscriber left)
// cannot reach the subscribers of the next one; a closed hub refuses new
// subscribers and stops its source.
func TestEventHubGenerations(t *testing.T) {
	var h eventHub
	src := &fakeSource{}
	a, _ := h.subscribe(src.start)
	h.unsubscribe(a)
	b, _ := h.subscribe(src.start)
	if len(src.gens) != 2 || src.gens[0] == src.gens[1] {
		t.Fatalf("generations %v, want two different", src.gens)
	}
	h.publish(src.gens[0], ev(1)) // late, from the stopped source
	h.publish(src.gens[1], ev(2))
	if e := <-b.ch; e.ContainerId != "2" {
		t.Errorf("got event %s, want only the current source's 2", e.ContainerId)
	}
	h.close()
	<-b.done
	if b.why != errEventsShutdown {
		t.Errorf("closed hub dropped with %v, want the shutdown", b.why)
	}
	if _, err := h.subscribe(src.start); err != errEventsShutdown {
		t.Errorf("subscribe after close: %v, want the shutdown", err)
	}
	if starts, stops := src.counts(); starts != 2 || stops != 2 {
		t.Errorf("source started %d and stopped %d times, want 2 and 2", starts, stops)
	}
	h.publish(src.gens[1], ev(3)) // after close: nowhere, no panic
	src.fail = fmt.Errorf("no inotify")
	var h2 eventHub
	if _, err := h2.subscribe(src.start); err == nil || len(h2.subs) != 0 {
		t.Errorf("subscribe with a failing source: %v, %d subscribers; want the error and none", err, len(h2.subs))
	}
}

// fakeStream is a GetContainerEvents server stream recording what it
// sends; block makes Send wait (a client that does not read).
type fakeStream struct {
	grpc.ServerStream
	ctx    context.Context
	mu     sync.Mutex
	sent   []string
	header chan struct{}
	block  chan struct{}
}

func newFakeStream(ctx context.Context) *fakeStream {
	return &fakeStream{ctx: ctx, header: make(chan struct{})}
}

func (f *fakeStream) Context() context.Context     { return f.ctx }
func (f *fakeStream) SendHeader(metadata.MD) error { close(f.header); return nil }
func (f *fakeStream) Send(e *runtimeapi.ContainerEventResponse) error {
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	f.sent = append(f.sent, e.ContainerId)
	f.mu.Unlock()
	return nil
}

func (f *fakeStream) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string{}, f.sent...)
}

// serve runs GetContainerEvents on f and returns its result's channel
// once the headers are sent (it has subscribed).
func serve(t *testing.T, s *Server, f *fakeStream) chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.GetContainerEvents(&runtimeapi.GetEventsRequest{}, f) }()
	select {
	case <-f.header:
	case err := <-done:
		t.Fatalf("GetContainerEvents ended before subscribing: %v", err)
	}
	return done
}

func awaitEnd(t *testing.T, done chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("GetContainerEvents did not end")
		return nil
	}
}

// TestGetContainerEventsStreams: the RPC's life with each way a stream
// ends: the client's context (unsubscribed, the source stopped), a client
// that does not read (dropped with ResourceExhausted, never holding up the
// others), and the daemon's shutdown (what was queued is sent, then the
// stream ends without error; later calls are Unavailable).
func TestGetContainerEventsStreams(t *testing.T) {
	src := &fakeSource{}
	s := &Server{}
	s.events.source = src.start
	s.events.buffer = 2

	ctx, cancel := context.WithCancel(context.Background())
	a := newFakeStream(ctx)
	doneA := serve(t, s, a)
	cancel()
	if err := awaitEnd(t, doneA); status.Code(err) != codes.Canceled {
		t.Errorf("cancelled stream ended with %v, want Canceled", err)
	}
	if starts, stops := src.counts(); starts != 1 || stops != 1 {
		t.Errorf("after the only client left: source started %d, stopped %d; want 1, 1", starts, stops)
	}

	slow := newFakeStream(context.Background())
	slow.block = make(chan struct{})
	doneSlow := serve(t, s, slow)
	fast := newFakeStream(context.Background())
	doneFast := serve(t, s, fast)
	gen := src.gens[len(src.gens)-1]
	// The slow one's Send blocks on the first event; 2 more fill its
	// buffer, the fourth overflows it.
	for i := range 4 {
		h := &s.events
		h.publish(gen, ev(i))
		// Wait for the fast one to have sent it: it never lags.
		deadline := time.Now().Add(10 * time.Second)
		for len(fast.got()) < i+1 {
			if time.Now().After(deadline) {
				t.Fatalf("fast client got %v, want %d events", fast.got(), i+1)
			}
			time.Sleep(time.Millisecond)
		}
	}
	close(slow.block)
	if err := awaitEnd(t, doneSlow); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("slow stream ended with %v, want ResourceExhausted", err)
	}
	s.events.publish(gen, ev(4))
	s.StopEvents()
	if err := awaitEnd(t, doneFast); err != nil {
		t.Errorf("stream at shutdown ended with %v, want nil", err)
	}
	if got, want := fast.got(), []string{"0", "1", "2", "3", "4"}; !reflect.DeepEqual(got, want) {
		t.Errorf("fast client got %v, want %v (the last one queued at shutdown)", got, want)
	}
	err := s.GetContainerEvents(&runtimeapi.GetEventsRequest{}, newFakeStream(context.Background()))
	if status.Code(err) != codes.Unavailable {
		t.Errorf("GetContainerEvents after shutdown: %v, want Unavailable", err)
	}
	if starts, stops := src.counts(); starts != 2 || stops != 2 {
		t.Errorf("source started %d, stopped %d; want 2, 2", starts, stops)
	}
}

// TestTransitions: the events between two scans, however many steps a
// scan missed, in the order they happen, and none made up.
func TestTransitions(t *testing.T) {
	const (
		created, started, stopped, deleted = runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT, runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT
	)
	sb := func(life int) objState {
		return objState{sandbox: "s", isSandbox: true, life: life, started: life == lifeRunning}
	}
	c := func(life int, ran bool) objState { return objState{sandbox: "s", life: life, started: ran} }
	tr := func(id string, typ runtimeapi.ContainerEventType) transition {
		return transition{id: id, sandbox: "s", typ: typ}
	}
	for _, tc := range []struct {
		name      string
		prev, cur snapshot
		want      []transition
	}{
		{"nothing", snapshot{}, snapshot{}, nil},
		{"unchanged", snapshot{"s": sb(lifeRunning), "a": c(lifeRunning, true)}, snapshot{"s": sb(lifeRunning), "a": c(lifeRunning, true)}, nil},
		{"sandbox run", snapshot{}, snapshot{"s": sb(lifeRunning)}, []transition{tr("s", created), tr("s", started)}},
		{"sandbox seen while created", snapshot{}, snapshot{"s": sb(lifeCreated)}, []transition{tr("s", created)}},
		{"container created", snapshot{"s": sb(lifeRunning)}, snapshot{"s": sb(lifeRunning), "a": c(lifeCreated, false)},
			[]transition{tr("a", created)}},
		{"container started", snapshot{"s": sb(lifeRunning), "a": c(lifeCreated, false)}, snapshot{"s": sb(lifeRunning), "a": c(lifeRunning, true)},
			[]transition{tr("a", started)}},
		{"container exited", snapshot{"s": sb(lifeRunning), "a": c(lifeRunning, true)}, snapshot{"s": sb(lifeRunning), "a": c(lifeExited, true)},
			[]transition{tr("a", stopped)}},
		{"started and exited between scans", snapshot{"s": sb(lifeRunning), "a": c(lifeCreated, false)}, snapshot{"s": sb(lifeRunning), "a": c(lifeExited, true)},
			[]transition{tr("a", started), tr("a", stopped)}},
		{"start failed", snapshot{"s": sb(lifeRunning), "a": c(lifeCreated, false)}, snapshot{"s": sb(lifeRunning), "a": c(lifeExited, false)},
			[]transition{tr("a", stopped)}},
		{"whole life between scans", snapshot{}, snapshot{"s": sb(lifeRunning), "a": c(lifeExited, true)},
			[]transition{tr("s", created), tr("s", started), tr("a", created), tr("a", started), tr("a", stopped)}},
		{"exited container removed", snapshot{"s": sb(lifeRunning), "a": c(lifeExited, true)}, snapshot{"s": sb(lifeRunning)},
			[]transition{tr("a", deleted)}},
		{"running container removed", snapshot{"s": sb(lifeRunning), "a": c(lifeRunning, true)}, snapshot{"s": sb(lifeRunning)},
			[]transition{tr("a", stopped), tr("a", deleted)}},
		{"created container removed", snapshot{"s": sb(lifeRunning), "a": c(lifeCreated, false)}, snapshot{"s": sb(lifeRunning)},
			[]transition{tr("a", deleted)}},
		{"sandbox stopped", snapshot{"s": sb(lifeRunning), "a": c(lifeRunning, true)}, snapshot{"s": sb(lifeExited), "a": c(lifeExited, true)},
			[]transition{tr("a", stopped), tr("s", stopped)}},
		{"sandbox removed with its containers", snapshot{"s": sb(lifeRunning), "a": c(lifeRunning, true), "b": c(lifeCreated, false)}, snapshot{},
			[]transition{tr("a", stopped), tr("a", deleted), tr("b", deleted), tr("s", stopped), tr("s", deleted)}},
		{"sandbox that never became ready removed", snapshot{"s": sb(lifeCreated)}, snapshot{}, []transition{tr("s", deleted)}},
		{"two sandboxes in id order", snapshot{}, snapshot{"t": {sandbox: "t", isSandbox: true, life: lifeCreated}, "s": sb(lifeCreated)},
			[]transition{tr("s", created), {id: "t", sandbox: "t", typ: created}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := transitions(tc.prev, tc.cur); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("transitions =\n%v\nwant\n%v", got, tc.want)
			}
		})
	}
}

// TestCarryOver: a container whose supervisor is gone keeps its last
// known state (no event), or is created when first seen so; a sandbox
// that is not ready after it was (being removed) has stopped, and stays
// so; what ran keeps having run.
func TestCarryOver(t *testing.T) {
	prev := snapshot{
		"a": {sandbox: "s", life: lifeRunning, started: true},
		"s": {sandbox: "s", isSandbox: true, life: lifeRunning, started: true},
		"t": {sandbox: "t", isSandbox: true, life: lifeExited, started: true},
		"c": {sandbox: "s", life: lifeRunning, started: true},
	}
	cur := snapshot{
		"a": {sandbox: "s", life: lifeUnknown},
		"b": {sandbox: "s", life: lifeUnknown},
		"s": {sandbox: "s", isSandbox: true, life: lifeCreated},
		"t": {sandbox: "t", isSandbox: true, life: lifeRunning, started: true},
		"c": {sandbox: "s", life: lifeExited},
	}
	cur.carryOver(prev)
	want := snapshot{
		"a": prev["a"],
		"b": {sandbox: "s", life: lifeCreated},
		"s": {sandbox: "s", isSandbox: true, life: lifeExited, started: true},
		"t": {sandbox: "t", isSandbox: true, life: lifeExited, started: true},
		"c": {sandbox: "s", life: lifeExited, started: true},
	}
	if !reflect.DeepEqual(cur, want) {
		t.Errorf("carryOver =\n%+v\nwant\n%+v", cur, want)
	}
	const created, stopped = runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT
	wantTrs := []transition{{"b", "s", created}, {"c", "s", stopped}, {"s", "s", stopped}}
	if trs := transitions(prev, cur); !reflect.DeepEqual(trs, wantTrs) {
		t.Errorf("transitions after carryOver = %v, want %v", trs, wantTrs)
	}
}
