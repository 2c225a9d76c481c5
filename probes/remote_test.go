package probes

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peapod/peapod/runtime/spec"
)

func TestWireRoundTrip(t *testing.T) {
	def := RemoteProbe{Kind: RemoteHTTP, Timeout: 1500 * time.Millisecond, Port: 8080, HTTP: spec.HTTPGet{
		Scheme: "HTTPS", Host: "", Path: "/a\tb\\c\nd?x=1",
		Headers: []spec.HTTPHeader{{Name: "X-A", Value: "1\t2"}, {Name: "Accept", Value: ""}, {Name: "X-A", Value: `\n`}},
	}}
	line := appendDefine(nil, 7, &def)
	if strings.Count(string(line), "\n") != 1 || line[len(line)-1] != '\n' {
		t.Fatalf("definition is not one line: %q", line)
	}
	req, err := ParseRequest(line[:len(line)-1])
	if err != nil || req.Handle != 7 || req.Define == nil || fmt.Sprint(*req.Define) != fmt.Sprint(def) {
		t.Fatalf("ParseRequest = %+v %v, want %+v", req.Define, err, def)
	}
	g := RemoteProbe{Kind: RemoteGRPC, Timeout: time.Second, Port: 9090, Service: "svc"}
	line = appendDefine(nil, 8, &g)
	if req, err := ParseRequest(line[:len(line)-1]); err != nil || fmt.Sprint(*req.Define) != fmt.Sprint(g) {
		t.Fatalf("grpc ParseRequest = %+v %v", req, err)
	}
	line = appendProbe(nil, 42, 7, "10.0.0.5")
	if req, err := ParseRequest(line[:len(line)-1]); err != nil || req.Define != nil || req.ID != 42 || req.Handle != 7 || req.PodIP != "10.0.0.5" {
		t.Fatalf("probe ParseRequest = %+v %v", req, err)
	}
	body := "Probe terminated redirects, Response body: a\tb\nc\\\x00\xff"
	line = AppendResponse(nil, 42, OutcomeWarning, body, nil)
	if res, err := parseResponse(line[:len(line)-1]); err != nil || res.id != 42 || res.out != OutcomeWarning || res.msg != body || res.err != nil {
		t.Fatalf("parseResponse = %+v %v", res, err)
	}
	line = AppendResponse(nil, 43, OutcomeFailure, "", errors.New("failed to read\nbody"))
	if res, err := parseResponse(line[:len(line)-1]); err != nil || res.err == nil || res.err.Error() != "failed to read\nbody" || res.out != OutcomeFailure {
		t.Fatalf("parseResponse = %+v %v", res, err)
	}
	for _, bad := range []string{"", "X\t1\t2", "P\t1\t2", "P\tx\t2\t10.0.0.1", "D\t1\thttp\t5", "D\t1\tgrpc\t5\t80", "D\t1\tftp\t5\t80\tx"} {
		if _, err := ParseRequest([]byte(bad)); !errors.Is(err, ErrBadRequest) {
			t.Errorf("ParseRequest(%q) = %v, want ErrBadRequest", bad, err)
		}
	}
}

// fakeProber is an in-process prober: answer runs per probe request, in
// its own goroutine, so answers may come out of order.
type fakeProber struct {
	// answer returns the response to a probe (ok false: never answer).
	answer func(def *RemoteProbe, req Request) (out Outcome, msg string, err error, ok bool)
	mu     sync.Mutex
	// starts counts processes; defines counts definitions per process.
	starts  int
	defines []int
	// kill closes the current process's pipes (its death).
	kill func()
}

func (f *fakeProber) start() (io.WriteCloser, io.ReadCloser, error) {
	reqR, reqW := io.Pipe()
	resR, resW := io.Pipe()
	f.mu.Lock()
	f.starts++
	f.defines = append(f.defines, 0)
	n := len(f.defines) - 1
	f.kill = func() { reqR.Close(); resW.Close() }
	f.mu.Unlock()
	go f.serve(n, reqR, resW)
	return reqW, resR, nil
}

func (f *fakeProber) serve(n int, in io.Reader, out io.Writer) {
	var wmu sync.Mutex
	defs := map[uint64]*RemoteProbe{}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		req, err := ParseRequest(sc.Bytes())
		if err != nil {
			panic(err)
		}
		if req.Define != nil {
			defs[req.Handle] = req.Define
			f.mu.Lock()
			f.defines[n]++
			f.mu.Unlock()
			continue
		}
		def := defs[req.Handle]
		go func() {
			o, msg, err, ok := f.answer(def, req)
			if !ok {
				return
			}
			wmu.Lock()
			defer wmu.Unlock()
			out.Write(AppendResponse(nil, req.ID, o, msg, err))
		}()
	}
}

func (f *fakeProber) counts() (starts int, defines []int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.starts, append([]int(nil), f.defines...)
}

// TestRemoteConcurrentOutOfOrder runs probes of several handlers at once;
// the prober answers them in reverse order, and each gets its own answer.
func TestRemoteConcurrentOutOfOrder(t *testing.T) {
	const n = 8
	arrived := make(chan struct{}, n)
	release := make(chan struct{})
	f := &fakeProber{answer: func(def *RemoteProbe, req Request) (Outcome, string, error, bool) {
		arrived <- struct{}{}
		<-release
		return OutcomeFailure, fmt.Sprintf("%s %d %s", def.HTTP.Path, def.Port, req.PodIP), nil, true
	}}
	r := NewRemoteProber(f.start)
	defer r.Close()
	var wg sync.WaitGroup
	got := make([]string, n)
	hs := make([]*RemoteHandler, n)
	for i := range n {
		hs[i] = r.Handler(RemoteProbe{Kind: RemoteHTTP, Timeout: time.Second, Port: 1000 + i, HTTP: spec.HTTPGet{Path: fmt.Sprintf("/p%d", i)}})
	}
	for round := range 2 {
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, msg, err := hs[i].Probe(context.Background(), "10.0.0.9")
				if out != OutcomeFailure || err != nil {
					t.Errorf("handler %d: %v %q %v", i, out, msg, err)
				}
				got[i] = msg
			}()
		}
		for range n {
			<-arrived
		}
		for range n {
			release <- struct{}{}
		}
		wg.Wait()
		for i := range n {
			if want := fmt.Sprintf("/p%d %d 10.0.0.9", i, 1000+i); got[i] != want {
				t.Errorf("round %d handler %d got %q, want %q", round, i, got[i], want)
			}
		}
	}
	if starts, defines := f.counts(); starts != 1 || defines[0] != n {
		t.Fatalf("%d starts, definitions %v; want 1 process and each probe defined once", starts, defines)
	}
}

// TestRemoteEvents checks the kubelet's event texts for answers that come
// through the prober (checklist 16 and 17 on the supervisor side).
func TestRemoteEvents(t *testing.T) {
	f := &fakeProber{answer: func(def *RemoteProbe, _ Request) (Outcome, string, error, bool) {
		switch def.HTTP.Path {
		case "/503":
			return OutcomeFailure, "HTTP probe failed with statuscode: 503", nil, true
		case "/elsewhere":
			return OutcomeWarning, "Probe terminated redirects, Response body: moved", nil, true
		}
		return OutcomeFailure, "", errors.New("failed to read probe response body"), true
	}}
	r := NewRemoteProber(f.start)
	defer r.Close()
	cases := []struct {
		path string
		typ  ProbeType
		res  Result
		err  bool
		ev   string
	}{
		{"/503", Readiness, Failure, false, "Readiness probe failed: HTTP probe failed with statuscode: 503"},
		{"/elsewhere", Liveness, Success, false, "Liveness probe warning: Probe terminated redirects, Response body: moved"},
		{"/broken", Startup, Failure, true, "Startup probe errored and resulted in failure state: failed to read probe response body"},
	}
	for _, tc := range cases {
		rec := &recorder{}
		h := r.Handler(RemoteProbe{Kind: RemoteHTTP, Timeout: time.Second, Port: 80, HTTP: spec.HTTPGet{Path: tc.path}})
		res, err := runProbe(context.Background(), tc.typ, "c", h, "10.0.0.1", rec)
		evs := rec.all()
		if res != tc.res || (err != nil) != tc.err || len(evs) != 1 || evs[0].Message != tc.ev {
			t.Errorf("%s: result %v err %v events %+v, want %v %q", tc.path, res, err, evs, tc.res, tc.ev)
		}
	}
}

// TestRemoteProberDeath kills the prober with a probe in flight: that probe
// is an error (state unchanged), the next one within the backoff too, and
// after the backoff a new process is started and the probe defined again.
func TestRemoteProberDeath(t *testing.T) {
	arrived := make(chan struct{}, 1)
	f := &fakeProber{}
	f.answer = func(*RemoteProbe, Request) (Outcome, string, error, bool) {
		f.mu.Lock()
		dying := f.starts == 1
		f.mu.Unlock()
		if dying {
			arrived <- struct{}{}
			return 0, "", nil, false
		}
		return OutcomeSuccess, "", nil, true
	}
	fc := NewFakeClock(t0)
	r := NewRemoteProber(f.start)
	r.now = fc.Now
	defer r.Close()
	h := r.Handler(RemoteProbe{Kind: RemoteHTTP, Timeout: time.Second, Port: 80})
	done := make(chan error, 1)
	go func() {
		out, _, err := h.Probe(context.Background(), "10.0.0.1")
		if out != OutcomeUnknown {
			err = fmt.Errorf("outcome %v with %w", out, err)
		}
		done <- err
	}()
	<-arrived
	f.kill()
	if err := <-done; !errors.Is(err, ErrProberDown) {
		t.Fatalf("in-flight probe of a dead prober: %v, want ErrProberDown", err)
	}
	rec := &recorder{}
	if res, err := runProbe(context.Background(), Readiness, "c", h, "10.0.0.1", rec); !errors.Is(err, ErrProberDown) || res != Failure {
		t.Fatalf("probe within the backoff: %v %v", res, err)
	}
	if evs := rec.all(); len(evs) != 1 || !strings.HasPrefix(evs[0].Message, "Readiness probe errored and resulted in unknown state: prober not available: restarting in") {
		t.Fatalf("events %+v", evs)
	}
	fc.Step(proberBackoffMin)
	if out, msg, err := h.Probe(context.Background(), "10.0.0.1"); out != OutcomeSuccess || err != nil {
		t.Fatalf("probe after the backoff: %v %q %v", out, msg, err)
	}
	if starts, defines := f.counts(); starts != 2 || defines[1] != 1 {
		t.Fatalf("%d starts, definitions %v; want a restart that defines the probe again", starts, defines)
	}
}

// TestRemoteNoAnswer: a prober that does not answer within the timeout
// plus the slack is wedged. The probe is an error for HTTP and the
// kubelet's timeout failure for gRPC, and the process is replaced; its
// late answer is dropped.
func TestRemoteNoAnswer(t *testing.T) {
	late := make(chan func(), 4)
	f := &fakeProber{answer: func(*RemoteProbe, Request) (Outcome, string, error, bool) {
		release := make(chan struct{})
		late <- func() { close(release) }
		<-release
		return OutcomeSuccess, "late", nil, true
	}}
	fc := NewFakeClock(t0)
	r := NewRemoteProber(f.start)
	r.now = fc.Now
	r.slack = 10 * time.Millisecond
	defer r.Close()
	hh := r.Handler(RemoteProbe{Kind: RemoteHTTP, Timeout: 10 * time.Millisecond, Port: 80})
	if out, _, err := hh.Probe(context.Background(), "10.0.0.1"); out != OutcomeUnknown || !errors.Is(err, ErrProberDown) {
		t.Fatalf("http without answer: %v %v", out, err)
	}
	(<-late)()
	fc.Step(proberBackoffMin)
	gh := r.Handler(RemoteProbe{Kind: RemoteGRPC, Timeout: 10 * time.Millisecond, Port: 80})
	out, msg, err := gh.Probe(context.Background(), "10.0.0.1")
	if out != OutcomeFailure || err != nil || msg != "timeout: health rpc did not complete within 10ms" {
		t.Fatalf("grpc without answer: %v %q %v", out, msg, err)
	}
	(<-late)()
	if starts, _ := f.counts(); starts != 2 {
		t.Fatalf("%d starts, want a new process after the silent one", starts)
	}
	fc.Step(2 * proberBackoffMin)
	// Only the cancellation may end this probe: its timeout is out of
	// reach, and the answer comes once Probe returned (given earlier, it
	// would race the cancellation in Probe's select).
	ch := r.Handler(RemoteProbe{Kind: RemoteHTTP, Timeout: time.Hour, Port: 80})
	ctx, cancel := context.WithCancel(context.Background())
	probed := make(chan struct{})
	go func() { release := <-late; cancel(); <-probed; release() }()
	_, _, err = ch.Probe(ctx, "10.0.0.1")
	close(probed)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled probe: %v", err)
	}
	if starts, _ := f.counts(); starts != 3 {
		t.Fatalf("%d starts, want 3", starts)
	}
}

func TestRemoteClosed(t *testing.T) {
	f := &fakeProber{answer: func(*RemoteProbe, Request) (Outcome, string, error, bool) { return OutcomeSuccess, "", nil, true }}
	r := NewRemoteProber(f.start)
	h := r.Handler(RemoteProbe{Kind: RemoteHTTP, Timeout: time.Second, Port: 80})
	if out, _, err := h.Probe(context.Background(), "10.0.0.1"); out != OutcomeSuccess || err != nil {
		t.Fatalf("probe: %v %v", out, err)
	}
	r.Close()
	r.Close()
	if _, _, err := h.Probe(context.Background(), "10.0.0.1"); !errors.Is(err, ErrProberDown) {
		t.Fatalf("probe after Close: %v", err)
	}
	if starts, _ := f.counts(); starts != 1 {
		t.Fatalf("%d starts after Close, want no restart", starts)
	}
}

// TestNoProberIsAnError: without a prober, HTTPS and gRPC probes are
// errors; plain HTTP runs in the supervisor and needs none.
func TestNoProberIsAnError(t *testing.T) {
	d := handlerDeps{pod: testPod()}
	c := &spec.Container{Name: "c"}
	for _, p := range []*spec.Probe{{HTTPGet: &spec.HTTPGet{Port: "80", Scheme: "HTTPS"}}, {GRPC: &spec.GRPC{Port: 9090}}} {
		if _, _, err := d.newHandler(p, c).Probe(context.Background(), "10.0.0.1"); err == nil {
			t.Errorf("%+v: no error without a prober", p)
		}
	}
	for _, scheme := range []string{"", "HTTP"} {
		p := &spec.Probe{HTTPGet: &spec.HTTPGet{Port: "80", Scheme: scheme}}
		if h, ok := d.newHandler(p, c).(*PlainHTTPHandler); !ok || h.fallback != nil {
			t.Errorf("scheme %q: handler %T, want an in-process *PlainHTTPHandler without fallback", scheme, h)
		}
	}
	d.remote = NewRemoteProber(func() (io.WriteCloser, io.ReadCloser, error) { return nil, nil, errors.New("not started") })
	p := &spec.Probe{HTTPGet: &spec.HTTPGet{Port: "80"}}
	if h, ok := d.newHandler(p, c).(*PlainHTTPHandler); !ok || h.fallback == nil {
		t.Errorf("with a prober: handler %T, want *PlainHTTPHandler with the prober as fallback", h)
	}
}
