package probes

// Resume seeds the published result of probe kind t for a container
// instance that an earlier supervisor probed (a supervisor that adopts
// running containers): the result is cached at once, so the instance's
// started and ready flags do not fall back to the initial values while
// the new workers have not probed yet, and the worker that meets the
// instance keeps it instead of publishing the initial value. From there
// the thresholds apply as usual: a Ready container stays Ready until its
// readiness probe fails failureThreshold times.
func (m *Manager) Resume(t ProbeType, container, id string, r Result) {
	m.mu.Lock()
	if m.resumed == nil {
		m.resumed = make(map[workerKey]string)
	}
	m.resumed[workerKey{container, t}] = id
	m.mu.Unlock()
	m.results[t].Set(id, container, r)
}

// takeResumed reports whether the result of (container, t) was seeded for
// instance id, and forgets the seed.
func (m *Manager) takeResumed(container string, t ProbeType, id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := workerKey{container, t}
	if m.resumed[key] != id {
		return false
	}
	delete(m.resumed, key)
	return true
}

// ParseProbeType is the inverse of ProbeType.String.
func ParseProbeType(s string) (ProbeType, bool) {
	for _, t := range []ProbeType{Liveness, Readiness, Startup} {
		if t.String() == s {
			return t, true
		}
	}
	return 0, false
}

// ParseResult is the inverse of Result.String.
func ParseResult(s string) (Result, bool) {
	for _, r := range []Result{Success, Failure, Unknown} {
		if r.String() == s {
			return r, true
		}
	}
	return 0, false
}
