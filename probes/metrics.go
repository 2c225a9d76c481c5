package probes

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// DurationBuckets are the upper bounds (seconds) of the
// prober_probe_duration_seconds histogram: Prometheus' default buckets.
var DurationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// SeriesLabels identify one worker's metric series. prober_probe_total
// carries all of them plus result; prober_probe_duration_seconds carries
// all but PodUID.
type SeriesLabels struct {
	// ProbeType is "Liveness", "Readiness" or "Startup".
	ProbeType string
	// Container, Pod, Namespace and PodUID name the container.
	Container string
	Pod       string
	Namespace string
	PodUID    string
}

// series is one worker's counters, updated without locks or allocation.
type series struct {
	// labels identify the series.
	labels SeriesLabels
	// successful, failed and unknown count prober_probe_total by result.
	successful, failed, unknown atomic.Uint64
	// durCount and durSumNanos are the histogram's count and sum.
	durCount    atomic.Uint64
	durSumNanos atomic.Int64
	// buckets count observations per bucket (not cumulative).
	buckets [11]atomic.Uint64
}

// observe records one probe duration.
func (s *series) observe(d time.Duration) {
	s.durCount.Add(1)
	s.durSumNanos.Add(int64(d))
	sec := d.Seconds()
	for i, ub := range DurationBuckets {
		if sec <= ub {
			s.buckets[i].Add(1)
			return
		}
	}
}

// Metrics holds the probe counters of the workers; a worker deletes its
// series when it exits, as the kubelet's does.
type Metrics struct {
	// mu guards set.
	mu sync.Mutex
	// set holds the live series.
	set map[*series]struct{}
	// panics counts the panics the workers recovered from.
	panics atomic.Uint64
}

// Panics is how many panics the workers recovered from: each is a bug,
// logged where it was recovered.
func (m *Metrics) Panics() uint64 { return m.panics.Load() }

// NewMetrics returns an empty registry.
func NewMetrics() *Metrics { return &Metrics{set: make(map[*series]struct{})} }

// add registers a new series.
func (m *Metrics) add(l SeriesLabels) *series {
	s := &series{labels: l}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.set[s] = struct{}{}
	return s
}

// remove deletes a series.
func (m *Metrics) remove(s *series) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.set, s)
}

// SeriesSnapshot is one series' values at Snapshot time.
type SeriesSnapshot struct {
	// Labels identify the series.
	Labels SeriesLabels
	// Successful, Failed and Unknown are prober_probe_total by result
	// ("successful", "failed", "unknown").
	Successful, Failed, Unknown uint64
	// DurationCount and DurationSum (seconds) are the histogram's count and sum.
	DurationCount uint64
	DurationSum   float64
	// DurationBuckets are cumulative counts per DurationBuckets bound.
	DurationBuckets []uint64
}

// Snapshot returns the live series, sorted by labels.
func (m *Metrics) Snapshot() []SeriesSnapshot {
	m.mu.Lock()
	out := make([]SeriesSnapshot, 0, len(m.set))
	for s := range m.set {
		out = append(out, s.snapshot())
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return lessLabels(out[i].Labels, out[j].Labels) })
	return out
}

// snapshot reads one series.
func (s *series) snapshot() SeriesSnapshot {
	snap := SeriesSnapshot{
		Labels:          s.labels,
		Successful:      s.successful.Load(),
		Failed:          s.failed.Load(),
		Unknown:         s.unknown.Load(),
		DurationCount:   s.durCount.Load(),
		DurationSum:     time.Duration(s.durSumNanos.Load()).Seconds(),
		DurationBuckets: make([]uint64, len(DurationBuckets)),
	}
	var cum uint64
	for i := range DurationBuckets {
		cum += s.buckets[i].Load()
		snap.DurationBuckets[i] = cum
	}
	return snap
}

// lessLabels orders series for a stable rendering.
func lessLabels(a, b SeriesLabels) bool {
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	if a.Pod != b.Pod {
		return a.Pod < b.Pod
	}
	if a.Container != b.Container {
		return a.Container < b.Container
	}
	return a.ProbeType < b.ProbeType
}
