package supervisor

import (
	"errors"
	"testing"

	"github.com/peapod/peapod/runtime/spec"
)

// oomCgroups is a Cgroups whose OOM kill count the test sets.
type oomCgroups struct {
	kills int64
	err   error
}

func (oomCgroups) Join(string, int) error { return nil }
func (oomCgroups) Kill(string) error      { return nil }
func (o *oomCgroups) OOMKills(string) (int64, error) {
	return o.kills, o.err
}

// plainCgroups cannot count OOM kills.
type plainCgroups struct{}

func (plainCgroups) Join(string, int) error { return nil }
func (plainCgroups) Kill(string) error      { return nil }

func TestOOMKilledSince(t *testing.T) {
	c := &container{spec: &spec.Container{Cgroup: "peapod-r1/pod/ctr"}}
	cg := &oomCgroups{kills: 2}
	s := &Supervisor{cg: cg}
	base := s.oomKills(c)
	if base != 2 {
		t.Fatalf("oomKills = %d, want 2", base)
	}
	if s.oomKilledSince(c, base) {
		t.Errorf("OOM reported without a new kill (the count is cumulative over restarts)")
	}
	cg.kills = 3
	if !s.oomKilledSince(c, base) {
		t.Errorf("a new OOM kill was not reported")
	}
	// Unreadable at the start or at the end: nothing reported.
	if s.oomKilledSince(c, -1) {
		t.Errorf("OOM reported with no base count")
	}
	cg.err = errors.New("no memory.events")
	if s.oomKilledSince(c, base) {
		t.Errorf("OOM reported from an unreadable count")
	}
	if got := (&Supervisor{cg: plainCgroups{}}).oomKills(c); got != -1 {
		t.Errorf("oomKills without a counter = %d, want -1", got)
	}
}
