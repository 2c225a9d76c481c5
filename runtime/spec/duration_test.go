package spec

import (
	"math"
	"testing"
	"time"
)

// TestSeconds: seconds become a Duration without wrapping. 9223372037 s is
// the smallest grace period that wrapped to a negative Duration (a stop
// then killed at once and skipped preStop).
func TestSeconds(t *testing.T) {
	tests := []struct {
		in   int64
		want time.Duration
	}{
		{0, 0},
		{30, 30 * time.Second},
		{-1, -time.Second},
		{maxSeconds, time.Duration(maxSeconds) * time.Second},
		{maxSeconds + 1, math.MaxInt64},
		{9223372037, math.MaxInt64},
		{math.MaxInt64, math.MaxInt64},
		{-maxSeconds - 1, math.MinInt64},
		{math.MinInt64, math.MinInt64},
	}
	for _, tt := range tests {
		if got := Seconds(tt.in); got != tt.want {
			t.Errorf("Seconds(%d) = %v, want %v", tt.in, got, tt.want)
		}
	}
	p := Pod{TerminationGracePeriodSeconds: 9223372037}
	if got := p.TerminationGracePeriod(); got != math.MaxInt64 {
		t.Errorf("TerminationGracePeriod() of %d s = %v, want the largest Duration", p.TerminationGracePeriodSeconds, got)
	}
}

func TestFloatSeconds(t *testing.T) {
	tests := []struct {
		in   float64
		want time.Duration
	}{
		{0, 0},
		{0.5, 500 * time.Millisecond},
		{300, 300 * time.Second},
		{1e10, math.MaxInt64},
		{math.Inf(1), math.MaxInt64},
		{-1e10, math.MinInt64},
		{math.Inf(-1), math.MinInt64},
		{math.NaN(), 0},
	}
	for _, tt := range tests {
		if got := FloatSeconds(tt.in); got != tt.want {
			t.Errorf("FloatSeconds(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
