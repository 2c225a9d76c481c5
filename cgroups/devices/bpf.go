package devices

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/ktrace"
)

// Fields of struct bpf_cgroup_dev_ctx (include/uapi/linux/bpf.h), the
// context of a BPF_PROG_TYPE_CGROUP_DEVICE program.
const (
	// ctxAccessType holds the device type in its low 16 bits and the
	// requested access in its high 16 bits.
	ctxAccessType = 0
	ctxMajor      = 4
	ctxMinor      = 8
	// BPF_DEVCG_DEV_BLOCK and BPF_DEVCG_DEV_CHAR.
	devBlock = 1
	devChar  = 2
	// BPF_DEVCG_ACC_MKNOD, _READ and _WRITE.
	accMknod = 1
	accRead  = 2
	accWrite = 4
)

// denyLabel marks the program's final "deny" block.
const denyLabel = "deny"

// program compiles rules into a device program that returns 1 (allow) when
// some rule matches the device and grants every requested access, else 0.
func program(rules []Rule) asm.Instructions {
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, ctxAccessType, asm.Word),
		asm.And.Imm(asm.R2, 0xffff), // R2 = device type
		asm.LoadMem(asm.R3, asm.R1, ctxAccessType, asm.Word),
		asm.RSh.Imm(asm.R3, 16), // R3 = requested access
		asm.LoadMem(asm.R4, asm.R1, ctxMajor, asm.Word),
		asm.LoadMem(asm.R5, asm.R1, ctxMinor, asm.Word),
	}
	for i, r := range rules {
		next := denyLabel
		if i+1 < len(rules) {
			next = fmt.Sprintf("rule%d", i+1)
		}
		block := ruleBlock(r, next)
		if i > 0 {
			block[0] = block[0].WithSymbol(fmt.Sprintf("rule%d", i))
		}
		insns = append(insns, block...)
		if r.matchesAll() {
			// Nothing after it can be reached, and the verifier refuses
			// a program with unreachable instructions.
			return insns
		}
	}
	return append(insns,
		asm.Mov.Imm(asm.R0, 0).WithSymbol(denyLabel),
		asm.Return(),
	)
}

// ruleBlock returns 1 when r matches, and jumps to next otherwise.
func ruleBlock(r Rule, next string) asm.Instructions {
	var b asm.Instructions
	switch r.Type {
	case Char:
		b = append(b, asm.JNE.Imm(asm.R2, devChar, next))
	case Block:
		b = append(b, asm.JNE.Imm(asm.R2, devBlock, next))
	}
	// A request asking for any access the rule lacks does not match.
	if denied := (accMknod | accRead | accWrite) &^ accessBits(r.Access); denied != 0 {
		b = append(b, asm.JSet.Imm(asm.R3, int32(denied), next))
	}
	if r.Major != Wildcard {
		b = append(b, asm.JNE.Imm(asm.R4, int32(r.Major), next))
	}
	if r.Minor != Wildcard {
		b = append(b, asm.JNE.Imm(asm.R5, int32(r.Minor), next))
	}
	return append(b, asm.Mov.Imm(asm.R0, 1), asm.Return())
}

// matchesAll reports whether r allows every device and access, so that its
// block has no jump out.
func (r Rule) matchesAll() bool {
	return r.Type == All && r.Major == Wildcard && r.Minor == Wildcard && accessBits(r.Access) == accMknod|accRead|accWrite
}

func accessBits(access string) int {
	bits := 0
	for _, c := range access {
		switch c {
		case 'r':
			bits |= accRead
		case 'w':
			bits |= accWrite
		case 'm':
			bits |= accMknod
		}
	}
	return bits
}

// applyBPF loads the program and attaches it to the cgroup at dir.
//
// It uses the legacy BPF_PROG_ATTACH rather than a bpf_link: the cgroup's
// attachment holds its own reference to the program, so the filter stays in
// force after this (CLI) process closes its fds and exits, and goes away
// with the cgroup when the cgroup is removed. A bpf_link would detach when
// its last fd closes unless pinned in bpffs, and a pin is one more host
// object to clean up after a crash. BPF_F_ALLOW_MULTI composes with the
// programs ancestors carry (each must allow) instead of overriding them.
//
// The new program is attached before the ones Apply attached earlier are
// detached, so the cgroup is never without a filter and Apply replaces.
func applyBPF(dir string, rules []Rule) error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.CGroupDevice,
		Instructions: program(rules),
		License:      "Apache-2.0",
	})
	if err != nil {
		return fmt.Errorf("failed to load device filter for cgroup %q: %w", dir, err)
	}
	defer prog.Close()
	cg, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("failed to open cgroup %q: %w", dir, err)
	}
	defer cg.Close()
	old, err := link.QueryPrograms(link.QueryOptions{Target: int(cg.Fd()), Attach: ebpf.AttachCGroupDevice})
	if err != nil {
		return fmt.Errorf("failed to list device filters of cgroup %q: %w", dir, err)
	}
	err = ktrace.Do("bpf attach", fmt.Sprintf("BPF_CGROUP_DEVICE filter (%d rules) to %s", len(rules), dir), func() error {
		return link.RawAttachProgram(link.RawAttachProgramOptions{
			Target:  int(cg.Fd()),
			Program: prog,
			Attach:  ebpf.AttachCGroupDevice,
			Flags:   unix.BPF_F_ALLOW_MULTI,
		})
	})
	if err != nil {
		return fmt.Errorf("failed to attach device filter to cgroup %q: %w", dir, err)
	}
	return detachAll(int(cg.Fd()), dir, old.Programs)
}

// detachAll detaches the legacy-attached programs progs from the cgroup.
func detachAll(cgFD int, dir string, progs []link.AttachedProgram) error {
	var errs []error
	for _, ap := range progs {
		if _, isLink := ap.LinkID(); isLink {
			continue // owned by someone's bpf_link, not by Apply
		}
		p, err := ebpf.NewProgramFromID(ap.ID)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("failed to open device filter %d of cgroup %q: %w", ap.ID, dir, err))
			continue
		}
		err = ktrace.Do("bpf detach", fmt.Sprintf("BPF_CGROUP_DEVICE filter %d from %s", ap.ID, dir), func() error {
			return link.RawDetachProgram(link.RawDetachProgramOptions{Target: cgFD, Program: p, Attach: ebpf.AttachCGroupDevice})
		})
		p.Close()
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("failed to detach device filter %d from cgroup %q: %w", ap.ID, dir, err))
		}
	}
	return errors.Join(errs...)
}
