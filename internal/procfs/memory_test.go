package procfs

import (
	"errors"
	"os"
	"testing"
)

func TestParseSmapsRollup(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want Memory
		err  bool
	}{
		{name: "linux 6", in: "00400000-7ffd8a9f7000 ---p 00000000 00:00 0                          [rollup]\n" +
			"Rss:                5376 kB\nPss:                1754 kB\nPss_Dirty:          1528 kB\nPss_Anon:           1516 kB\n" +
			"Pss_File:            238 kB\nPss_Shmem:             0 kB\nShared_Clean:       3812 kB\n",
			want: Memory{Rss: 5376 << 10, Pss: 1754 << 10, PssAnon: 1516 << 10, PssFile: 238 << 10}},
		{name: "before 5.7: no split", in: "Rss: 10 kB\nPss: 4 kB\n", want: Memory{Rss: 10 << 10, Pss: 4 << 10}},
		{name: "no Pss", in: "Rss: 10 kB\n", err: true},
		{name: "empty", in: "", err: true},
		{name: "not kB", in: "Rss: 10 MB\nPss: 4 kB\n", err: true},
		{name: "negative", in: "Rss: -10 kB\nPss: 4 kB\n", err: true},
		{name: "overflow", in: "Rss: 99999999999999999999 kB\nPss: 4 kB\n", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSmapsRollup([]byte(tc.in))
			if tc.err {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("want ErrMalformed, got %+v, %v", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestParseStatusMemory(t *testing.T) {
	got, err := ParseStatusMemory([]byte("Name:\tpeapod-supervis\nVmPTE:\t      60 kB\nThreads:\t7\n"))
	if err != nil || got.PageTables != 60<<10 || got.Threads != 7 {
		t.Fatalf("got %+v, %v", got, err)
	}
	// A kernel thread has no VmPTE.
	if got, err := ParseStatusMemory([]byte("Name:\tkthreadd\nThreads:\t1\n")); err != nil || got.PageTables != 0 || got.Threads != 1 {
		t.Fatalf("kernel thread: got %+v, %v", got, err)
	}
	for _, bad := range []string{"VmPTE:\t60 kB\n", "Threads:\tx\n", "Threads:\t-1\n", "VmPTE:\t60\nThreads:\t1\n"} {
		if _, err := ParseStatusMemory([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: want ErrMalformed, got %v", bad, err)
		}
	}
}

func TestReadMemorySelf(t *testing.T) {
	m, err := ReadMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.Rss == 0 || m.Pss == 0 || m.Pss > m.Rss || m.Threads < 1 || m.PageTables == 0 {
		t.Fatalf("implausible memory of the test process: %+v", m)
	}
	if m.PssAnon+m.PssFile+m.PssShmem > m.Pss+3<<10 {
		t.Fatalf("split %d+%d+%d exceeds Pss %d", m.PssAnon, m.PssFile, m.PssShmem, m.Pss)
	}
}

func TestMemoryAdd(t *testing.T) {
	a := Memory{Rss: 1, Pss: 2, PssAnon: 3, PssFile: 4, PssShmem: 5, PageTables: 6, Threads: 7}
	if got, want := a.Add(a), (Memory{Rss: 2, Pss: 4, PssAnon: 6, PssFile: 8, PssShmem: 10, PageTables: 12, Threads: 14}); got != want {
		t.Fatalf("Add: got %+v, want %+v", got, want)
	}
	if got := (Memory{}).Add(a); got != a {
		t.Fatalf("zero.Add(a) = %+v, want %+v", got, a)
	}
}
