package supervisor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/peapod/peapod/probes"
	"github.com/peapod/peapod/runtime/spec"
)

func TestNeedsProber(t *testing.T) {
	httpProbe := &spec.Probe{HTTPGet: &spec.HTTPGet{Port: "80"}}
	grpcProbe := &spec.Probe{GRPC: &spec.GRPC{Port: 9090}}
	tcpProbe := &spec.Probe{TCPSocket: &spec.TCPSocket{Port: "80"}}
	execProbe := &spec.Probe{Exec: []string{"true"}}
	cases := []struct {
		name string
		c    spec.Container
		want bool
	}{
		{"none", spec.Container{}, false},
		{"tcp and exec", spec.Container{LivenessProbe: tcpProbe, ReadinessProbe: execProbe, StartupProbe: tcpProbe}, false},
		{"http readiness", spec.Container{LivenessProbe: tcpProbe, ReadinessProbe: httpProbe}, true},
		{"grpc startup", spec.Container{StartupProbe: grpcProbe}, true},
	}
	for _, tc := range cases {
		p := &spec.Pod{Containers: []spec.Container{{Name: "plain"}, tc.c}}
		if got := needsProber(p); got != tc.want {
			t.Errorf("%s: needsProber = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// fakeProberScript answers every probe request with success and the
// request's pod IP as message, and records its pid.
const fakeProberScript = `#!/bin/sh
echo $$ > "$0.pid"
tab=$(printf '\t')
while IFS="$tab" read -r kind id handle ip; do
	[ "$kind" = P ] && printf '%s\t0\tprobed %s\t\n' "$id" "$ip"
done
`

// TestStartProber starts a prober (a script speaking the protocol) through
// the reaper, probes through it, and checks that Close makes it exit and
// that it is reaped.
func TestStartProber(t *testing.T) {
	script := filepath.Join(t.TempDir(), "prober")
	if err := os.WriteFile(script, []byte(fakeProberScript), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(ProberEnv, script)
	s := &Supervisor{reap: testReaper()}
	r := probes.NewRemoteProber(s.startProber)
	t.Cleanup(r.Close)
	h := r.Handler(probes.RemoteProbe{Kind: probes.RemoteHTTP, Timeout: time.Second, Port: 80})
	if out, msg, err := h.Probe(context.Background(), "10.0.0.7"); out != probes.OutcomeSuccess || msg != "probed 10.0.0.7" || err != nil {
		t.Fatalf("probe: %v %q %v", out, msg, err)
	}
	b, err := os.ReadFile(script + ".pid")
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	// The reaper collects it; /proc/PID stays while it runs or is a zombie.
	// Nothing signals another process's reaping, so poll with a deadline.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("prober %d still exists 5 s after Close", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStartProberMissingBinary(t *testing.T) {
	t.Setenv(ProberEnv, filepath.Join(t.TempDir(), "missing"))
	s := &Supervisor{reap: testReaper()}
	r := probes.NewRemoteProber(s.startProber)
	t.Cleanup(r.Close)
	h := r.Handler(probes.RemoteProbe{Kind: probes.RemoteHTTP, Timeout: time.Second, Port: 80})
	if out, _, err := h.Probe(context.Background(), "10.0.0.7"); out != probes.OutcomeUnknown || err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("probe without a prober binary: %v %v, want an error naming it", out, err)
	}
}
