package e2e

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/peapod/peapod/runtime/layout"
)

// TestLogLossRecorded (defect 8): with the root's disk full, a container
// writing numbered lines keeps running; its lost lines are recorded by a
// LogWriteFailed event at once and, once space returns, by a marker line in
// its log and a LogLinesDropped event that count exactly the missing lines
// and their bytes.
func TestLogLossRecorded(t *testing.T) {
	e := newEnv(t, withTmpfsRoot(24<<20))
	before := e.snapshot()
	// Each line is numbered; the counter also goes to /dev/shm (a tmpfs in
	// the run root, not on the full disk), so the test sees progress.
	e.runPod(podJSON(newPod("chatty", shell("c",
		`i=0; while true; do echo "n $i"; echo $i > /dev/shm/n; i=$((i+1)); usleep 2000; done`))))
	v := e.inspect("chatty")
	pid := v.container(t, "c").PID
	counter := filepath.Join(layout.Run(e.dirs().RunDir(v.UID)).Shm(), "n")
	waitCounter(t, counter, 20)

	filler := filepath.Join(e.root, "filler")
	fill(t, filler)
	ev := e.waitEvents("chatty", "LogWriteFailed")
	if !strings.Contains(ev, "no space left on device") {
		t.Errorf("LogWriteFailed event does not say why:\n%s", ev)
	}
	// Lines are dropped from here on; let a few hundred go.
	waitCounter(t, counter, readCounter(t, counter)+300)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	ev = e.waitEvents("chatty", "LogLinesDropped")
	last := readCounter(t, counter)
	waitCounter(t, counter, last+20)

	logs := e.mustRun("logs", "chatty")
	seen := map[int]bool{}
	var marker string
	hi := -1
	for _, line := range strings.Split(logs, "\n") {
		if n, ok := strings.CutPrefix(line, "n "); ok {
			i, err := strconv.Atoi(n)
			if err != nil {
				t.Fatalf("garbled log line %q", line)
			}
			seen[i] = true
			hi = max(hi, i)
		} else if strings.HasPrefix(line, "[peapod] ") {
			if marker != "" {
				t.Errorf("two marker lines:\n%s\n%s", marker, line)
			}
			marker = line
		}
	}
	var missing, missingBytes int
	for i := 0; i <= hi; i++ {
		if !seen[i] {
			missing++
			missingBytes += len(fmt.Sprintf("n %d\n", i))
		}
	}
	m := regexp.MustCompile(`(\d+) lines \((\d+) bytes\) of output were dropped between (\S+) and (\S+)$`).FindStringSubmatch(marker)
	if m == nil {
		t.Fatalf("no marker line with the loss in the log (%d lines missing):\n%s", missing, logs)
	}
	if missing < 300 || m[1] != strconv.Itoa(missing) || m[2] != strconv.Itoa(missingBytes) {
		t.Errorf("marker %q, want %d lines (%d bytes), at least 300", marker, missing, missingBytes)
	}
	for _, ts := range m[3:] {
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Errorf("marker time %q: %v", ts, err)
		}
	}
	if !strings.Contains(ev, fmt.Sprintf("%d lines (%d bytes)", missing, missingBytes)) {
		t.Errorf("LogLinesDropped event does not count the %d lines (%d bytes):\n%s", missing, missingBytes, ev)
	}
	p := e.get("chatty")
	s := containerStatus(t, p, "c")
	if s.State.Running == nil || s.RestartCount != 0 || e.inspect("chatty").container(t, "c").PID != pid {
		t.Errorf("the container did not keep running: state %+v, restarts %d", s.State, s.RestartCount)
	}
	e.mustRun("rm", "-f", "chatty")
	e.assertNoLeak(before)
}

// fill writes zeros to path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = io.Copy(f, zeros{})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling %s: %v, want ENOSPC", path, err)
	}
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// readCounter reads the number a container keeps writing to path (the
// shell truncates the file before each write: an empty read is retried).
func readCounter(t *testing.T, path string) int {
	t.Helper()
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return n
		}
	}
}

// waitCounter waits until the counter at path reaches n.
func waitCounter(t *testing.T, path string, n int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		b, _ := os.ReadFile(path)
		got, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err == nil && got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("counter %s at %q after %v, want %d", path, b, waitTimeout, n)
		}
		time.Sleep(pollInterval)
	}
}

// waitEvents waits until the pod's events name reason and returns them.
func (e *env) waitEvents(pod, reason string) string {
	e.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		out := e.mustRun("events", pod)
		if strings.Contains(out, " "+reason+" ") {
			return out
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no %s event for pod %s after %v:\n%s", reason, pod, waitTimeout, out)
		}
		time.Sleep(pollInterval)
	}
}
