package devices

import (
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/cilium/ebpf/asm"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestRuleString(t *testing.T) {
	tests := []struct {
		rule Rule
		want string
	}{
		{Rule{Type: Char, Major: 1, Minor: 3, Access: "rwm"}, "c 1:3 rwm"},
		{Rule{Type: Char, Major: 136, Minor: Wildcard, Access: "rw"}, "c 136:* rw"},
		{Rule{Type: Block, Major: 254, Minor: 0, Access: "r"}, "b 254:0 r"},
		{Rule{Type: All, Major: Wildcard, Minor: Wildcard, Access: "m"}, "a *:* m"},
	}
	for _, tt := range tests {
		if got := tt.rule.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestRuleValidate(t *testing.T) {
	bad := []Rule{
		{Type: 'x', Major: 1, Minor: 3, Access: "rwm"},
		{Type: Char, Major: -2, Minor: 3, Access: "rwm"},
		{Type: Char, Major: 1, Minor: 1 << 31, Access: "rwm"},
		{Type: Char, Major: 1, Minor: 3, Access: ""},
		{Type: Char, Major: 1, Minor: 3, Access: "rwx"},
	}
	for _, r := range bad {
		if err := r.validate(); !errors.Is(err, ErrInvalidRule) {
			t.Errorf("validate(%+v) = %v, want ErrInvalidRule", r, err)
		}
		if err := Apply(nil, "x", []Rule{r}); !errors.Is(err, ErrInvalidRule) {
			t.Errorf("Apply(%+v) = %v, want ErrInvalidRule before touching the cgroup", r, err)
		}
	}
	for _, r := range Default {
		if err := r.validate(); err != nil {
			t.Errorf("Default rule %v: %v", r, err)
		}
	}
}

func TestApplyV1DeniesAllFirst(t *testing.T) {
	var writes []string
	record := func(file, data string) error {
		writes = append(writes, filepath.Base(file)+" "+data)
		return nil
	}
	rules := []Rule{Default[0], Default[len(Default)-1]}
	if err := applyV1(record, "/cg/devices/x", rules); err != nil {
		t.Fatal(err)
	}
	want := []string{"devices.deny a", "devices.allow c 1:3 rwm", "devices.allow c 136:* rwm"}
	if !reflect.DeepEqual(writes, want) {
		t.Errorf("writes = %q, want %q", writes, want)
	}
}

func TestProgramEndsDenying(t *testing.T) {
	for _, rules := range [][]Rule{nil, Default} {
		insns := program(rules)
		if ret := insns[len(insns)-2].Constant; ret != 0 {
			t.Errorf("%d rules: program's fall-through returns %d, want 0 (deny)", len(rules), ret)
		}
		// Every jump must name a label that exists, or loading fails.
		labels := map[string]bool{}
		for _, ins := range insns {
			if s := ins.Symbol(); s != "" {
				labels[s] = true
			}
		}
		for _, ins := range insns {
			if ref := ins.Reference(); ref != "" && !labels[ref] {
				t.Errorf("%d rules: jump to missing label %q", len(rules), ref)
			}
		}
	}
}

// TestProgramAllowAllEndsAllowing: a rule matching everything ends the
// program (what follows it would be unreachable, which the verifier
// refuses), and every jump before it still lands.
func TestProgramAllowAllEndsAllowing(t *testing.T) {
	for _, rules := range [][]Rule{AllowAll, {Default[0], AllowAll[0], Default[1]}} {
		insns := program(rules)
		if ret := insns[len(insns)-2].Constant; ret != 1 || insns[len(insns)-1].OpCode.JumpOp() != asm.Exit {
			t.Errorf("%v: program ends %v, %v; want return 1", rules, insns[len(insns)-2], insns[len(insns)-1])
		}
		labels := map[string]bool{}
		for _, ins := range insns {
			if s := ins.Symbol(); s != "" {
				labels[s] = true
			}
		}
		for _, ins := range insns {
			if ref := ins.Reference(); ref != "" && !labels[ref] {
				t.Errorf("%v: jump to missing label %q", rules, ref)
			}
		}
	}
}

func TestFromSpec(t *testing.T) {
	num := func(n int64) *int64 { return &n }
	denyAll := specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}
	tests := []struct {
		name string
		list []specs.LinuxDeviceCgroup
		want []Rule
	}{
		{"empty is the default", nil, Default},
		{"privileged", []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}, AllowAll},
		{"deny all then allow", []specs.LinuxDeviceCgroup{
			denyAll,
			{Allow: true, Type: "c", Major: num(1), Minor: num(3), Access: "rwm"},
			{Allow: true, Type: "c", Major: num(136), Access: "rw"},
			{Allow: true, Type: "b", Major: num(7), Minor: num(0)},
		}, []Rule{
			{Type: Char, Major: 1, Minor: 3, Access: "rwm"},
			{Type: Char, Major: 136, Minor: Wildcard, Access: "rw"},
			{Type: Block, Major: 7, Minor: 0, Access: "rwm"},
		}},
		{"deny all, allow all", []specs.LinuxDeviceCgroup{denyAll, {Allow: true, Type: "a"}}, AllowAll},
	}
	for _, tt := range tests {
		got, err := FromSpec(&specs.Linux{Resources: &specs.LinuxResources{Devices: tt.list}})
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: FromSpec = %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
	for _, l := range []*specs.Linux{nil, {}} {
		if got, err := FromSpec(l); err != nil || !reflect.DeepEqual(got, Default) {
			t.Errorf("FromSpec(%+v) = %v, %v; want Default", l, got, err)
		}
	}
	bad := [][]specs.LinuxDeviceCgroup{
		{denyAll, {Allow: true, Type: "c", Major: num(1), Minor: num(3)}, {Allow: false, Type: "c", Major: num(1), Minor: num(3)}},
		{{Allow: false, Type: "c", Major: num(1), Minor: num(3)}},
		{{Allow: false, Access: "m"}, {Allow: true, Type: "c", Major: num(1), Minor: num(3)}},
		{{Allow: true, Type: "x"}},
		{{Allow: true, Type: "c", Major: num(-5)}},
		{{Allow: true, Type: "c", Access: "rx"}},
	}
	for _, list := range bad {
		if got, err := fromSpecList(list); !errors.Is(err, ErrInvalidRule) {
			t.Errorf("FromSpec(%+v) = %v, %v; want ErrInvalidRule", list, got, err)
		}
	}
}
