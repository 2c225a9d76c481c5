package cri_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/peapod/peapod/cri"
	"github.com/peapod/peapod/internal/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// silentRegistry is a loopback listener that accepts connections and never
// answers on them: a registry too slow for any deadline. It returns its
// host:port; the listener and every connection close with the test.
func silentRegistry(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// TestPullImageDeadline: a pull that the caller's deadline or cancellation
// ends fails with DeadlineExceeded or Canceled, the codes the kubelet and
// critest ("public image should timeout if requested") read, however far
// the pull got; a pull that fails by itself stays Unknown; and nothing is
// stored. Over gRPC with critest's 1 ms timeout the server's answer races
// the client's own timer, so that case runs many times: either side's
// answer must carry the code.
func TestPullImageDeadline(t *testing.T) {
	e := newEnv(t)
	srv := cri.New(e.m, "test")
	silent := silentRegistry(t) + "/app:1"
	// A port nothing listens on: the pull fails at once, by itself.
	refused := testutil.FreeLoopbackAddr(t).String() + "/app:1"

	for _, tc := range []struct {
		name string
		// timeout is the call's deadline from now; canceled cancels the
		// context before the call.
		timeout  time.Duration
		canceled bool
		ref      string
		want     codes.Code
	}{
		{"deadline passed before the call", -time.Second, false, silent, codes.DeadlineExceeded},
		{"canceled before the call", time.Minute, true, silent, codes.Canceled},
		{"deadline passes while the registry is silent", 200 * time.Millisecond, false, silent, codes.DeadlineExceeded},
		{"registry refuses, deadline far", time.Minute, false, refused, codes.Unknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			defer cancel()
			if tc.canceled {
				cancel()
			}
			_, err := srv.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: tc.ref}})
			if got := status.Code(err); got != tc.want {
				t.Errorf("PullImage %s = %v (code %v), want code %v", tc.ref, err, got, tc.want)
			}
		})
	}

	img := runtimeapi.NewImageServiceClient(e.conn)
	for i := 0; i < 50; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		_, err := img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: silent}})
		cancel()
		if got := status.Code(err); got != codes.DeadlineExceeded {
			t.Fatalf("PullImage over gRPC with a 1 ms timeout, try %d: %v (code %v), want DeadlineExceeded", i, err, got)
		}
	}
	l, err := srv.ListImages(context.Background(), &runtimeapi.ListImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Images) != 0 {
		t.Errorf("images after failed pulls: %v", l.Images)
	}
}
