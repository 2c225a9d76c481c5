package supervisor

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"testing"

	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/spec"
)

// bytesConn is a net.Conn that reads one fixed request and records what
// the server writes back.
type bytesConn struct {
	net.Conn
	in  *bytes.Reader
	out bytes.Buffer
}

func (c *bytesConn) Read(p []byte) (int, error)  { return c.in.Read(p) }
func (c *bytesConn) Write(p []byte) (int, error) { return c.out.Write(p) }
func (c *bytesConn) Close() error                { return nil }

// FuzzSupervisorSocket feeds the supervisor's socket server (the side
// that decodes a request line from whoever can reach the socket) any
// bytes, on a supervisor with no containers. It must answer a request it
// can decode with exactly one response line in its protocol version, an
// error exactly when the version or the operation is not its own, and stay
// silent on one it cannot decode; it never panics, also not on a stop.
func FuzzSupervisorSocket(f *testing.F) {
	dir := f.TempDir()
	p := spec.Pod{Version: spec.Version, UID: "u1", Name: "p", Namespace: "ns", RunDir: dir,
		RestartPolicy: spec.RestartAlways, TerminationGracePeriodSeconds: 9223372037}
	b, err := json.Marshal(&p)
	if err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(layout.Run(dir).Spec(), b, 0o600); err != nil {
		f.Fatal(err)
	}
	s, err := New(dir, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &bytesConn{in: bytes.NewReader(data)}
		s.serve(c)
		var req Request
		if json.NewDecoder(bytes.NewReader(data)).Decode(&req) != nil {
			if c.out.Len() != 0 {
				t.Fatalf("request %q does not decode, yet the server answered %q", data, c.out.Bytes())
			}
			return
		}
		line, rest, ok := bytes.Cut(c.out.Bytes(), []byte("\n"))
		if !ok || len(rest) != 0 {
			t.Fatalf("request %q: answer %q is not one line", data, c.out.Bytes())
		}
		var resp Response
		if err := json.Unmarshal(line, &resp); err != nil || resp.Version != ProtocolVersion {
			t.Fatalf("request %q: answer %q is not a %s response (%v)", data, line, ProtocolVersion, err)
		}
		// OpAttach is left out: with no container it is always refused.
		known := req.Op == OpPing || req.Op == OpStop || req.Op == OpMetrics
		if wantErr := req.Version != ProtocolVersion || !known; (resp.Error != "") != wantErr {
			t.Fatalf("request %q (version %q op %q): answer error %q", data, req.Version, req.Op, resp.Error)
		}
	})
}
