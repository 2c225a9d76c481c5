package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/elastic/go-seccomp-bpf/arch"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// The compiled programs are run in x/net/bpf's classic-BPF interpreter on
// hand-made struct seccomp_data, so the filter's decisions are checked
// without loading it. The interpreter reads words big-endian (packet
// order), so each 32-bit field is written big-endian at the offset the
// kernel's native layout gives it.

// defaultCaps are containerd's 14 default capabilities.
var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
	"CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

func procWith(caps ...string) *specs.Process {
	return &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}
}

// vm decodes a compiled program into the interpreter.
func vm(t *testing.T, prog []byte) *bpf.VM {
	t.Helper()
	if len(prog)%InstructionSize != 0 || len(prog) == 0 {
		t.Fatalf("program of %d bytes", len(prog))
	}
	var insts []bpf.Instruction
	for i := 0; i < len(prog); i += InstructionSize {
		r := bpf.RawInstruction{
			Op: binary.NativeEndian.Uint16(prog[i:]), Jt: prog[i+2], Jf: prog[i+3],
			K: binary.NativeEndian.Uint32(prog[i+4:]),
		}
		insts = append(insts, r.Disassemble())
	}
	v, err := bpf.NewVM(insts)
	if err != nil {
		t.Fatalf("interpreter refuses the program: %v", err)
	}
	return v
}

// seccompData lays out struct seccomp_data for the interpreter.
func seccompData(archID, nr uint32, args ...uint64) []byte {
	b := make([]byte, 64)
	word := func(off int, v uint32) { binary.BigEndian.PutUint32(b[off:], v) }
	word(offNr, nr)
	word(offArch, archID)
	for i, a := range args {
		lo, hi := 16+8*i, 16+8*i+4
		if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 { // big-endian machine
			lo, hi = hi, lo
		}
		word(lo, uint32(a))
		word(hi, uint32(a>>32))
	}
	return b
}

// decide runs the filter for one system call.
func decide(t *testing.T, v *bpf.VM, info *arch.Info, name string, args ...uint64) uint32 {
	t.Helper()
	n, ok := info.SyscallNames[name]
	if !ok {
		t.Fatalf("no syscall %q on %s", name, info.Name)
	}
	return decideNr(t, v, uint32(info.ID), uint32(n|info.SeccompMask), args...)
}

func decideNr(t *testing.T, v *bpf.VM, archID, nr uint32, args ...uint64) uint32 {
	t.Helper()
	out, err := v.Run(seccompData(archID, nr, args...))
	if err != nil {
		t.Fatalf("filter failed to run: %v", err)
	}
	return uint32(out)
}

const (
	allow  = unix.SECCOMP_RET_ALLOW
	eperm  = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	enosys = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	eacces = unix.SECCOMP_RET_ERRNO | uint32(unix.EACCES)
)

func compileDefault(t *testing.T, caps ...string) *bpf.VM {
	t.Helper()
	p, err := RuntimeDefault(procWith(caps...))
	if err != nil {
		t.Fatal(err)
	}
	prog, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	return vm(t, prog)
}

// TestRuntimeDefault: the moby default profile's decisions, with the
// default capabilities and with CAP_SYS_ADMIN (its conditional rules).
func TestRuntimeDefault(t *testing.T) {
	if arch.X86_64.ID != mustNative(t).ID {
		t.Skip("expectations are written for x86-64") // the logic tier runs on amd64 here and in CI
	}
	const (
		cloneNewUser = unix.CLONE_NEWUSER
		threadFlags  = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_THREAD
	)
	def := compileDefault(t, defaultCaps...)
	admin := compileDefault(t, append(defaultCaps, "CAP_SYS_ADMIN")...)
	tests := []struct {
		name string
		v    *bpf.VM
		info *arch.Info
		call string
		args []uint64
		want uint32
	}{
		{"read", def, arch.X86_64, "read", nil, allow},
		{"execve", def, arch.X86_64, "execve", nil, allow},
		{"unshare", def, arch.X86_64, "unshare", []uint64{cloneNewUser}, eperm},
		{"mount", def, arch.X86_64, "mount", nil, eperm},
		{"keyctl", def, arch.X86_64, "keyctl", nil, eperm},
		{"clone thread", def, arch.X86_64, "clone", []uint64{threadFlags}, allow},
		{"clone newuser", def, arch.X86_64, "clone", []uint64{cloneNewUser}, eperm},
		{"clone newuser high bits", def, arch.X86_64, "clone", []uint64{1<<40 | threadFlags}, allow},
		{"clone3 falls back", def, arch.X86_64, "clone3", nil, enosys},
		{"socket inet", def, arch.X86_64, "socket", []uint64{unix.AF_INET}, allow},
		{"socket unix", def, arch.X86_64, "socket", []uint64{unix.AF_UNIX}, allow},
		{"socket vsock", def, arch.X86_64, "socket", []uint64{unix.AF_VSOCK}, eperm},
		{"socket inet high word", def, arch.X86_64, "socket", []uint64{1<<32 | unix.AF_INET}, eperm},
		{"personality linux", def, arch.X86_64, "personality", []uint64{0}, allow},
		{"personality query", def, arch.X86_64, "personality", []uint64{0xffffffff}, allow},
		{"personality other", def, arch.X86_64, "personality", []uint64{0x0400000}, eperm},
		{"chroot with SYS_CHROOT", def, arch.X86_64, "chroot", nil, allow},
		{"i386 read", def, arch.I386, "read", nil, allow},
		{"i386 unshare", def, arch.I386, "unshare", nil, eperm},
		{"x32 read", def, arch.X32, "read", nil, allow},
		{"x32 unshare", def, arch.X32, "unshare", nil, eperm},
		{"admin unshare", admin, arch.X86_64, "unshare", []uint64{cloneNewUser}, allow},
		{"admin mount", admin, arch.X86_64, "mount", nil, allow},
		{"admin clone newuser", admin, arch.X86_64, "clone", []uint64{cloneNewUser}, allow},
		{"admin clone3", admin, arch.X86_64, "clone3", nil, allow},
		{"admin keyctl", admin, arch.X86_64, "keyctl", nil, eperm},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decide(t, tt.v, tt.info, tt.call, tt.args...); got != tt.want {
				t.Errorf("%s(%#x) on %s = %#x, want %#x", tt.call, tt.args, tt.info.Name, got, tt.want)
			}
		})
	}
	// Beyond every syscall the profile names: ENOSYS, so libc falls back.
	if got := decideNr(t, def, uint32(arch.X86_64.ID), 1000); got != enosys {
		t.Errorf("syscall 1000 = %#x, want ENOSYS", got)
	}
	// An architecture the profile does not list is killed.
	if got := decideNr(t, def, uint32(arch.AARCH64.ID), 63); got != unix.SECCOMP_RET_KILL_PROCESS {
		t.Errorf("aarch64 read = %#x, want kill", got)
	}
}

func mustNative(t *testing.T) *arch.Info {
	t.Helper()
	a, err := nativeArch()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestCompileSemantics: libseccomp's rules as runc applies them.
func TestCompileSemantics(t *testing.T) {
	native := mustNative(t)
	u := func(v uint) *uint { return &v }
	tests := []struct {
		name string
		p    specs.LinuxSeccomp
		call string
		args []uint64
		want uint32
	}{
		{"errno with errnoRet", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: u(uint(unix.EACCES))}}}, "mkdirat", nil, eacces},
		{"errno defaults to EPERM", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdirat"}, Action: specs.ActErrno}}}, "mkdirat", nil, eperm},
		{"default errnoRet", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: u(uint(unix.EACCES)), Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read"}, Action: specs.ActAllow}}}, "openat", nil, eacces},
		{"unknown names skipped", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"no_such_call", "read"}, Action: specs.ActAllow}}}, "read", nil, allow},
		{"rule with the default action dropped", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read"}, Action: specs.ActAllow},
			{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 3, Op: specs.OpEqualTo}}}}}, "read", []uint64{3}, eperm},
		{"argument rule before unconditional", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read"}, Action: specs.ActKillProcess},
			{Names: []string{"read"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 3, Op: specs.OpEqualTo}}}}}, "read", []uint64{3}, allow},
		{"unconditional after failed argument rule", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read"}, Action: specs.ActKillProcess},
			{Names: []string{"read"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 3, Op: specs.OpEqualTo}}}}}, "read", []uint64{4}, unix.SECCOMP_RET_KILL_PROCESS},
		{"masked equal with datum", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 1, Value: 0xf0, ValueTwo: 0x50, Op: specs.OpMaskedEqual}}}}}, "read", []uint64{0, 0x15f}, allow},
		{"masked equal datum bit missing", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 1, Value: 0xf0, ValueTwo: 0x50, Op: specs.OpMaskedEqual}}}}}, "read", []uint64{0, 0x140}, eperm},
		{"masked equal extra bit", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 1, Value: 0xf0, ValueTwo: 0x50, Op: specs.OpMaskedEqual}}}}}, "read", []uint64{0, 0x1d0}, eperm},
		{"impossible masked equal", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0x0f, ValueTwo: 0x10, Op: specs.OpMaskedEqual}}}}}, "read", []uint64{0x1f}, eperm},
		{"two args AND", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1, Op: specs.OpEqualTo}, {Index: 2, Value: 10, Op: specs.OpLessThan}}}}}, "read", []uint64{1, 0, 11}, eperm},
		{"64-bit greater", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 2, Value: 1 << 33, Op: specs.OpGreaterThan}}}}}, "read", []uint64{0, 0, 1<<33 + 1}, allow},
		{"default allow: no ENOSYS stub", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read"}, Action: specs.ActErrno}}}, "", nil, allow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prog, err := Compile(&tt.p)
			if err != nil {
				t.Fatal(err)
			}
			v := vm(t, prog)
			var got uint32
			if tt.call == "" {
				got = decideNr(t, v, uint32(native.ID), 1000, tt.args...)
			} else {
				got = decide(t, v, native, tt.call, tt.args...)
			}
			if got != tt.want {
				t.Errorf("got %#x, want %#x", got, tt.want)
			}
		})
	}
}

// TestCompileRefuses: what cannot become a filter is an error naming it.
func TestCompileRefuses(t *testing.T) {
	tests := []struct {
		name string
		p    *specs.LinuxSeccomp
		want string
	}{
		{"nil", nil, "no seccomp profile"},
		{"unknown default", &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_MAYBE"}, `defaultAction: unknown action "SCMP_ACT_MAYBE"`},
		{"notify", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActNotify}}}, "syscalls[0]: action SCMP_ACT_NOTIFY needs a seccomp agent"},
		{"bad operator", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Op: "SCMP_CMP_ABOUT"}}}}}, `syscalls[0]: unknown operator "SCMP_CMP_ABOUT"`},
		{"bad index", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}}, "argument index 6 is out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Compile = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestLocalhost: a profile is read beneath its directory only.
func TestLocalhost(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "seccomp")
	if err := os.MkdirAll(filepath.Join(dir, "profiles"), 0o755); err != nil {
		t.Fatal(err)
	}
	profile := `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}`
	for name, body := range map[string]string{"profiles/deny-mkdir.json": profile, "../outside.json": profile, "bad.json": "{", "empty.json": "{}"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{"in-link.json": "profiles/deny-mkdir.json", "out-link.json": "../outside.json", "abs-link.json": filepath.Join(root, "outside.json")} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	for _, rel := range []string{"profiles/deny-mkdir.json", "in-link.json"} {
		p, err := Localhost(dir, rel, procWith(defaultCaps...))
		if err != nil {
			t.Fatalf("Localhost(%q): %v", rel, err)
		}
		prog, err := Compile(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := decide(t, vm(t, prog), mustNative(t), "mkdirat"); got != eacces {
			t.Errorf("%s: mkdirat = %#x, want EACCES", rel, got)
		}
	}
	if p, err := Localhost(dir, "empty.json", nil); err != nil || p != nil {
		t.Errorf("empty profile = %v, %v; want no filter", p, err)
	}
	for rel, want := range map[string]string{
		"missing.json":       "no such file or directory",
		"../outside.json":    "outside the seccomp directory",
		"out-link.json":      "outside the seccomp directory",
		"abs-link.json":      "outside the seccomp directory",
		"/etc/passwd":        "outside the seccomp directory",
		"bad.json":           "Decoding seccomp profile failed",
		"profiles":           "not a regular file",
		"profiles/../../x":   "outside the seccomp directory",
		"profiles/../x.json": "no such file or directory",
	} {
		_, err := Localhost(dir, rel, nil)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "cannot load seccomp profile") {
			t.Errorf("Localhost(%q) = %v, want an error with %q", rel, err, want)
		}
	}
}

// BenchmarkCompileRuntimeDefault: what `run` pays per distinct profile and
// capability set (generating the default profile and compiling it).
func BenchmarkCompileRuntimeDefault(b *testing.B) {
	proc := procWith(defaultCaps...)
	for b.Loop() {
		p, err := RuntimeDefault(proc)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Compile(p); err != nil {
			b.Fatal(err)
		}
	}
}

// reference decides a syscall the plain way, rule by rule, as the compiled
// program must: argument rules in profile order, then the first
// unconditional one, then ENOSYS beyond the profile's newest syscall, then
// the default.
func reference(t *testing.T, p *specs.LinuxSeccomp, info *arch.Info, nr uint32, args []uint64) uint32 {
	t.Helper()
	def, err := actionRet(p.DefaultAction, p.DefaultErrnoRet)
	if err != nil {
		t.Fatal(err)
	}
	var maxNr uint32
	var uncond *uint32
	var found *uint32
	for _, sc := range p.Syscalls {
		ret, err := actionRet(sc.Action, sc.ErrnoRet)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range sc.Names {
			n, ok := info.SyscallNames[name]
			if !ok {
				continue
			}
			num := uint32(n | info.SeccompMask)
			maxNr = max(maxNr, num)
			if num != nr || ret == def {
				continue
			}
			if len(sc.Args) == 0 {
				if uncond == nil {
					uncond = &ret
				}
				continue
			}
			if found == nil && argsHold(sc.Args, args) {
				found = &ret
			}
		}
	}
	switch {
	case found != nil:
		return *found
	case uncond != nil:
		return *uncond
	case enosysStub(def) && nr > maxNr:
		return enosys
	}
	return def
}

// argsHold evaluates a rule's comparisons on 64-bit arguments.
func argsHold(conds []specs.LinuxSeccompArg, args []uint64) bool {
	for _, c := range conds {
		var a uint64
		if int(c.Index) < len(args) {
			a = args[c.Index]
		}
		var ok bool
		switch c.Op {
		case specs.OpEqualTo:
			ok = a == c.Value
		case specs.OpNotEqual:
			ok = a != c.Value
		case specs.OpLessThan:
			ok = a < c.Value
		case specs.OpLessEqual:
			ok = a <= c.Value
		case specs.OpGreaterThan:
			ok = a > c.Value
		case specs.OpGreaterEqual:
			ok = a >= c.Value
		case specs.OpMaskedEqual:
			ok = a&c.Value == c.ValueTwo
		}
		if !ok {
			return false
		}
	}
	return true
}

// TestCompileMatchesReference: for every syscall number of each
// architecture (and past the newest) and a spread of arguments, the
// compiled default profile decides as the plain rule-by-rule reading.
func TestCompileMatchesReference(t *testing.T) {
	if arch.X86_64.ID != mustNative(t).ID {
		t.Skip("the profile's sub-architectures are x86's")
	}
	argSets := [][]uint64{nil, {unix.CLONE_NEWUSER}, {unix.AF_INET}, {unix.AF_VSOCK}, {0xffffffff}, {1 << 40}, {8, 1, 2}}
	for _, caps := range [][]string{defaultCaps, append(slices.Clone(defaultCaps), "CAP_SYS_ADMIN", "CAP_SYS_PTRACE")} {
		p, err := RuntimeDefault(procWith(caps...))
		if err != nil {
			t.Fatal(err)
		}
		prog, err := Compile(p)
		if err != nil {
			t.Fatal(err)
		}
		v := vm(t, prog)
		for _, info := range []*arch.Info{arch.X86_64, arch.I386, arch.X32} {
			for n := 0; n < 600; n++ {
				nr := uint32(n | info.SeccompMask)
				for _, args := range argSets {
					want := reference(t, p, info, nr, args)
					if got := decideNr(t, v, uint32(info.ID), nr, args...); got != want {
						t.Fatalf("caps %d, %s syscall %d (%s) args %#x: got %#x, want %#x", len(caps), info.Name, n, info.SyscallNumbers[n], args, got, want)
					}
				}
			}
		}
	}
}

// TestLocalhostFile: a profile at an absolute host path (the CRI's
// localhost_ref): symlinks are followed, as containerd follows them;
// relative and unclean paths, /proc magic links, what is not a regular
// file and what is too large are refused, naming the path.
func TestLocalhostFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "deny-mkdir.json")
	if err := os.WriteFile(good, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(good, filepath.Join(dir, "link.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "huge.json"), make([]byte, maxProfileSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(dir, "fifo.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(good)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	magic := fmt.Sprintf("/proc/self/fd/%d", f.Fd())
	for _, path := range []string{good, filepath.Join(dir, "link.json")} {
		p, err := LocalhostFile(path, procWith(defaultCaps...))
		if err != nil {
			t.Fatalf("LocalhostFile(%q): %v", path, err)
		}
		prog, err := Compile(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := decide(t, vm(t, prog), mustNative(t), "mkdirat"); got != eacces {
			t.Errorf("%s: mkdirat = %#x, want EACCES", path, got)
		}
	}
	for path, want := range map[string]string{
		"deny-mkdir.json":                  "not a clean absolute path",
		"../../etc/shadow":                 "not a clean absolute path",
		dir + "/../" + filepath.Base(dir):  "not a clean absolute path",
		dir + "//deny-mkdir.json":          "not a clean absolute path",
		"":                                 "not a clean absolute path",
		filepath.Join(dir, "missing.json"): "no such file or directory",
		dir:                                "not a regular file",
		filepath.Join(dir, "fifo.json"):    "not a regular file",
		filepath.Join(dir, "huge.json"):    "larger than",
		magic:                              "too many levels of symbolic links",
	} {
		_, err := LocalhostFile(path, nil)
		if err == nil || !errors.Is(err, ErrProfile) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), fmt.Sprintf("%q", path)) {
			t.Errorf("LocalhostFile(%q) = %v, want an ErrProfile naming it with %q", path, err, want)
		}
	}
}
