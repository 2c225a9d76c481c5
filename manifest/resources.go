package manifest

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Resource limits follow the kubelet (pkg/kubelet/cm, helpers_linux.go) and
// runc: requests become CPU shares, limits a CFS quota and a memory limit.
const (
	// minShares and maxShares bound cpu.shares as the kernel does.
	minShares = 2
	maxShares = 262144
	// sharesPerCPU is the kernel's default weight of one CPU's worth.
	sharesPerCPU  = 1024
	milliCPUToCPU = 1000
	// quotaPeriod is the kubelet's CFS period (100 ms, in µs).
	quotaPeriod = 100000
	// minQuotaPeriod is the smallest quota the kernel accepts (1 ms, in µs).
	minQuotaPeriod = 1000
	// maxMilliCPU bounds a CPU quantity: the kernel refuses a CFS quota
	// above 2^44 µs, which at a 100 ms period is about 1.7e8 CPUs; a million
	// CPUs leaves room and is far above any machine.
	maxMilliCPU = int64(1e9)
	// minMemoryLimit is the smallest memory limit peapod accepts: below a
	// few MiB the container's init stage itself is killed before the
	// workload runs (Docker refuses below 6 MiB for the same reason).
	minMemoryLimit = 6 << 20
)

// Messages of the API server's resource validation
// (k8s.io/kubernetes pkg/apis/core/validation).
const (
	isNegativeErrorMsg = "must be greater than or equal to 0"
	isNotStandardMsg   = "must be a standard resource for containers"
)

const (
	warnEphemeralStorage = "not enforced: peapod sets no ephemeral-storage limit"
	warnExtendedResource = "ignored: peapod has no device plugins"
)

// defaultResources copies each limit without a request into the requests,
// as the API server's defaulting does (SetDefaults_Container's
// defaultResourceRequirements).
func defaultResources(r *corev1.ResourceRequirements) {
	for name, q := range r.Limits {
		if _, ok := r.Requests[name]; ok {
			continue
		}
		if r.Requests == nil {
			r.Requests = corev1.ResourceList{}
		}
		r.Requests[name] = q.DeepCopy()
	}
}

// validateResources checks a container's requests and limits as the API
// server does, plus the bounds peapod needs to turn them into cgroup
// values without overflow.
func validateResources(r *corev1.ResourceRequirements, p *field.Path) ([]string, field.ErrorList) {
	var warnings []string
	var errs field.ErrorList
	limPath, reqPath := p.Child("limits"), p.Child("requests")
	check := func(name corev1.ResourceName, q resource.Quantity, fp *field.Path, limit bool) {
		switch {
		case name == corev1.ResourceCPU || name == corev1.ResourceMemory:
		case name == corev1.ResourceEphemeralStorage:
			warnings = append(warnings, fmt.Sprintf("%s: %s", fp, warnEphemeralStorage))
		case strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix):
			errs = append(errs, field.Forbidden(fp, "hugepages are not supported by peapod yet"))
			return
		case strings.Contains(string(name), "/") && !strings.Contains(string(name), "kubernetes.io/"):
			warnings = append(warnings, fmt.Sprintf("%s: %s", fp, warnExtendedResource))
		default:
			errs = append(errs, field.Invalid(fp, string(name), isNotStandardMsg))
			return
		}
		if q.Sign() < 0 {
			errs = append(errs, field.Invalid(fp, q.String(), isNegativeErrorMsg))
			return
		}
		errs = append(errs, checkBounds(name, q, fp, limit)...)
	}
	for _, name := range sortedResourceNames(r.Limits) {
		check(name, r.Limits[name], limPath.Key(string(name)), true)
	}

	for _, name := range sortedResourceNames(r.Requests) {
		q := r.Requests[name]
		check(name, q, reqPath.Key(string(name)), false)
		if lim, ok := r.Limits[name]; ok && q.Cmp(lim) > 0 {
			errs = append(errs, field.Invalid(reqPath, q.String(),
				fmt.Sprintf("must be less than or equal to %s limit of %s", name, lim.String())))
		}
	}
	return warnings, errs
}

// checkBounds refuses quantities peapod cannot write to a cgroup: a CPU
// quantity past maxMilliCPU or finer than a millicore is still accepted by
// the API server, but overflows (or rounds to nothing in) the CFS quota; a
// memory limit too small to start anything or past int64.
func checkBounds(name corev1.ResourceName, q resource.Quantity, fp *field.Path, limit bool) field.ErrorList {
	switch name {
	case corev1.ResourceCPU:
		if q.Cmp(*resource.NewMilliQuantity(maxMilliCPU, resource.DecimalSI)) > 0 {
			return field.ErrorList{field.Invalid(fp, q.String(), "must be at most 1M (a million CPUs)")}
		}
	case corev1.ResourceMemory:
		if q.Cmp(*resource.NewQuantity(math.MaxInt64, resource.BinarySI)) > 0 {
			return field.ErrorList{field.Invalid(fp, q.String(), "must be at most 8Ei")}
		}
		if limit && q.Sign() > 0 && q.Value() < minMemoryLimit {
			return field.ErrorList{field.Invalid(fp, q.String(), "must be at least 6Mi: the container could not even start")}
		}
	}
	return nil
}

// quantityErrors names each malformed quantity in a container's resources
// of the pod in JSON form j, for a decode that failed on one.
func quantityErrors(j []byte) field.ErrorList {
	var pod struct {
		Spec struct {
			InitContainers []struct {
				Resources map[string]map[string]any `json:"resources"`
			} `json:"initContainers"`
			Containers []struct {
				Resources map[string]map[string]any `json:"resources"`
			} `json:"containers"`
		} `json:"spec"`
	}
	// A document this does not fit fails for another reason than a quantity.
	if json.Unmarshal(j, &pod) != nil {
		return nil
	}
	var errs field.ErrorList
	check := func(res map[string]map[string]any, p *field.Path) {
		for _, kind := range []string{"limits", "requests"} {
			list := res[kind]
			keys := make([]string, 0, len(list))
			for k := range list {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				raw, err := json.Marshal(list[k])
				if err != nil {
					continue
				}
				var q resource.Quantity
				if err := q.UnmarshalJSON(raw); err != nil {
					errs = append(errs, field.Invalid(p.Child(kind).Key(k), list[k], err.Error()))
				}
			}
		}
	}
	for i, c := range pod.Spec.InitContainers {
		check(c.Resources, field.NewPath("spec", "initContainers").Index(i).Child("resources"))
	}
	for i, c := range pod.Spec.Containers {
		check(c.Resources, field.NewPath("spec", "containers").Index(i).Child("resources"))
	}
	return errs
}

// sortedResourceNames returns l's keys in order, so errors come out stable.
func sortedResourceNames(l corev1.ResourceList) []corev1.ResourceName {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	names := make([]corev1.ResourceName, len(keys))
	for i, k := range keys {
		names[i] = corev1.ResourceName(k)
	}
	return names
}

// MilliCPUToShares is the kubelet's conversion of a CPU request to
// cpu.shares: 1024 per CPU, at least 2 (an unset request gets the minimum,
// as BestEffort containers do), at most the kernel's 262144.
func MilliCPUToShares(milliCPU int64) uint64 {
	if milliCPU == 0 {
		return minShares
	}
	shares := milliCPU * sharesPerCPU / milliCPUToCPU
	return uint64(min(max(shares, minShares), maxShares))
}

// MilliCPUToQuota is the kubelet's conversion of a CPU limit to a CFS quota
// over period µs: 0 (no quota) when unset, at least 1 ms.
func MilliCPUToQuota(milliCPU, period int64) int64 {
	if milliCPU == 0 {
		return 0
	}
	return max(milliCPU*period/milliCPUToCPU, minQuotaPeriod)
}

// linuxResources converts a validated container's resources into the OCI
// form: shares from the CPU request, quota from the CPU limit, the memory
// limit with no swap beyond it (the kubelet's default without swap).
func linuxResources(r corev1.ResourceRequirements) *specs.LinuxResources {
	out := &specs.LinuxResources{}
	cpuReq, memLim := r.Requests[corev1.ResourceCPU], r.Limits[corev1.ResourceMemory]
	cpuLim, hasCPULim := r.Limits[corev1.ResourceCPU]
	shares := MilliCPUToShares(cpuReq.MilliValue())
	out.CPU = &specs.LinuxCPU{Shares: &shares}
	// A zero limit means no limit, as in the kubelet.
	if quota := MilliCPUToQuota(cpuLim.MilliValue(), quotaPeriod); hasCPULim && quota > 0 {
		period := uint64(quotaPeriod)
		out.CPU.Quota, out.CPU.Period = &quota, &period
	}
	if limit := memLim.Value(); limit > 0 {
		out.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &limit}
	}
	return out
}

// podResources is the pod cgroup's share of the machine, as the kubelet's
// ResourceConfigForPod computes it from the containers' effective values:
// shares from the summed CPU requests; a CPU quota and a memory limit only
// when every container has one (else the pod is unbounded), each the larger
// of the app containers' sum and the largest init container's, since init
// containers run one at a time before the app containers.
func podResources(init, app []corev1.Container) *specs.LinuxResources {
	effective := func(name corev1.ResourceName, limits bool) (resource.Quantity, bool) {
		return effectiveResource(init, app, name, limits)
	}
	out := &specs.LinuxResources{}
	cpuReq, _ := effective(corev1.ResourceCPU, false)
	shares := MilliCPUToShares(cpuReq.MilliValue())
	out.CPU = &specs.LinuxCPU{Shares: &shares}
	if cpuLim, all := effective(corev1.ResourceCPU, true); all && cpuLim.MilliValue() > 0 {
		quota, period := MilliCPUToQuota(cpuLim.MilliValue(), quotaPeriod), uint64(quotaPeriod)
		out.CPU.Quota, out.CPU.Period = &quota, &period
	}
	if memLim, all := effective(corev1.ResourceMemory, true); all && memLim.Value() > 0 {
		limit := memLim.Value()
		out.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &limit}
	}
	return out
}

// effectiveResource is the pod-level amount of resource name (its limits,
// or its requests) and whether every container sets it: the larger of the
// app containers' sum and the largest init container's, since init
// containers run one at a time before the app containers.
func effectiveResource(init, app []corev1.Container, name corev1.ResourceName, limits bool) (resource.Quantity, bool) {
	var total resource.Quantity
	all := true
	of := func(c corev1.Container) (resource.Quantity, bool) {
		l := c.Resources.Requests
		if limits {
			l = c.Resources.Limits
		}
		q, ok := l[name]
		return q, ok
	}
	for _, c := range app {
		q, ok := of(c)
		if !ok {
			all = false
			continue
		}
		total.Add(q)
	}
	for _, c := range init {
		q, ok := of(c)
		if !ok {
			all = false
		} else if q.Cmp(total) > 0 {
			total = q.DeepCopy()
		}
	}
	return total, all
}

// PodCPURequestMilli is the pod's effective CPU request in millicores, what
// the kubelet adds up over Burstable pods for its burstable cgroup's
// cpu.shares. s must be defaulted (requests copied from limits).
func PodCPURequestMilli(s *corev1.PodSpec) int64 {
	q, _ := effectiveResource(s.InitContainers, s.Containers, corev1.ResourceCPU, false)
	return q.MilliValue()
}

// QOSClass is the pod's quality-of-service class as the kubelet computes
// it (GetPodQOS) from its defaulted containers, init containers included:
// BestEffort without any CPU or memory request or limit; Guaranteed when
// every container has CPU and memory limits and requests equal to them;
// Burstable otherwise.
func QOSClass(s *corev1.PodSpec) corev1.PodQOSClass {
	set, guaranteed := false, true
	for _, c := range append(append([]corev1.Container{}, s.InitContainers...), s.Containers...) {
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[name]
			lim, hasLim := c.Resources.Limits[name]
			hasReq, hasLim = hasReq && !req.IsZero(), hasLim && !lim.IsZero()
			if hasReq || hasLim {
				set = true
			}
			// A request left unset defaults to the limit.
			if !hasLim || (hasReq && req.Cmp(lim) != 0) {
				guaranteed = false
			}
		}
	}
	switch {
	case !set:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}
