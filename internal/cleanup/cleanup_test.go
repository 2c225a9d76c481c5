package cleanup

import (
	"errors"
	"reflect"
	"testing"
)

func TestCleanRunsNewestFirstAndJoinsErrors(t *testing.T) {
	var order []int
	var s Stack
	errA := errors.New("a")
	s.Add(func() error { order = append(order, 1); return errA })
	s.Add(func() error { order = append(order, 2); return nil })
	s.Add(func() error { order = append(order, 3); return errors.New("c") })
	err := s.Clean()
	if !reflect.DeepEqual(order, []int{3, 2, 1}) {
		t.Fatalf("order %v", order)
	}
	if !errors.Is(err, errA) {
		t.Fatalf("joined error %v lacks a", err)
	}
	if s.Clean() != nil || len(order) != 3 {
		t.Fatal("second Clean ran undos again")
	}
}

func TestReleaseForgets(t *testing.T) {
	var s Stack
	ran := false
	s.Add(func() error { ran = true; return nil })
	s.Release()
	if err := s.Clean(); err != nil || ran {
		t.Fatalf("released undo ran (err %v)", err)
	}
}
