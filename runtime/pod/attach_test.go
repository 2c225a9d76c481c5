package pod

import (
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/peapod/peapod/runtime/supervisor"
)

// chunks is a reader returning each string in one Read.
type chunks []string

func (c *chunks) Read(p []byte) (int, error) {
	if len(*c) == 0 {
		return 0, io.EOF
	}
	n := copy(p, (*c)[0])
	(*c)[0] = (*c)[0][n:]
	if (*c)[0] == "" {
		*c = (*c)[1:]
	}
	return n, nil
}

// TestDetachReader: Ctrl-P Ctrl-Q detaches wherever the reads split it;
// anything else, Ctrl-P included, passes through in order.
func TestDetachReader(t *testing.T) {
	const p, q = "\x10", "\x11"
	tests := []struct {
		name     string
		in       []string
		want     string
		detached bool
	}{
		{"plain", []string{"ls\r", "exit\r"}, "ls\rexit\r", false},
		{"detach", []string{"ls\r" + p + q + "after"}, "ls\r", true},
		{"detach split across reads", []string{"ab" + p, q, "never"}, "ab", true},
		{"ctrl-p alone passes", []string{"a" + p + "b"}, "a" + p + "b", false},
		{"ctrl-p ctrl-p ctrl-q", []string{p + p + q}, p, true},
		{"ctrl-q alone passes", []string{q + "x"}, q + "x", false},
		{"ctrl-p at EOF passes", []string{"x" + p}, "x" + p, false},
		{"ctrl-p then other across reads", []string{p, "z"}, p + "z", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := chunks(append([]string(nil), tt.in...))
			got, err := io.ReadAll(DetachReader(&in, DefaultDetachKeys))
			if tt.detached != errors.Is(err, supervisor.ErrDetached) || !tt.detached && err != nil {
				t.Fatalf("error %v, want detached %v", err, tt.detached)
			}
			if string(got) != tt.want {
				t.Errorf("passed %q, want %q", got, tt.want)
			}
		})
	}
	// One byte per read, and a reader that follows io.Reader's contract.
	in := chunks{"hello" + p + "x" + p + q}
	got, err := io.ReadAll(DetachReader(iotest.OneByteReader(&in), DefaultDetachKeys))
	if string(got) != "hello"+p+"x" || !errors.Is(err, supervisor.ErrDetached) {
		t.Errorf("one byte at a time: %q, %v", got, err)
	}
	if err := iotest.TestReader(DetachReader(&chunks{"abc" + p + "def"}, DefaultDetachKeys), []byte("abc"+p+"def")); err != nil {
		t.Error(err)
	}
}
