package cri_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/peapod/peapod/cri"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestStreamingAddress: the streaming server, whose token is its only
// check, listens on loopback only; a token it never handed out gets
// nothing.
func TestStreamingAddress(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "10.1.2.3:0", "example.com:0", "127.0.0.1", "[::]:0"} {
		if _, stop, err := cri.New(nil, "test").StartStreaming(addr); err == nil {
			stop()
			t.Errorf("StartStreaming(%q) succeeded, want a refusal", addr)
		} else if !strings.Contains(err.Error(), addr) {
			t.Errorf("StartStreaming(%q) = %v, want an error naming the address", addr, err)
		}
	}
	addr, stop, err := cri.New(nil, "test").StartStreaming(cri.DefaultStreamingAddress)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
		t.Errorf("streaming address %q, want 127.0.0.1 and the port picked", addr)
	}
	for _, p := range []string{"/exec/bogus", "/portforward/bogus", "/attach/bogus"} {
		resp, err := http.Post("http://"+addr+p, "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("POST %s with a token never handed out: %s, want 404", p, resp.Status)
		}
	}
}

// TestStreamingBadInput: the streaming calls check their input and the
// state of what they name before a URL is handed out.
func TestStreamingBadInput(t *testing.T) {
	e := newEnv(t)
	e.importBusybox()
	sbCfg := config("stream", 0)
	sb := e.run(sbCfg)
	created := e.create(sb, ctrConfig("app", 0), sbCfg)
	for _, c := range []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"exec without a container", func() error {
			_, err := e.rt.Exec(e.ctx(), &runtimeapi.ExecRequest{Cmd: []string{"true"}, Stdout: true})
			return err
		}, codes.InvalidArgument},
		{"exec without a command", func() error {
			_, err := e.rt.Exec(e.ctx(), &runtimeapi.ExecRequest{ContainerId: created, Stdout: true})
			return err
		}, codes.InvalidArgument},
		{"exec in an unknown container", func() error {
			_, err := e.rt.Exec(e.ctx(), &runtimeapi.ExecRequest{ContainerId: "0123456789abcdef", Cmd: []string{"true"}, Stdout: true})
			return err
		}, codes.NotFound},
		{"exec in a container not started", func() error {
			_, err := e.rt.Exec(e.ctx(), &runtimeapi.ExecRequest{ContainerId: created, Cmd: []string{"true"}, Stdout: true})
			return err
		}, codes.FailedPrecondition},
		{"attach without a container", func() error {
			_, err := e.rt.Attach(e.ctx(), &runtimeapi.AttachRequest{Stdout: true})
			return err
		}, codes.InvalidArgument},
		{"attach to an unknown container", func() error {
			_, err := e.rt.Attach(e.ctx(), &runtimeapi.AttachRequest{ContainerId: "0123456789abcdef", Stdout: true})
			return err
		}, codes.NotFound},
		{"attach to a container not started", func() error {
			_, err := e.rt.Attach(e.ctx(), &runtimeapi.AttachRequest{ContainerId: created, Stdout: true})
			return err
		}, codes.FailedPrecondition},
		{"port-forward to port 0", func() error {
			_, err := e.rt.PortForward(e.ctx(), &runtimeapi.PortForwardRequest{PodSandboxId: sb, Port: []int32{0}})
			return err
		}, codes.InvalidArgument},
		{"port-forward to port 65536", func() error {
			_, err := e.rt.PortForward(e.ctx(), &runtimeapi.PortForwardRequest{PodSandboxId: sb, Port: []int32{80, 65536}})
			return err
		}, codes.InvalidArgument},
		{"port-forward to an unknown sandbox", func() error {
			_, err := e.rt.PortForward(e.ctx(), &runtimeapi.PortForwardRequest{PodSandboxId: "0123456789abcdef", Port: []int32{80}})
			return err
		}, codes.NotFound},
		// This server was started without a streaming server.
		{"port-forward without a streaming server", func() error {
			_, err := e.rt.PortForward(e.ctx(), &runtimeapi.PortForwardRequest{PodSandboxId: sb, Port: []int32{80}})
			return err
		}, codes.Unavailable},
	} {
		if err := c.call(); status.Code(err) != c.want {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := e.rt.StopPodSandbox(e.ctx(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rt.PortForward(e.ctx(), &runtimeapi.PortForwardRequest{PodSandboxId: sb, Port: []int32{80}}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("port-forward to a stopped sandbox: %v, want FailedPrecondition", err)
	}
	e.remove(sb)
}
