package ktrace

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestFlagNames(t *testing.T) {
	for _, tt := range []struct {
		got, want string
	}{
		{CloneFlags(unix.CLONE_NEWNET | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC), "CLONE_NEWNET|CLONE_NEWUTS|CLONE_NEWIPC"},
		{CloneFlags(unix.CLONE_NEWNS | unix.CLONE_NEWPID), "CLONE_NEWNS|CLONE_NEWPID"},
		{CloneFlags(0), "0"},
		{CloneFlags(unix.CLONE_NEWNET | unix.CLONE_VFORK), "CLONE_NEWNET|0x4000"},
		{MountFlags(unix.MS_BIND | unix.MS_REC), "MS_BIND|MS_REC"},
		{MountFlags(unix.MS_RDONLY | unix.MS_REMOUNT | unix.MS_BIND), "MS_RDONLY|MS_REMOUNT|MS_BIND"},
		{MountFlags(0), "0"},
		{umountFlags(unix.MNT_DETACH), "MNT_DETACH"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// enableForTest turns tracing on into a buffer and off again after the test.
func enableForTest(t *testing.T, format string) *bytes.Buffer {
	var buf bytes.Buffer
	Enable(&buf, format)
	t.Cleanup(func() { cur.Store(nil) })
	return &buf
}

func TestOffRunsAndLogsNothing(t *testing.T) {
	cur.Store(nil)
	ran := false
	boom := errors.New("boom")
	if err := Do("op", "obj", func() error { ran = true; return boom }); err != boom || !ran {
		t.Fatalf("Do off: err %v ran %v", err, ran)
	}
	if Enabled() || Env() != nil {
		t.Fatal("off but Enabled or Env says otherwise")
	}
	env, files := PassFiles([]string{"A=1"}, nil)
	if len(env) != 1 || files != nil {
		t.Fatalf("PassFiles off changed env %v files %v", env, files)
	}
}

func TestDoLogsJSON(t *testing.T) {
	buf := enableForTest(t, "json")
	boom := errors.New("boom")
	if err := Do("netlink link add", "veth pp1", func() error { return boom }); err != boom {
		t.Fatalf("Do returned %v, want the fn's error unchanged", err)
	}
	_ = DoUnless("cgroup mkdir", "/x", func() error { return os.ErrExist }, os.ErrExist)
	_ = DoUnless("cgroup mkdir", "/y", func() error { return nil }, os.ErrExist)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines (the quiet EEXIST skipped), got %q", lines)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"msg": "netlink link add", "object": "veth pp1", "error": "boom", "level": "DEBUG"} {
		if rec[k] != v {
			t.Errorf("%s = %v, want %v (line %s)", k, rec[k], v, lines[0])
		}
	}
	if _, ok := rec["duration"]; !ok {
		t.Errorf("no duration in %s", lines[0])
	}
	if !strings.Contains(lines[1], `"object":"/y"`) {
		t.Errorf("second line %s, want the mkdir of /y", lines[1])
	}
}

func TestPassFiles(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	Enable(w, "text")
	t.Cleanup(func() { cur.Store(nil) })
	env, files := PassFiles([]string{"GOMAXPROCS=1"}, []*os.File{nil, nil, nil, nil, nil})
	if len(files) != 6 || files[5] != w {
		t.Fatalf("files %v: want the output as fd 5", files)
	}
	if strings.Join(env, " ") != "GOMAXPROCS=1 PEAPOD_DEBUG=1 PEAPOD_LOG_FORMAT=text PEAPOD_DEBUG_FD=5" {
		t.Fatalf("env %v", env)
	}
	env, extra := PassExtraFiles(nil, []*os.File{nil})
	if len(extra) != 2 || extra[1] != w || env[len(env)-1] != "PEAPOD_DEBUG_FD=4" {
		t.Fatalf("PassExtraFiles: env %v extra %v, want fd 4 (3 + one extra file)", env, extra)
	}
	// A writer that is no file: children trace to their own stderr.
	var buf bytes.Buffer
	Enable(&buf, "json")
	env, extra = PassExtraFiles(nil, nil)
	if len(extra) != 0 || strings.Join(env, " ") != "PEAPOD_DEBUG=1 PEAPOD_LOG_FORMAT=json" {
		t.Fatalf("non-file output: env %v extra %v", env, extra)
	}
}

func TestResolveFdPath(t *testing.T) {
	f, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	if got := resolve(p); got != p+" ("+f.Name()+")" {
		t.Errorf("resolve(%q) = %q, want the path it is open on", p, got)
	}
	if got := resolve("/etc"); got != "/etc" {
		t.Errorf("resolve(/etc) = %q", got)
	}
}

// BenchmarkDoOff is the cost of a hook when tracing is off: what every
// traced kernel operation pays in a normal run.
func BenchmarkDoOff(b *testing.B) {
	cur.Store(nil)
	fn := func() error { return nil }
	for b.Loop() {
		_ = Do("netlink link add", "veth", fn)
	}
}

// BenchmarkDoOn is the cost of one line, JSON, to a discarding writer.
func BenchmarkDoOn(b *testing.B) {
	Enable(io.Discard, "json")
	b.Cleanup(func() { cur.Store(nil) })
	fn := func() error { return nil }
	for b.Loop() {
		_ = Do("netlink link add", "veth", fn)
	}
}
