package supervisor

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLogLossIsRecorded: entries that cannot be written (ENOSPC from
// /dev/full) are dropped without blocking, reported once when the episode
// begins, and once writing works again a marker entry with the count,
// bytes and times precedes the next entry; the episode's end is reported
// with the same figures.
func TestLogLossIsRecorded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	l, err := openCRILog(path)
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l.now = func() time.Time { clock = clock.Add(time.Second); return clock }
	type report struct {
		loss      logLoss
		recovered bool
	}
	var reports []report
	l.onLoss = func(loss logLoss, recovered bool) { reports = append(reports, report{loss, recovered}) }

	l.write("stdout", "F", []byte("line 0"))
	full, err := os.OpenFile("/dev/full", os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	good := l.f
	l.f = full
	for i := 1; i <= 3; i++ {
		l.write("stdout", "F", []byte(fmt.Sprintf("line %d", i))) // 7 bytes with the newline
	}
	if len(reports) != 1 || reports[0].recovered || !errors.Is(reports[0].loss.Err, syscall.ENOSPC) {
		t.Fatalf("reports after the failed writes = %+v, want one begin of an ENOSPC episode", reports)
	}
	l.f = good
	l.write("stdout", "F", []byte("line 4"))
	l.close()

	if len(reports) != 2 || !reports[1].recovered {
		t.Fatalf("reports = %+v, want the episode's end second", reports)
	}
	got := reports[1].loss
	first := time.Date(2026, 1, 2, 3, 4, 7, 0, time.UTC)
	if got.Entries != 3 || got.Bytes != 21 || !got.First.Equal(first) || !got.Last.Equal(first.Add(2*time.Second)) {
		t.Errorf("loss = %+v, want 3 entries, 21 bytes, from %v to %v", got, first, first.Add(2*time.Second))
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	for sc := bufio.NewScanner(f); sc.Scan(); {
		_, rest, _ := strings.Cut(sc.Text(), " ")
		lines = append(lines, rest)
	}
	want := []string{
		"stdout F line 0",
		"stderr F " + lossMarker(got),
		"stdout F line 4",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("log:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(want[1], "3 lines (21 bytes) of output were dropped between 2026-01-02T03:04:07Z and 2026-01-02T03:04:09Z") {
		t.Errorf("marker %q does not give the figures", want[1])
	}
}

// TestTerminalLogLines: a terminal's \r\n ends a log entry without its
// \r (containerd's CRI logger's), other carriage returns stay, and a
// pipe's output is logged byte for byte.
func TestTerminalLogLines(t *testing.T) {
	for _, c := range []struct {
		name string
		in   string
		crlf bool
		want []string
	}{
		{"terminal lines", "one\r\ntwo\r\n", true, []string{"F one", "F two"}},
		{"terminal empty line", "\r\n", true, []string{"F "}},
		{"terminal progress bar", "10%\r20%\r\n", true, []string{"F 10%\r20%"}},
		{"terminal partial line", "prompt$ \r", true, []string{"P prompt$ \r"}},
		{"terminal bare newline", "a\nb\r\n", true, []string{"F a", "F b"}},
		{"pipe keeps its \\r", "one\r\ntwo\n", false, []string{"F one\r", "F two"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "0.log")
			l, err := openCRILog(path)
			if err != nil {
				t.Fatal(err)
			}
			l.copyLines("stdout", strings.NewReader(c.in), c.crlf)
			l.close()
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, line := range strings.SplitAfter(string(b), "\n") {
				if line == "" {
					continue
				}
				// <time> stdout <tag> <text>\n
				f := strings.SplitN(strings.TrimSuffix(line, "\n"), " ", 3)
				if len(f) != 3 || f[1] != "stdout" {
					t.Fatalf("log line %q is not a CRI entry of stdout", line)
				}
				got = append(got, f[2])
			}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", c.want) {
				t.Errorf("copyLines(%q, crlf %v) logged %q, want %q", c.in, c.crlf, got, c.want)
			}
		})
	}
}
