package cri

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/peapod/peapod/internal/dirwatch"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// GetContainerEvents (the kubelet's evented PLEG) is served from the
// files the supervisors and the CLI code already write: an inotify watch
// on the root's pod directories (internal/dirwatch, as `peapod get -w`)
// wakes a scan of every sandbox and container, and each change of state
// since the previous scan becomes an event. So a container that exits by
// itself, which only its supervisor sees, is an event as soon as the
// supervisor writes its status, with no timer and no RPC. As containerd,
// a sandbox's own events carry its id as the container id.

// eventBuffer is how many events a client may lag behind before it is
// dropped, as containerd drops a subscriber whose queue is full: a slow
// or vanished client must never hold up the scans or the other clients.
const eventBuffer = 1000

// Why a subscriber's stream ended.
var (
	errEventsOverflow = errors.New("the client fell too far behind the container events")
	errEventsShutdown = errors.New("the CRI server is shutting down")
)

// eventSub is one client of the hub.
type eventSub struct {
	ch chan *runtimeapi.ContainerEventResponse
	// done is closed when the hub dropped the subscriber; why says why
	// (written before done is closed).
	done chan struct{}
	why  error
}

// eventHub fans events out to every subscriber without ever blocking on
// one. Its zero value is ready; the source of events (the watch) runs
// while the hub has subscribers, and a generation number keeps a source
// being stopped from publishing to the subscribers of its successor.
type eventHub struct {
	mu     sync.Mutex
	subs   map[*eventSub]struct{}
	closed bool
	// buffer is the per-subscriber buffer (0: eventBuffer).
	buffer int
	// gen is the current source's generation; stop ends it (nil: none).
	gen  uint64
	stop func()
	// source replaces the server's watch (tests' fakes).
	source eventSource
}

// eventSource starts producing events for generation gen (published with
// hub.publish(gen, …)) once it has seen the current state, and returns
// what stops it.
type eventSource func(gen uint64) (stop func(), err error)

// subscribe adds a subscriber, starting the source if it is the first.
func (h *eventHub) subscribe(start eventSource) (*eventSub, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, errEventsShutdown
	}
	if h.stop == nil {
		// Started under the lock: a second subscriber waits until the
		// source has its first view, so neither misses what follows.
		h.gen++
		stop, err := start(h.gen)
		if err != nil {
			return nil, err
		}
		h.stop = stop
	}
	size := h.buffer
	if size <= 0 {
		size = eventBuffer
	}
	sub := &eventSub{ch: make(chan *runtimeapi.ContainerEventResponse, size), done: make(chan struct{})}
	if h.subs == nil {
		h.subs = map[*eventSub]struct{}{}
	}
	h.subs[sub] = struct{}{}
	return sub, nil
}

// unsubscribe removes sub (if the hub did not drop it already).
func (h *eventHub) unsubscribe(sub *eventSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[sub]; ok {
		delete(h.subs, sub)
		h.stopIfIdle()
	}
}

// drop ends sub with why; h.mu is held.
func (h *eventHub) drop(sub *eventSub, why error) {
	delete(h.subs, sub)
	sub.why = why
	close(sub.done)
}

// stopIfIdle stops the source when nobody listens; h.mu is held.
func (h *eventHub) stopIfIdle() {
	if len(h.subs) == 0 && h.stop != nil {
		h.stop()
		h.stop = nil
	}
}

// publish hands ev to every subscriber of generation gen; one whose
// buffer is full is dropped.
func (h *eventHub) publish(gen uint64, ev *runtimeapi.ContainerEventResponse) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if gen != h.gen || h.stop == nil {
		return // a stopped source's late event
	}
	for sub := range h.subs {
		select {
		case sub.ch <- ev:
		default:
			h.drop(sub, errEventsOverflow)
		}
	}
	h.stopIfIdle()
}

// close ends every subscriber's stream and refuses new ones.
func (h *eventHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for sub := range h.subs {
		h.drop(sub, errEventsShutdown)
	}
	h.stopIfIdle()
}

// StopEvents ends every GetContainerEvents stream cleanly (after the
// events already queued for it) and refuses new ones: the daemon calls it
// before a graceful stop, which would otherwise wait for them forever.
func (s *Server) StopEvents() { s.events.close() }

// GetContainerEvents streams the events of every sandbox and container
// from now on. The response headers are sent once the server has its
// first view of the root, so a client that awaits them (grpc's
// ClientStream.Header) misses nothing that happens after.
func (s *Server) GetContainerEvents(req *runtimeapi.GetEventsRequest, stream runtimeapi.RuntimeService_GetContainerEventsServer) error {
	source := s.watchEvents
	if s.events.source != nil {
		source = s.events.source
	}
	sub, err := s.events.subscribe(source)
	if errors.Is(err, errEventsShutdown) {
		return status.Error(codes.Unavailable, err.Error())
	}
	if err != nil {
		return status.Errorf(codes.Internal, "failed to watch the pods for container events: %v", err)
	}
	defer s.events.unsubscribe(sub)
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	ctx := stream.Context()
	for {
		select {
		case ev := <-sub.ch:
			if err := stream.Send(ev); err != nil {
				return err
			}
		case <-sub.done:
			if sub.why != errEventsShutdown {
				return status.Error(codes.ResourceExhausted, sub.why.Error())
			}
			for {
				select {
				case ev := <-sub.ch:
					if err := stream.Send(ev); err != nil {
						return err
					}
				default:
					return nil
				}
			}
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

// watchEvents is the hub's source: a watch on the root's pod directories,
// a first scan, then a scan after each change, publishing the difference.
func (s *Server) watchEvents(gen uint64) (func(), error) {
	w, err := dirwatch.New()
	if err != nil {
		return nil, err
	}
	dirs := s.m.Dirs()
	// Watch first, then scan: a change in between is seen by the next.
	if err := w.WatchRoots(dirs); err != nil {
		w.Close()
		return nil, err
	}
	prev, err := s.eventSnapshot()
	if err != nil {
		w.Close()
		return nil, err
	}
	go func() {
		for {
			if err := w.Wait(); err != nil {
				return // closed by stop (or the watch broke)
			}
			// New pods' directories; one already gone is no error.
			_ = w.WatchRoots(dirs)
			cur, err := s.eventSnapshot()
			if err != nil {
				continue // the next change scans again
			}
			cur.carryOver(prev)
			trs := transitions(prev, cur)
			evs := s.eventsOf(trs, prev)
			prev = cur
			for _, ev := range evs {
				s.events.publish(gen, ev)
			}
		}
	}()
	return func() { w.Close() }, nil
}

// Lifecycle steps of a sandbox or container, in the order they happen.
const (
	lifeAbsent = iota
	lifeCreated
	lifeRunning
	lifeExited
	lifeDeleted
	// lifeUnknown is a container whose supervisor is gone: it keeps the
	// state it had (no event until something is known).
	lifeUnknown
)

// objState is one sandbox or container as a scan saw it.
type objState struct {
	// sandbox is the id of its sandbox (its own for a sandbox).
	sandbox   string
	isSandbox bool
	life      int
	// started says it ran (a container's start time, a sandbox's
	// readiness), so an exit seen without the start still has one.
	started bool
	// md is a sandbox's metadata, for the status of its events once it
	// is gone.
	md *runtimeapi.PodSandboxMetadata
}

// snapshot is a scan: every sandbox and container by id.
type snapshot map[string]objState

// eventSnapshot scans the root.
func (s *Server) eventSnapshot() (snapshot, error) {
	sbs, err := s.list()
	if err != nil {
		return nil, err
	}
	snap := snapshot{}
	for _, sb := range sbs {
		o := objState{sandbox: sb.id(), isSandbox: true, life: lifeCreated, md: sb.cfg.Metadata}
		v := sb.view
		switch {
		case sb.state() == runtimeapi.PodSandboxState_SANDBOX_READY:
			o.life, o.started = lifeRunning, true
		case v.Final || v.Status != nil && v.Status.Stopping:
			o.life = lifeExited
		}
		snap[sb.id()] = o
		for _, c := range s.containersOf(sb) {
			st, _, _, _ := c.criState()
			co := objState{sandbox: sb.id(), started: c.st != nil && !c.st.StartedAt.IsZero()}
			switch st {
			case runtimeapi.ContainerState_CONTAINER_CREATED:
				co.life = lifeCreated
			case runtimeapi.ContainerState_CONTAINER_RUNNING:
				co.life, co.started = lifeRunning, true
			case runtimeapi.ContainerState_CONTAINER_EXITED:
				co.life = lifeExited
			default:
				co.life = lifeUnknown
			}
			snap[c.id()] = co
		}
	}
	return snap, nil
}

// carryOver makes a scan follow from the one before: what is unknown now
// (a container whose supervisor is gone) keeps the state it had, or is
// created when first seen so; what went back in its life (a sandbox being
// removed is not ready, as one being created is) has stopped; and what
// ran once keeps having run.
func (cur snapshot) carryOver(prev snapshot) {
	for id, o := range cur {
		p, had := prev[id]
		switch {
		case o.life == lifeUnknown && had:
			o = p
		case o.life == lifeUnknown:
			o.life = lifeCreated
		case had && o.life < p.life:
			o.life = lifeExited
		}
		o.started = o.started || had && p.started
		cur[id] = o
	}
}

// transition is one event to send: what changed, and of which sandbox.
type transition struct {
	id, sandbox string
	typ         runtimeapi.ContainerEventType
}

// steps are the events that take an object from prev to cur, in order:
// every step passed is an event, even when a scan saw several at once (a
// container that started and exited in between), but a start that never
// happened is not made up, and the removal of a container that was
// created and never run is only its deletion.
func steps(prev, cur objState, hadPrev, hasCur bool) []runtimeapi.ContainerEventType {
	from, to := lifeAbsent, lifeDeleted
	if hadPrev {
		from = prev.life
	}
	if hasCur {
		to = cur.life
	}
	started := prev.started && hadPrev || cur.started && hasCur
	var out []runtimeapi.ContainerEventType
	if from < lifeCreated && to >= lifeCreated {
		out = append(out, runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT)
	}
	if from < lifeRunning && to >= lifeRunning && started {
		out = append(out, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT)
	}
	if from < lifeExited && (to == lifeExited || to == lifeDeleted && started) {
		out = append(out, runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT)
	}
	if hadPrev && to == lifeDeleted {
		out = append(out, runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT)
	}
	return out
}

// transitions lists the events between two scans: sandbox by sandbox (in
// id order), a sandbox's creation and start before its containers' events,
// its stop and deletion after them, as they happen.
func transitions(prev, cur snapshot) []transition {
	type group struct {
		sandbox       string
		sbPre, sbPost []transition
		ctrs          []string
	}
	groups := map[string]*group{}
	ids := map[string]bool{}
	for id := range prev {
		ids[id] = true
	}
	for id := range cur {
		ids[id] = true
	}
	sorted := make([]string, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	sort.Strings(sorted)
	var ctrIDs []string
	for _, id := range sorted {
		p, hadPrev := prev[id]
		c, hasCur := cur[id]
		o := c
		if !hasCur {
			o = p
		}
		g := groups[o.sandbox]
		if g == nil {
			g = &group{sandbox: o.sandbox}
			groups[o.sandbox] = g
		}
		if !o.isSandbox {
			ctrIDs = append(ctrIDs, id)
			continue
		}
		for _, typ := range steps(p, c, hadPrev, hasCur) {
			t := transition{id: id, sandbox: id, typ: typ}
			if typ == runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT || typ == runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT {
				g.sbPre = append(g.sbPre, t)
			} else {
				g.sbPost = append(g.sbPost, t)
			}
		}
	}
	for _, id := range ctrIDs {
		o, ok := cur[id]
		if !ok {
			o = prev[id]
		}
		groups[o.sandbox].ctrs = append(groups[o.sandbox].ctrs, id)
	}
	sbIDs := make([]string, 0, len(groups))
	for id := range groups {
		sbIDs = append(sbIDs, id)
	}
	sort.Strings(sbIDs)
	var out []transition
	for _, sbID := range sbIDs {
		g := groups[sbID]
		out = append(out, g.sbPre...)
		for _, id := range g.ctrs {
			p, hadPrev := prev[id]
			c, hasCur := cur[id]
			for _, typ := range steps(p, c, hadPrev, hasCur) {
				out = append(out, transition{id: id, sandbox: sbID, typ: typ})
			}
		}
		out = append(out, g.sbPost...)
	}
	return out
}

// eventsOf makes the responses of a scan's transitions: each carries the
// status of its sandbox and of the sandbox's containers as they are now
// (as containerd's, whose statuses are read when the event is sent), read
// once per sandbox. A sandbox removed meanwhile is reported not ready with
// the id and metadata the previous scan saw: the kubelet ignores an event
// without a sandbox status.
func (s *Server) eventsOf(trs []transition, prev snapshot) []*runtimeapi.ContainerEventResponse {
	type statuses struct {
		sb   *runtimeapi.PodSandboxStatus
		ctrs []*runtimeapi.ContainerStatus
	}
	ctx := context.Background()
	read := map[string]*statuses{}
	var out []*runtimeapi.ContainerEventResponse
	for _, t := range trs {
		st := read[t.sandbox]
		if st == nil {
			st = &statuses{}
			if r, err := s.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: t.sandbox}); err == nil {
				st.sb = r.Status
			} else if o, ok := prev[t.sandbox]; ok && o.md != nil {
				st.sb = &runtimeapi.PodSandboxStatus{Id: t.sandbox, Metadata: o.md, State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY, RuntimeHandler: RuntimeName}
			}
			if l, err := s.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: t.sandbox}}); err == nil {
				for _, c := range l.Containers {
					if c.PodSandboxId != t.sandbox {
						continue // a longer id with this one as prefix
					}
					if r, err := s.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.Id}); err == nil {
						st.ctrs = append(st.ctrs, r.Status)
					}
				}
			}
			read[t.sandbox] = st
		}
		out = append(out, &runtimeapi.ContainerEventResponse{
			ContainerId: t.id, ContainerEventType: t.typ, CreatedAt: time.Now().UnixNano(),
			PodSandboxStatus: st.sb, ContainersStatuses: st.ctrs,
		})
	}
	return out
}
