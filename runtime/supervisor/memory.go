package supervisor

import (
	"runtime/metrics"
	"strings"
)

// goMemoryClasses are the runtime/metrics samples a supervisor answers
// OpMetrics with: where the Go runtime says its memory is. Beside the
// kernel's view of the same process (procfs.ReadMemory), they split a
// pod's supervisor memory into heap objects, fragmentation, goroutine and
// thread stacks and runtime metadata (`peapod metrics POD`).
var goMemoryClasses = []string{
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/released:bytes",
	"/memory/classes/heap/stacks:bytes",
	"/memory/classes/os-stacks:bytes",
	"/memory/classes/metadata/mspan/inuse:bytes",
	"/memory/classes/metadata/mcache/inuse:bytes",
	"/memory/classes/metadata/other:bytes",
	"/memory/classes/profiling/buckets:bytes",
	"/memory/classes/other:bytes",
	"/sched/goroutines:goroutines",
}

// GoMemory reads goMemoryClasses: the runtime/metrics name without
// "/memory/classes/" and its unit ("heap/objects", "goroutines"), to the
// value. A name this Go release does not know is left out.
func GoMemory() map[string]uint64 {
	samples := make([]metrics.Sample, len(goMemoryClasses))
	for i, name := range goMemoryClasses {
		samples[i].Name = name
	}
	metrics.Read(samples)
	out := make(map[string]uint64, len(samples))
	for _, s := range samples {
		if s.Value.Kind() != metrics.KindUint64 {
			continue
		}
		out[GoMemoryClass(s.Name)] = s.Value.Uint64()
	}
	return out
}

// GoMemoryClass shortens a runtime/metrics name for a label.
func GoMemoryClass(name string) string {
	name, _, _ = strings.Cut(name, ":")
	name = strings.TrimPrefix(name, "/memory/classes/")
	return strings.TrimPrefix(name, "/sched/")
}
