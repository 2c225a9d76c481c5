package procfs

import (
	"errors"
	"io/fs"
	"os"
	"reflect"
	"testing"
)

func TestParseStat(t *testing.T) {
	tail := " 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 4242 23 24 25 26\n"
	tests := []struct {
		name    string
		stat    string
		want    Stat
		wantErr bool
	}{
		{name: "plain", stat: "42 (sleep) S 7" + tail,
			want: Stat{PID: 42, Comm: "sleep", State: 'S', PPID: 7, StartTime: 4242}},
		{name: "comm with spaces and parentheses", stat: "42 (a) b (c)) Z 100" + tail,
			want: Stat{PID: 42, Comm: "a) b (c)", State: 'Z', PPID: 100, StartTime: 4242}},
		{name: "comm that looks like fields", stat: "42 (x) R 1 2 3) X 9" + tail,
			want: Stat{PID: 42, Comm: "x) R 1 2 3", State: 'X', PPID: 9, StartTime: 4242}},
		{name: "empty comm", stat: "1 () S 0" + tail,
			want: Stat{PID: 1, Comm: "", State: 'S', PPID: 0, StartTime: 4242}},
		{name: "truncated", stat: "42 (sleep) S 7 3 4", wantErr: true},
		{name: "no comm", stat: "42 sleep S 7" + tail, wantErr: true},
		{name: "no pid", stat: "(sleep) S 7" + tail, wantErr: true},
		{name: "bad ppid", stat: "42 (sleep) S x" + tail, wantErr: true},
		{name: "bad start time", stat: "42 (sleep) S 7 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 -1 23", wantErr: true},
		{name: "empty", stat: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStat([]byte(tt.stat))
			if tt.wantErr {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("ParseStat(%q) = %+v, %v; want ErrMalformed", tt.stat, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseStat(%q) = %+v, %v; want %+v", tt.stat, got, err, tt.want)
			}
		})
	}
}

func TestGone(t *testing.T) {
	for state, want := range map[byte]bool{'R': false, 'S': false, 'D': false, 'T': false, 'Z': true, 'X': true} {
		if got := (Stat{State: state}).Gone(); got != want {
			t.Errorf("Stat{State: %q}.Gone() = %v, want %v", state, got, want)
		}
	}
}

func TestReadStatSelf(t *testing.T) {
	s, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.PID != os.Getpid() || s.PPID != os.Getppid() || s.Gone() || s.StartTime == 0 {
		t.Errorf("ReadStat(self) = %+v, want pid %d, ppid %d, running, a start time", s, os.Getpid(), os.Getppid())
	}
	// Pid 0 never has a /proc entry.
	if _, err := ReadStat(0); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadStat(0) = %v, want fs.ErrNotExist", err)
	}
}

func TestParseIDs(t *testing.T) {
	tests := []struct {
		name, in string
		want     IDs
		wantErr  bool
	}{
		{"critest merge", "Name:\tsh\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nFDSize:\t64\nGroups:\t1000 1234 50000 \n", IDs{1000, 1000, []uint32{1000, 1234, 50000}}, false},
		{"no groups", "Uid:\t0\t0\t0\t0\nGid:\t5\t5\t5\t5\nGroups:\t\n", IDs{0, 5, []uint32{}}, false},
		{"real ids", "Uid:\t7\t0\t0\t0\nGid:\t8\t0\t0\t0\nGroups:\n", IDs{7, 8, []uint32{}}, false},
		{"no Groups line", "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n", IDs{}, true},
		{"short Uid", "Uid:\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\n", IDs{}, true},
		{"bad group", "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\tx\n", IDs{}, true},
		{"empty", "", IDs{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseIDs([]byte(tt.in))
			if tt.wantErr {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("ParseIDs = %+v, %v; want ErrMalformed", got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseIDs = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestReadIDsSelf(t *testing.T) {
	ids, err := ReadIDs(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if ids.UID != uint32(os.Getuid()) || ids.GID != uint32(os.Getgid()) {
		t.Errorf("ReadIDs(self) = %+v, want uid %d gid %d", ids, os.Getuid(), os.Getgid())
	}
}

func TestParseSignals(t *testing.T) {
	tests := []struct {
		name, in string
		want     Signals
		wantErr  bool
	}{
		// busybox top as a container's PID 1 before and after it installs
		// its SIGTERM (15) handler: bit 14.
		{"init without handler", "NSpid:\t4242\t1\nSigIgn:\t0000000000000000\nSigCgt:\t0000000000000000\n", Signals{NSInit: true}, false},
		{"init with handler", "NSpid:\t4242\t1\nSigCgt:\t0000000000004000\n", Signals{NSInit: true, Caught: 0x4000}, false},
		{"host process", "NSpid:\t1\nSigCgt:\tfffffffe7ffbfeff\n", Signals{NSInit: true, Caught: 0xfffffffe7ffbfeff}, false},
		{"not an init", "NSpid:\t4242\t7\nSigCgt:\t0000000000000000\n", Signals{}, false},
		{"no NSpid", "SigCgt:\t0000000000000000\n", Signals{}, true},
		{"no SigCgt", "NSpid:\t1\n", Signals{}, true},
		{"bad mask", "NSpid:\t1\nSigCgt:\tzz\n", Signals{}, true},
		{"empty NSpid", "NSpid:\nSigCgt:\t0\n", Signals{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSignals([]byte(tt.in))
			if tt.wantErr {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("ParseSignals = %+v, %v; want ErrMalformed", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseSignals = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	if s := (Signals{Caught: 0x4000}); !s.Catches(15) || s.Catches(9) || s.Catches(0) || s.Catches(65) {
		t.Errorf("Catches of mask %#x wrong", s.Caught)
	}
}

func TestReadSignalsSelf(t *testing.T) {
	// The Go runtime installs handlers for every signal it can, SIGTERM
	// among them (os/signal only decides what the handler does).
	s, err := ReadSignals(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !s.Catches(15) {
		t.Errorf("ReadSignals(self) = %+v, want SIGTERM caught by the Go runtime", s)
	}
}
