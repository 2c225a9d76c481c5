package seccomp

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"slices"

	"github.com/elastic/go-seccomp-bpf/arch"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// MaxInstructions is the kernel's limit on one filter (BPF_MAXINSNS).
const MaxInstructions = 4096

// InstructionSize is the size of one struct sock_filter.
const InstructionSize = 8

// Offsets in struct seccomp_data.
const (
	offNr   = 0
	offArch = 4
)

// x32Bit marks an x32 system call number (__X32_SYSCALL_BIT); x32 shares
// AUDIT_ARCH_X86_64 with the 64-bit ABI, so only this bit tells them apart.
const x32Bit = 0x40000000

// retBadArch ends a process calling with an architecture the profile does
// not list, as libseccomp's default bad-architecture action does.
const retBadArch = unix.SECCOMP_RET_KILL_PROCESS

// archByName maps the OCI architecture names this package has syscall
// tables for. A profile may list others (a multi-platform profile naming
// ppc64le): the kernel never reports them on this machine, so they are
// skipped.
var archByName = map[specs.Arch]*arch.Info{
	specs.ArchX86_64:  arch.X86_64,
	specs.ArchX86:     arch.I386,
	specs.ArchX32:     arch.X32,
	specs.ArchAARCH64: arch.AARCH64,
	specs.ArchARM:     arch.ARM,
}

// nativeArch is this machine's architecture, which libseccomp always adds
// to a filter.
func nativeArch() (*arch.Info, error) {
	return arch.GetInfo(runtime.GOARCH)
}

// rule is one syscall rule of one architecture after name resolution.
type rule struct {
	// ret is the seccomp return value (action | data).
	ret uint32
	// args are the argument comparisons, all of which must hold; none
	// means the rule matches the syscall unconditionally.
	args []specs.LinuxSeccompArg
}

// section is the part of the program for one architecture.
type section struct {
	// info is the architecture.
	info *arch.Info
	// order lists syscall numbers (with info.SeccompMask) in the order
	// the profile first names them.
	order []uint32
	// rules holds each syscall's rules in profile order.
	rules map[uint32][]rule
	// max is the largest syscall number the profile names, for the ENOSYS
	// stub (0 when it names none).
	max uint32
}

// sections resolves p's rules for each architecture it filters.
func sections(p *specs.LinuxSeccomp, def uint32) ([]*section, error) {
	native, err := nativeArch()
	if err != nil {
		return nil, err
	}
	infos := []*arch.Info{native}
	for _, a := range p.Architectures {
		info, ok := archByName[a]
		if ok && !slices.Contains(infos, info) {
			infos = append(infos, info)
		}
	}
	var out []*section
	for _, info := range infos {
		s := &section{info: info, rules: map[uint32][]rule{}}
		for i, sc := range p.Syscalls {
			if err := s.add(sc, def); err != nil {
				return nil, fmt.Errorf("syscalls[%d]: %w", i, err)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// add resolves one profile rule for s's architecture.
func (s *section) add(sc specs.LinuxSyscall, def uint32) error {
	ret, err := actionRet(sc.Action, sc.ErrnoRet)
	if err != nil {
		return err
	}
	for _, a := range sc.Args {
		if err := checkArg(a); err != nil {
			return err
		}
	}
	for _, name := range sc.Names {
		n, known := s.info.SyscallNames[name]
		if !known {
			continue // libseccomp skips a name this architecture lacks
		}
		nr := uint32(n | s.info.SeccompMask)
		s.max = max(s.max, nr)
		// libseccomp refuses, and runc skips, a rule with the default action.
		if ret == def {
			continue
		}
		if _, seen := s.rules[nr]; !seen {
			s.order = append(s.order, nr)
		}
		s.rules[nr] = append(s.rules[nr], rule{ret: ret, args: sc.Args})
	}
	return nil
}

// assemble emits the section: load the number (and, for x86-64, the x32
// test, filled in by withX32Jump), then a binary search over the syscall
// numbers the profile decides, each leading to its return value or to the
// block of its argument rules; a number the search does not find reaches
// the ENOSYS stub and the default action.
//
// A search, not libseccomp's default linear list: the kernel runs the
// filter on every system call the cache cannot answer, and when loading it
// emulates the filter once per syscall number to fill that cache
// (seccomp_cache_prepare). With the default profile's ~400 numbers a list
// costs hundreds of instructions per lookup, which made every container
// start and exec about a millisecond slower; the search costs about 20.
func (s *section) assemble(def uint32) ([]bpf.Instruction, error) {
	var entries []entry
	var blocks [][]bpf.Instruction
	for _, nr := range s.order {
		rs := s.rules[nr]
		if len(rs) == 1 && len(rs[0].args) == 0 {
			entries = append(entries, entry{nr: nr, ret: rs[0].ret, block: -1})
			continue
		}
		block, err := syscallBlock(rs, def)
		if err != nil {
			return nil, fmt.Errorf("syscall %s: %w", s.info.SyscallNumbers[int(nr&^uint32(s.info.SeccompMask))], err)
		}
		entries = append(entries, entry{nr: nr, block: len(blocks)})
		blocks = append(blocks, block)
	}
	slices.SortFunc(entries, func(a, b entry) int { return cmp.Compare(a.nr, b.nr) })
	e := &emitter{prog: []bpf.Instruction{bpf.LoadAbsolute{Off: offNr, Size: 4}}}
	if s.info == arch.X86_64 {
		// Placeholders for withX32Jump: below the x32 bit, skip the jump.
		e.prog = append(e.prog, bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: x32Bit, SkipTrue: 0, SkipFalse: 1}, bpf.Jump{})
	}
	e.tree(entries)
	// The tail. The number is still in A: the search only jumps.
	targets := map[int]int{labelTail: len(e.prog)}
	if enosysStub(def) && s.max > 0 {
		e.prog = append(e.prog,
			bpf.JumpIf{Cond: bpf.JumpGreaterThan, Val: s.max, SkipTrue: 1},
			bpf.RetConstant{Val: def},
			bpf.RetConstant{Val: unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)})
	} else {
		e.prog = append(e.prog, bpf.RetConstant{Val: def})
	}
	for k, b := range blocks {
		targets[k] = len(e.prog)
		e.prog = append(e.prog, b...)
	}
	for _, f := range e.fixups {
		e.prog[f.at] = bpf.Jump{Skip: uint32(targets[f.label] - f.at - 1)}
	}
	return e.prog, nil
}

// entry is how a section decides one syscall number.
type entry struct {
	// nr is the number (with the architecture's mask).
	nr uint32
	// ret is the return value when block is -1.
	ret uint32
	// block indexes the argument-rule block deciding it, or is -1.
	block int
}

// labelTail is the fixup label of a section's tail; blocks are labelled
// by their index.
const labelTail = -1

// leafSize is the most numbers a leaf of the search tests one by one.
const leafSize = 8

// fixup is a long jump whose target is known only once the section is laid out.
type fixup struct {
	// at is the jump's index.
	at int
	// label is labelTail or a block index.
	label int
}

// emitter lays out a section's search.
type emitter struct {
	// prog is the section so far.
	prog []bpf.Instruction
	// fixups are the long jumps to patch.
	fixups []fixup
}

// longJump emits an unconditional jump to label, patched later.
func (e *emitter) longJump(label int) {
	e.fixups = append(e.fixups, fixup{at: len(e.prog), label: label})
	e.prog = append(e.prog, bpf.Jump{})
}

// tree emits the search over es, sorted by number: a split per level, as
// a short test over a long jump (a subtree can be longer than a
// conditional jump reaches), down to leaves of at most leafSize.
func (e *emitter) tree(es []entry) {
	if len(es) <= leafSize {
		e.leaf(es)
		return
	}
	mid := len(es) / 2
	e.prog = append(e.prog, bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: es[mid].nr, SkipTrue: 0, SkipFalse: 1})
	toRight := len(e.prog)
	e.prog = append(e.prog, bpf.Jump{})
	e.tree(es[:mid])
	e.prog[toRight] = bpf.Jump{Skip: uint32(len(e.prog) - toRight - 1)}
	e.tree(es[mid:])
}

// leaf tests each number of es (at most leafSize) and jumps to its stub:
// a return shared by the numbers with the same value, or a long jump to a
// block; a number not there goes on to the tail.
func (e *emitter) leaf(es []entry) {
	type stub struct {
		ret   uint32
		block int
	}
	var stubs []stub
	index := map[stub]int{}
	for _, en := range es {
		st := stub{ret: en.ret, block: en.block}
		if en.block >= 0 {
			st.ret = 0
		}
		if _, ok := index[st]; !ok {
			index[st] = len(stubs)
			stubs = append(stubs, st)
		}
	}
	for i, en := range es {
		st := stub{ret: en.ret, block: en.block}
		if en.block >= 0 {
			st.ret = 0
		}
		// Past the remaining tests and the jump to the tail, to the stub.
		skip := len(es) - i - 1 + 1 + index[st]
		e.prog = append(e.prog, bpf.JumpIf{Cond: bpf.JumpEqual, Val: en.nr, SkipTrue: uint8(skip)})
	}
	e.longJump(labelTail)
	for _, st := range stubs {
		if st.block >= 0 {
			e.longJump(st.block)
			continue
		}
		e.prog = append(e.prog, bpf.RetConstant{Val: st.ret})
	}
}

// syscallBlock decides one syscall that has argument rules: each argument
// rule in profile order, then its first unconditional rule (libseccomp's
// fall-through action for the syscall), else the default action. The block
// always returns.
func syscallBlock(rs []rule, def uint32) ([]bpf.Instruction, error) {
	var out []bpf.Instruction
	fallthroughRet := def
	haveUncond := false
	for _, r := range rs {
		if len(r.args) == 0 {
			if !haveUncond {
				fallthroughRet, haveUncond = r.ret, true
			}
			continue
		}
		code, err := ruleCode(r)
		if err != nil {
			return nil, err
		}
		out = append(out, code...)
	}
	return append(out, bpf.RetConstant{Val: fallthroughRet}), nil
}

// fail marks a jump to the end of a rule's code (the rule does not match),
// patched by ruleCode once the length is known.
const fail = 0xff

// ruleCode returns r's return when every comparison holds and otherwise
// falls through past its end.
func ruleCode(r rule) ([]bpf.Instruction, error) {
	var code []bpf.Instruction
	for _, a := range r.args {
		code = append(code, compare(a)...)
	}
	code = append(code, bpf.RetConstant{Val: r.ret})
	if len(code) > 255 {
		return nil, fmt.Errorf("a rule of %d instructions is too long", len(code))
	}
	for i, inst := range code {
		j, ok := inst.(bpf.JumpIf)
		if !ok {
			continue
		}
		// To just past the last instruction, the return.
		if j.SkipTrue == fail {
			j.SkipTrue = uint8(len(code) - i - 1)
		}
		if j.SkipFalse == fail {
			j.SkipFalse = uint8(len(code) - i - 1)
		}
		code[i] = j
	}
	return code, nil
}

// compare tests one 64-bit argument as two 32-bit words (classic BPF has
// no wider loads), high word first, as libseccomp does on 64-bit
// architectures. It falls through when the comparison holds and jumps to
// fail otherwise. "pass" skips are counted to the end of the sequence.
func compare(a specs.LinuxSeccompArg) []bpf.Instruction {
	hi, lo := loadArg(a.Index)
	vh, vl := uint32(a.Value>>32), uint32(a.Value)
	switch a.Op {
	case specs.OpEqualTo:
		return []bpf.Instruction{hi, jeq(vh, 0, fail), lo, jeq(vl, 0, fail)}
	case specs.OpNotEqual:
		return []bpf.Instruction{hi, jeq(vh, 0, 2), lo, jeq(vl, fail, 0)}
	case specs.OpGreaterThan:
		return []bpf.Instruction{hi, jgt(vh, 3, 0), jeq(vh, 0, fail), lo, jgt(vl, 0, fail)}
	case specs.OpGreaterEqual:
		return []bpf.Instruction{hi, jgt(vh, 3, 0), jeq(vh, 0, fail), lo, jge(vl, 0, fail)}
	case specs.OpLessThan:
		return []bpf.Instruction{hi, jge(vh, 0, 3), jeq(vh, 0, fail), lo, jge(vl, fail, 0)}
	case specs.OpLessEqual:
		return []bpf.Instruction{hi, jge(vh, 0, 3), jeq(vh, 0, fail), lo, jgt(vl, fail, 0)}
	case specs.OpMaskedEqual:
		// (arg & Value) == ValueTwo, word by word.
		mh, ml := uint32(a.ValueTwo>>32), uint32(a.ValueTwo)
		return []bpf.Instruction{
			hi, bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: vh}, jeq(mh, 0, fail),
			lo, bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: vl}, jeq(ml, 0, fail),
		}
	}
	panic("unchecked operator " + string(a.Op)) // checkArg refused it
}

func jeq(v uint32, t, f uint8) bpf.Instruction {
	return bpf.JumpIf{Cond: bpf.JumpEqual, Val: v, SkipTrue: t, SkipFalse: f}
}

func jgt(v uint32, t, f uint8) bpf.Instruction {
	return bpf.JumpIf{Cond: bpf.JumpGreaterThan, Val: v, SkipTrue: t, SkipFalse: f}
}

func jge(v uint32, t, f uint8) bpf.Instruction {
	return bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: v, SkipTrue: t, SkipFalse: f}
}

// loadArg loads the high and the low word of argument i, which sit in
// native byte order in seccomp_data's u64 args[6] at offset 16.
func loadArg(i uint) (hi, lo bpf.Instruction) {
	off := uint32(16 + 8*i)
	hiOff, loOff := off+4, off
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 { // big-endian
		hiOff, loOff = off, off+4
	}
	return bpf.LoadAbsolute{Off: hiOff, Size: 4}, bpf.LoadAbsolute{Off: loOff, Size: 4}
}

// checkArg refuses a comparison Compile cannot emit.
func checkArg(a specs.LinuxSeccompArg) error {
	if a.Index > 5 {
		return fmt.Errorf("argument index %d is out of range 0-5", a.Index)
	}
	switch a.Op {
	case specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual,
		specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpMaskedEqual:
		return nil
	}
	return fmt.Errorf("unknown operator %q", a.Op)
}

// enosysStub reports whether unknown newer syscalls get ENOSYS: not when
// the default already lets everything through.
func enosysStub(def uint32) bool {
	switch def & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_ALLOW, unix.SECCOMP_RET_LOG:
		return false
	}
	return true
}

// actionRet is the seccomp return value of an OCI action.
func actionRet(a specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	data := uint32(unix.EPERM)
	if errnoRet != nil {
		if *errnoRet > unix.SECCOMP_RET_DATA {
			return 0, fmt.Errorf("errnoRet %d is out of range", *errnoRet)
		}
		data = uint32(*errnoRet)
	}
	switch a {
	case specs.ActAllow:
		return unix.SECCOMP_RET_ALLOW, nil
	case specs.ActErrno:
		return unix.SECCOMP_RET_ERRNO | data, nil
	case specs.ActTrace:
		return unix.SECCOMP_RET_TRACE | data, nil
	case specs.ActKill, specs.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD, nil
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, nil
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP, nil
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG, nil
	case specs.ActNotify:
		return 0, fmt.Errorf("action %s needs a seccomp agent, which peapod does not run", a)
	}
	return 0, fmt.Errorf("unknown action %q", a)
}

// Compile assembles p into the raw sock_filter array seccomp(2) loads,
// native-endian, InstructionSize bytes per instruction. It follows
// libseccomp's semantics as runc uses it: the native architecture is always
// filtered, names unknown to an architecture are skipped, rules whose action
// is the default action are dropped, a syscall's argument rules are tried
// before its unconditional rule, SCMP_ACT_ERRNO without errnoRet is EPERM,
// and a syscall newer than every one the profile names gets ENOSYS instead
// of the default action (runc's patchbpf), so that programs fall back from
// system calls the profile predates instead of failing on EPERM.
func Compile(p *specs.LinuxSeccomp) ([]byte, error) {
	insts, err := assemble(p)
	if err != nil {
		return nil, err
	}
	raw, err := bpf.Assemble(insts)
	if err != nil {
		return nil, fmt.Errorf("failed to assemble seccomp filter: %w", err)
	}
	if len(raw) > MaxInstructions {
		return nil, fmt.Errorf("seccomp filter has %d instructions, more than the kernel's %d", len(raw), MaxInstructions)
	}
	out := make([]byte, 0, len(raw)*InstructionSize)
	for _, r := range raw {
		out = binary.NativeEndian.AppendUint16(out, r.Op)
		out = append(out, r.Jt, r.Jf)
		out = binary.NativeEndian.AppendUint32(out, r.K)
	}
	return out, nil
}

// assemble builds the program: load the architecture, jump to its section
// (or kill for an unlisted one); each section loads the syscall number and
// decides it. The x32 section comes last, reached from the x86-64 one.
func assemble(p *specs.LinuxSeccomp) ([]bpf.Instruction, error) {
	if p == nil {
		return nil, errors.New("no seccomp profile to compile")
	}
	def, err := actionRet(p.DefaultAction, p.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("defaultAction: %w", err)
	}
	secs, err := sections(p, def)
	if err != nil {
		return nil, err
	}
	var x32 []bpf.Instruction
	var bodies [][]bpf.Instruction
	var ids []uint32
	for _, s := range secs {
		body, err := s.assemble(def)
		if err != nil {
			return nil, fmt.Errorf("arch %s: %w", s.info.Name, err)
		}
		if s.info == arch.X32 {
			x32 = body
			continue
		}
		bodies = append(bodies, body)
		ids = append(ids, uint32(s.info.ID))
	}
	// The dispatch: per architecture a short test over a long jump (a
	// section is longer than a conditional jump reaches), then the
	// bad-architecture return.
	prog := []bpf.Instruction{bpf.LoadAbsolute{Off: offArch, Size: 4}}
	start := 1 + 2*len(bodies) + 1 // where the first section begins
	for i, body := range bodies {
		jump := 2 + 2*i // index of this architecture's long jump
		prog = append(prog,
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: ids[i], SkipTrue: 0, SkipFalse: 1},
			bpf.Jump{Skip: uint32(start - jump - 1)})
		start += len(body)
	}
	prog = append(prog, bpf.RetConstant{Val: retBadArch})
	for i, body := range bodies {
		if ids[i] == uint32(arch.X86_64.ID) {
			// start is now where the x32 section will begin.
			body = withX32Jump(body, start-len(prog), x32 != nil)
		}
		prog = append(prog, body...)
	}
	return append(prog, x32...), nil
}

// withX32Jump fills the x86-64 section's x32 test (instructions 1 and 2):
// a number with the x32 bit jumps to the x32 section, which begins
// distance instructions after the section's start, or is killed when the
// profile does not list x32 (libseccomp's bad-architecture action).
func withX32Jump(body []bpf.Instruction, distance int, haveX32 bool) []bpf.Instruction {
	body = slices.Clone(body)
	if haveX32 {
		body[2] = bpf.Jump{Skip: uint32(distance - 3)}
	} else {
		body[2] = bpf.RetConstant{Val: retBadArch}
	}
	return body
}
