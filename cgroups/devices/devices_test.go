package devices

import (
	"errors"
	"path/filepath"
	"reflect"
	"testing"
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
