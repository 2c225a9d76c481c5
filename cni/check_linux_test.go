package cni

import (
	"strings"
	"testing"

	"github.com/google/nftables"
)

func TestCheckWarnsOnForwardDrop(t *testing.T) {
	c := testConfig(t)
	conn := &nftables.Conn{}
	table := conn.AddTable(&nftables.Table{Name: "pt" + randHex(t, 6), Family: nftables.TableFamilyIPv4})
	drop := nftables.ChainPolicyDrop
	conn.AddChain(&nftables.Chain{
		Name: "fwd", Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &drop,
	})
	if err := conn.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.DelTable(table)
		if err := conn.Flush(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	warnings := Check(c)
	found := false
	for _, w := range warnings {
		found = found || (strings.Contains(w, "fwd") && strings.Contains(w, table.Name))
	}
	if !found {
		t.Fatalf("Check = %q, want a warning naming chain fwd of table %s", warnings, table.Name)
	}
}
