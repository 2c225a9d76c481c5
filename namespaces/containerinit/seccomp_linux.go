package containerinit

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/ktrace"
)

// The seccomp filter arrives compiled (package seccomp compiles it once, in
// the peapod CLI, when the pod is created): this stage only hands the
// sock_filter array to the kernel, so peapod-init carries no compiler.

// maxFilterInstructions is the kernel's BPF_MAXINSNS.
const maxFilterInstructions = 4096

// loadSeccomp installs prog, a native-endian array of struct sock_filter,
// on the calling thread. It needs no_new_privs or CAP_SYS_ADMIN (see
// becomeProcess for which one holds when). Only this thread is filtered,
// without TSYNC: it is the one that execs, and execve keeps its filter for
// the workload while ending the runtime's other threads.
func loadSeccomp(prog []byte) error {
	if len(prog) == 0 {
		return nil
	}
	if len(prog)%8 != 0 || len(prog)/8 > maxFilterInstructions {
		return fmt.Errorf("invalid seccomp filter of %d bytes", len(prog))
	}
	filter := make([]unix.SockFilter, len(prog)/8)
	for i := range filter {
		b := prog[8*i:]
		filter[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(b), Jt: b[2], Jf: b[3], K: binary.NativeEndian.Uint32(b[4:]),
		}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	err := ktrace.Do("seccomp", fmt.Sprintf("filter of %d instructions", len(filter)), func() error {
		if _, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog))); e != 0 {
			return e
		}
		return nil
	})
	runtime.KeepAlive(filter)
	if err != nil {
		return fmt.Errorf("failed to load seccomp filter: %w", err)
	}
	return nil
}
