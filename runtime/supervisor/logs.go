package supervisor

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/peapod/peapod/runtime/layout"
)

// Log rotation defaults, as the kubelet's containerLogMaxSize/MaxFiles.
const (
	logMaxSize  = 10 << 20
	logMaxFiles = 5
	// logLineMax is the longest chunk written as one CRI entry; longer lines
	// are split into partial ("P") entries, as containerd does.
	logLineMax = 16 << 10
)

// criLog writes a container instance's stdout and stderr in the CRI log
// format (`<RFC3339Nano> <stream> <P|F> <text>`) and rotates it.
//
// A write that fails (a full disk, above all) never blocks or stops the
// container, as with the kubelet and containerd: the entry is dropped. But
// the loss is recorded: the first failure of an episode is reported through
// onLoss, and the first entry that can be written again is preceded by a
// marker entry saying how many entries and bytes were lost between which
// times (lossMarker), which is also reported.
type criLog struct {
	// mu serialises the two stream copiers.
	mu sync.Mutex
	// path is the active file; rotated files are path.1 … path.N.
	path string
	// f is the open active file (nil after a failed reopen: retried on
	// the next write).
	f *os.File
	// size is the active file's size.
	size int64
	// maxSize and maxFiles bound disk use.
	maxSize  int64
	maxFiles int
	// closed is set by close: nothing is written or reopened after it.
	closed bool
	// lost counts the entries dropped since the last successful write.
	lost logLoss
	// onLoss, when set, is told when an episode of failed writes begins
	// (recovered false, with the error) and when it ends with the marker
	// written (recovered true). It is called without mu held.
	onLoss func(loss logLoss, recovered bool)
	// now is the clock (tests fake it).
	now func() time.Time
}

// logLoss is one episode of dropped log entries.
type logLoss struct {
	// Entries and Bytes count the dropped CRI entries (one per line, or
	// per 16 KiB chunk of a longer one) and their text bytes.
	Entries, Bytes int64
	// First and Last are when the first and last dropped entry arrived.
	First, Last time.Time
	// Err is the first write error of the episode.
	Err error
}

// lossMarkerPrefix starts the text of the entry that reports lost output;
// it is written on stderr so a stdout consumer never parses it.
const lossMarkerPrefix = "[peapod] "

// lossMarker is the text of the entry written before the first entry that
// could be written again after loss.
func lossMarker(l logLoss) string {
	return fmt.Sprintf("%slog write failed (%v): %d lines (%d bytes) of output were dropped between %s and %s",
		lossMarkerPrefix, l.Err, l.Entries, l.Bytes, l.First.UTC().Format(time.RFC3339Nano), l.Last.UTC().Format(time.RFC3339Nano))
}

func openCRILog(path string) (*criLog, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("failed to create log dir for %q: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("failed to open log %q: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("failed to stat log %q: %w", path, err)
	}
	return &criLog{path: path, f: f, size: fi.Size(), maxSize: logMaxSize, maxFiles: logMaxFiles, now: time.Now}, nil
}

// copyStream reads r until EOF and writes each line as a CRI entry.
// A nil log (one that could not be opened) only drains r.
func (l *criLog) copyStream(stream string, r io.Reader) { l.copyLines(stream, r, false) }

// copyLines is copyStream; with crlf (a terminal's output, whose line
// discipline turns each \n into \r\n) a full line's \r goes as well, as
// containerd's CRI logger drops it (its bufio.ReadLine does).
func (l *criLog) copyLines(stream string, r io.Reader, crlf bool) {
	if l == nil {
		io.Copy(io.Discard, r)
		return
	}
	br := bufio.NewReaderSize(r, logLineMax)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			tag := "P"
			if line[len(line)-1] == '\n' {
				tag = "F"
				line = line[:len(line)-1]
				if crlf && len(line) > 0 && line[len(line)-1] == '\r' {
					line = line[:len(line)-1]
				}
			}
			l.write(stream, tag, line)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return
		}
	}
}

// write writes one entry; when earlier entries were lost, the loss marker
// goes first. It never blocks on anything but the write itself.
func (l *criLog) write(stream, tag string, text []byte) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	now := l.now()
	n := int64(len(text))
	if tag == "F" {
		n++ // the newline the container wrote
	}
	var reports []func()
	if l.lost.Entries > 0 {
		report, ok := l.flushLossLocked(now)
		if !ok {
			// Still failing: this entry is not even tried, it would land
			// before the marker.
			l.dropLocked(now, n, nil)
			l.mu.Unlock()
			return
		}
		reports = append(reports, report)
	}
	if err := l.writeEntry(now, stream, tag, text); err != nil {
		reports = append(reports, l.dropLocked(now, n, err))
	}
	l.mu.Unlock()
	for _, r := range reports {
		if r != nil {
			r()
		}
	}
}

// flushLossLocked writes the marker of the current loss episode; on
// success the episode ends and the report of its end is returned.
func (l *criLog) flushLossLocked(now time.Time) (func(), bool) {
	lost := l.lost
	if l.writeEntry(now, "stderr", "F", []byte(lossMarker(lost))) != nil {
		return nil, false
	}
	l.lost = logLoss{}
	return l.reportLoss(lost, true), true
}

// dropLocked counts a dropped entry of n bytes; at the first of an episode
// it returns the report of the failure (err is the write's error; nil when
// the entry was dropped without trying, never the first of an episode).
func (l *criLog) dropLocked(now time.Time, n int64, err error) func() {
	first := l.lost.Entries == 0
	if first {
		l.lost.First, l.lost.Err = now, err
	}
	l.lost.Entries++
	l.lost.Bytes += n
	l.lost.Last = now
	if !first {
		return nil
	}
	return l.reportLoss(l.lost, false)
}

// reportLoss returns the call of onLoss for loss (nil when none is set).
func (l *criLog) reportLoss(loss logLoss, recovered bool) func() {
	if l.onLoss == nil {
		return nil
	}
	return func() { l.onLoss(loss, recovered) }
}

// writeEntry formats and appends one entry, reopening the file when a
// rotation could not. A partial write (the disk filled mid-entry) is cut
// off again, so the file never holds half an entry.
func (l *criLog) writeEntry(now time.Time, stream, tag string, text []byte) error {
	if l.f == nil {
		f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			return fmt.Errorf("failed to reopen log %q: %w", l.path, err)
		}
		l.f, l.size = f, 0
		if fi, err := f.Stat(); err == nil {
			l.size = fi.Size()
		}
	}
	var b strings.Builder
	b.Grow(len(text) + 48)
	b.WriteString(now.UTC().Format(time.RFC3339Nano))
	b.WriteByte(' ')
	b.WriteString(stream)
	b.WriteByte(' ')
	b.WriteString(tag)
	b.WriteByte(' ')
	b.Write(text)
	b.WriteByte('\n')
	n, err := l.f.WriteString(b.String())
	if err != nil {
		if n > 0 {
			// O_APPEND: the partial entry ends the file.
			l.f.Truncate(l.size)
		}
		return err
	}
	l.size += int64(n)
	if l.maxSize > 0 && l.size >= l.maxSize {
		l.rotate()
	}
	return nil
}

// rotate shifts path → path.1 → … → path.(maxFiles-1), dropping the oldest.
func (l *criLog) rotate() {
	l.f.Close()
	for i := l.maxFiles - 1; i >= 1; i-- {
		src := l.path
		if i > 1 {
			src = l.path + "." + strconv.Itoa(i-1)
		}
		os.Rename(src, l.path+"."+strconv.Itoa(i))
	}
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		l.f = nil
		return
	}
	l.f, l.size = f, 0
}

// close writes the loss marker if output was lost and can now be
// recorded, and closes the file.
func (l *criLog) close() {
	if l == nil {
		return
	}
	l.mu.Lock()
	var report func()
	if l.lost.Entries > 0 && !l.closed {
		report, _ = l.flushLossLocked(l.now())
	}
	l.closed = true
	defer func() {
		l.mu.Unlock()
		if report != nil {
			report()
		}
	}()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// instanceLogPath is the log of a container's restartCount-th instance:
// <dir>/<n>.log, as the kubelet names them, so --previous reads n-1.
func instanceLogPath(base string, restartCount int) string {
	return layout.InstanceLog(base, restartCount)
}

// pruneLogs keeps the logs of the current and the previous instance only.
func pruneLogs(base string, restartCount int) {
	dir := filepath.Dir(base)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	var old []string
	for _, e := range entries {
		name := e.Name()
		n, err := strconv.Atoi(strings.SplitN(name, ".", 2)[0])
		if err == nil && n < restartCount-1 {
			old = append(old, name)
		}
	}
	sort.Strings(old)
	for _, name := range old {
		os.Remove(filepath.Join(dir, name))
	}
}

// logLoss records an episode of a container's lost log output as events:
// LogWriteFailed when it begins (aggregated: its count is the number of
// episodes of one instance's log), LogLinesDropped with the figures once
// the marker is in the log.
func (s *Supervisor) logLoss(c *container, loss logLoss, recovered bool) {
	if !recovered {
		s.addEvent("Warning", c, ReasonLogWriteFailed, fmt.Sprintf(
			"Failed to write the log of container %s: %v; its output is dropped until writes succeed again", c.spec.Name, loss.Err))
		return
	}
	s.addEvent("Warning", c, ReasonLogLinesDropped, fmt.Sprintf(
		"%d lines (%d bytes) of container %s's output were dropped between %s and %s",
		loss.Entries, loss.Bytes, c.spec.Name, loss.First.UTC().Format(time.RFC3339Nano), loss.Last.UTC().Format(time.RFC3339Nano)))
}

// Reasons of the events about lost log output.
const (
	ReasonLogWriteFailed  = "LogWriteFailed"
	ReasonLogLinesDropped = "LogLinesDropped"
)
