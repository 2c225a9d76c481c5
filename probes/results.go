package probes

import "sync"

// Result is the cached, published state of one probe
// (pkg/kubelet/prober/results.Result).
type Result int

// The cached probe states, with the kubelet's values.
const (
	Unknown Result = -1
	Success Result = 0
	Failure Result = 1
)

// String returns the kubelet's spelling.
func (r Result) String() string {
	switch r {
	case Success:
		return "Success"
	case Failure:
		return "Failure"
	}
	return "UNKNOWN"
}

// Update is published when a container's cached result changes.
type Update struct {
	// Type is the probe kind whose result changed.
	Type ProbeType
	// Container is the container's name in the pod.
	Container string
	// ContainerID is the container instance the result belongs to.
	ContainerID string
	// Result is the new result.
	Result Result
}

// Results caches one probe kind's result per container instance
// (results_manager.go). Set publishes on Updates only when the value is new
// or changed; Remove publishes nothing.
type Results struct {
	// typ is the probe kind this cache holds, stamped on every update.
	typ ProbeType
	// updates receives changes; the kubelet buffers 20 and blocks when full.
	updates chan<- Update
	// done, once closed, drops updates instead of blocking (manager stopped).
	done <-chan struct{}
	// mu guards cache.
	mu sync.RWMutex
	// cache maps container id to its current result.
	cache map[string]Result
}

// NewResults returns an empty cache for typ that publishes on updates.
func NewResults(typ ProbeType, updates chan<- Update) *Results {
	return newResults(typ, updates, nil)
}

// newResults is NewResults whose publishing gives up once done is closed.
func newResults(typ ProbeType, updates chan<- Update, done <-chan struct{}) *Results {
	return &Results{typ: typ, updates: updates, done: done, cache: make(map[string]Result)}
}

// Get returns the cached result of a container instance.
func (r *Results) Get(id string) (Result, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	res, ok := r.cache[id]
	return res, ok
}

// Set caches result for a container instance and publishes it if it changed.
func (r *Results) Set(id, container string, result Result) {
	if !r.setInternal(id, result) || r.updates == nil {
		return
	}
	select {
	case r.updates <- Update{Type: r.typ, Container: container, ContainerID: id, Result: result}:
	case <-r.done:
	}
}

// setInternal stores result and says whether it changed.
func (r *Results) setInternal(id string, result Result) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev, ok := r.cache[id]
	if ok && prev == result {
		return false
	}
	r.cache[id] = result
	return true
}

// Remove forgets a container instance; it publishes nothing.
func (r *Results) Remove(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.cache, id)
}
