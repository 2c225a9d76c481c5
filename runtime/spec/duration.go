package spec

import (
	"math"
	"time"
)

// maxSeconds is the largest whole number of seconds a time.Duration holds
// (about 292 years).
const maxSeconds = math.MaxInt64 / int64(time.Second)

// Seconds turns a count of seconds into a time.Duration, saturating at the
// Duration's range instead of wrapping. The API server accepts any int64 >= 0
// as terminationGracePeriodSeconds: 9223372037 s times time.Second wraps to a
// negative Duration, which a stop would read as "no grace, no preStop". Every
// place a seconds field becomes a Duration goes through here.
func Seconds(s int64) time.Duration {
	switch {
	case s > maxSeconds:
		return math.MaxInt64
	case s < -maxSeconds:
		return math.MinInt64
	}
	return time.Duration(s) * time.Second
}

// FloatSeconds is Seconds for a fractional count (the backoff settings):
// saturating, and 0 for NaN. Converting an out-of-range float to an integer
// is implementation-defined in Go (math.MinInt64 on amd64), so the range is
// checked before the conversion.
func FloatSeconds(s float64) time.Duration {
	d := s * float64(time.Second)
	switch {
	case math.IsNaN(d):
		return 0
	// float64(math.MaxInt64) rounds up to 2^63, which is out of range.
	case d >= math.MaxInt64:
		return math.MaxInt64
	case d <= math.MinInt64:
		return math.MinInt64
	}
	return time.Duration(d)
}

// TerminationGracePeriod is the pod's grace period as a Duration.
func (p *Pod) TerminationGracePeriod() time.Duration {
	return Seconds(p.TerminationGracePeriodSeconds)
}
