// Package ktrace logs every kernel operation peapod performs — unshare and
// clone flag sets, setns, mount, pivot_root, netlink requests, nftables
// changes, cgroup writes — one line each with the object it touched and its
// duration, through log/slog, for people who come to peapod to learn how a
// pod is made (`peapod --debug`, or PEAPOD_DEBUG=1).
//
// It is a leaf linked by every binary, the lean supervisor and the init
// stage included: stdlib and x/sys/unix only. When tracing is off each hook
// costs one atomic load.
//
// The CLI enables it with Enable. A child process (supervisor, init stage)
// finds its settings in its environment, which PassExtraFiles and PassFiles
// fill in: PEAPOD_DEBUG=1, PEAPOD_LOG_FORMAT and PEAPOD_DEBUG_FD, a
// descriptor (the CLI's stderr, passed down) the child writes its lines to,
// so that `peapod --debug run` shows the container side too.
package ktrace

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Environment variables a child reads.
const (
	// EnvDebug is "1" when tracing is on.
	EnvDebug = "PEAPOD_DEBUG"
	// EnvFormat is "json" or "text" (default).
	EnvFormat = "PEAPOD_LOG_FORMAT"
	// EnvFd is the descriptor to write lines to (default stderr).
	EnvFd = "PEAPOD_DEBUG_FD"
)

// tracer is the enabled state: nil when tracing is off.
type tracer struct {
	// log is the logger lines go through.
	log *slog.Logger
	// out is the file behind log, passed on to children; nil when the
	// writer is not a file.
	out *os.File
	// format is "json" or "text".
	format string
	// owned is true when out was inherited (PEAPOD_DEBUG_FD) and Detach may close it.
	owned bool
}

// cur is the active tracer.
var cur atomic.Pointer[tracer]

// mu serialises Enable, Detach and package init.
var mu sync.Mutex

func init() {
	if os.Getenv(EnvDebug) != "1" {
		return
	}
	out, owned := os.Stderr, false
	if s := os.Getenv(EnvFd); s != "" {
		if fd, err := strconv.Atoi(s); err == nil && fd > 2 {
			// Inherited without CLOEXEC (it had to cross our own execve):
			// set it now, or every process we start would inherit it too,
			// the container's workload included.
			syscall.CloseOnExec(fd)
			out, owned = os.NewFile(uintptr(fd), "debug"), true
		}
	}
	enable(out, out, os.Getenv(EnvFormat), owned)
}

// Enable turns tracing on, writing to w in format ("json" or "text").
func Enable(w io.Writer, format string) {
	f, _ := w.(*os.File)
	enable(w, f, format, false)
}

func enable(w io.Writer, f *os.File, format string, owned bool) {
	mu.Lock()
	defer mu.Unlock()
	cur.Store(&tracer{log: newLogger(w, format), out: f, format: format, owned: owned})
}

// newLogger makes the slog logger of one process; every line names the
// process (peapod, peapod-supervisor, peapod-init) and its pid.
func newLogger(w io.Writer, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelDebug}
	var h slog.Handler
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(h).With("proc", filepath.Base(os.Args[0]), "pid", os.Getpid())
}

// Detach sends this process's further lines to its own stderr and closes
// the inherited descriptor: the supervisor calls it once its start report
// is sent, so the CLI's stderr is not held open (nor written to) after the
// CLI returns; later lines go to the supervisor's log.
func Detach() {
	mu.Lock()
	defer mu.Unlock()
	t := cur.Load()
	if t == nil || !t.owned {
		return
	}
	cur.Store(&tracer{log: newLogger(os.Stderr, t.format), out: os.Stderr, format: t.format})
	t.out.Close()
}

// Enabled reports whether tracing is on.
func Enabled() bool { return cur.Load() != nil }

// Env is the environment a child needs to trace to its own stderr; nil when off.
func Env() []string {
	t := cur.Load()
	if t == nil {
		return nil
	}
	return []string{EnvDebug + "=1", EnvFormat + "=" + t.format}
}

// PassExtraFiles adds what an exec.Cmd child needs to trace to this
// process's output: the environment and, when the output is a file, that
// file as one more of cmd.ExtraFiles (fd 3+i in the child).
func PassExtraFiles(env []string, extra []*os.File) ([]string, []*os.File) {
	t := cur.Load()
	if t == nil {
		return env, extra
	}
	env = append(env, Env()...)
	if t.out != nil {
		env = append(env, EnvFd+"="+strconv.Itoa(3+len(extra)))
		extra = append(extra, t.out)
	}
	return env, extra
}

// PassFiles is PassExtraFiles for an os.ProcAttr's Files (fd i in the child).
func PassFiles(env []string, files []*os.File) ([]string, []*os.File) {
	t := cur.Load()
	if t == nil {
		return env, files
	}
	env = append(env, Env()...)
	if t.out != nil {
		env = append(env, EnvFd+"="+strconv.Itoa(len(files)))
		files = append(files, t.out)
	}
	return env, files
}

// Do runs fn, one kernel operation, and logs op on obj with its duration
// and error. fn's error is returned unchanged.
func Do(op, obj string, fn func() error) error {
	t := cur.Load()
	if t == nil {
		return fn()
	}
	start := time.Now()
	err := fn()
	t.emit(op, start, err, "object", obj)
	return err
}

// DoUnless is Do, but an error that is quiet (errors.Is) is not logged:
// for calls where that error means "already done" (a mkdir -p).
func DoUnless(op, obj string, fn func() error, quiet error) error {
	t := cur.Load()
	if t == nil {
		return fn()
	}
	start := time.Now()
	err := fn()
	if err == nil || !errors.Is(err, quiet) {
		t.emit(op, start, err, "object", obj)
	}
	return err
}

// Log logs an operation that happened elsewhere (started at start), with
// attrs as slog key-value pairs.
func Log(op string, start time.Time, err error, attrs ...any) {
	if t := cur.Load(); t != nil {
		t.emit(op, start, err, attrs...)
	}
}

func (t *tracer) emit(op string, start time.Time, err error, attrs ...any) {
	attrs = append(attrs, "duration", time.Since(start).Round(time.Microsecond))
	if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	t.log.Debug(op, attrs...)
}
