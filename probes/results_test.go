package probes

import (
	"context"
	"net"
	"testing"
	"time"
)

func TestResultsPublishOnlyOnChange(t *testing.T) {
	ch := make(chan Update, 10)
	r := NewResults(Readiness, ch)
	r.Set("id", "c", Failure)
	r.Set("id", "c", Failure)
	r.Set("id", "c", Success)
	r.Remove("id")
	r.Set("id", "c", Success) // new entry after Remove: published again
	close(ch)
	var got []Result
	for u := range ch {
		if u.Type != Readiness || u.Container != "c" || u.ContainerID != "id" {
			t.Fatalf("update %+v", u)
		}
		got = append(got, u.Result)
	}
	if len(got) != 3 || got[0] != Failure || got[1] != Success || got[2] != Success {
		t.Fatalf("published %v, want [Failure Success Success]", got)
	}
	if Unknown.String() != "UNKNOWN" || Success.String() != "Success" || Failure.String() != "Failure" || int(Unknown) != -1 {
		t.Fatal("Result values or names differ from the kubelet's")
	}
}

func TestContainersReadyUnknown(t *testing.T) {
	cr, _ := PodConditions(PodRunning, []ContainerReadiness{{Name: "a"}, {Name: "b", Known: true}}, nil)
	if want := "containers with unknown status: [a], containers with unready status: [b]"; cr.Message != want {
		t.Fatalf("message %q, want %q", cr.Message, want)
	}
	if cr, _ := PodConditions(PodSucceeded, []ContainerReadiness{{Name: "a", Known: true}}, nil); cr.Reason != ReasonPodCompleted {
		t.Fatalf("succeeded pod: %+v", cr)
	}
	if cr, _ := PodConditions(PodRunning, nil, nil); cr.Reason != ReasonUnknownContainerStatuses {
		t.Fatalf("no statuses: %+v", cr)
	}
}

// BenchmarkTCPProbe measures one TCP probe against a loopback listener.
func BenchmarkTCPProbe(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	h := NewTCPHandler("", ln.Addr().(*net.TCPAddr).Port, time.Second)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if out, msg, err := h.Probe(ctx, "127.0.0.1"); out != OutcomeSuccess || err != nil {
			b.Fatalf("%v %q %v", out, msg, err)
		}
	}
}
