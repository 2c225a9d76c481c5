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
type criLog struct {
	// mu serialises the two stream copiers.
	mu sync.Mutex
	// path is the active file; rotated files are path.1 … path.N.
	path string
	// f is the open active file.
	f *os.File
	// size is the active file's size.
	size int64
	// maxSize and maxFiles bound disk use.
	maxSize  int64
	maxFiles int
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
	return &criLog{path: path, f: f, size: fi.Size(), maxSize: logMaxSize, maxFiles: logMaxFiles}, nil
}

// copyStream reads r until EOF and writes each line as a CRI entry.
func (l *criLog) copyStream(stream string, r io.Reader) {
	br := bufio.NewReaderSize(r, logLineMax)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			tag := "P"
			if line[len(line)-1] == '\n' {
				tag = "F"
				line = line[:len(line)-1]
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

func (l *criLog) write(stream, tag string, text []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return
	}
	var b strings.Builder
	b.Grow(len(text) + 48)
	b.WriteString(time.Now().UTC().Format(time.RFC3339Nano))
	b.WriteByte(' ')
	b.WriteString(stream)
	b.WriteByte(' ')
	b.WriteString(tag)
	b.WriteByte(' ')
	b.Write(text)
	b.WriteByte('\n')
	n, _ := l.f.WriteString(b.String())
	l.size += int64(n)
	if l.size >= l.maxSize {
		l.rotate()
	}
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

func (l *criLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// instanceLogPath is the log of a container's restartCount-th instance:
// <dir>/<n>.log, as the kubelet names them, so --previous reads n-1.
func instanceLogPath(base string, restartCount int) string {
	return filepath.Join(filepath.Dir(base), strconv.Itoa(restartCount)+".log")
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
