package supervisor

import (
	"errors"
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

func TestWaitGate(t *testing.T) {
	t.Run("no gate", func(t *testing.T) {
		t.Setenv(GateEnv, "") // restored after the test
		os.Unsetenv(GateEnv)
		if err := WaitGate(); err != nil {
			t.Fatalf("without %s: %v", GateEnv, err)
		}
	})
	for _, tc := range []struct {
		name  string
		write []byte
		want  func(error) bool
	}{
		{"opened", []byte{GateOpen}, func(err error) bool { return err == nil }},
		{"closed by a failed or killed run", nil, func(err error) bool { return errors.Is(err, ErrGateClosed) }},
		{"another byte", []byte{'x'}, func(err error) bool { return err != nil && !errors.Is(err, ErrGateClosed) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if tc.write != nil {
				if _, err := w.Write(tc.write); err != nil {
					t.Fatal(err)
				}
			}
			w.Close()
			// WaitGate closes the descriptor it is given: give it a copy.
			fd, err := dupFd(r)
			if err != nil {
				t.Fatal(err)
			}
			t.Setenv(GateEnv, strconv.Itoa(fd))
			if err := WaitGate(); !tc.want(err) {
				t.Fatalf("WaitGate: %v", err)
			}
		})
	}
	for _, bad := range []string{"", "x", "2", "-1"} {
		t.Run("bad value "+strconv.Quote(bad), func(t *testing.T) {
			t.Setenv(GateEnv, bad)
			if err := WaitGate(); err == nil || errors.Is(err, ErrGateClosed) {
				t.Fatalf("%s=%q: want an error naming the value, got %v", GateEnv, bad, err)
			}
		})
	}
}

// dupFd returns a new descriptor (close-on-exec) for f's pipe.
func dupFd(f *os.File) (int, error) {
	return unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 3)
}
