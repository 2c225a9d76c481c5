package probes

// KubeVersion is the <major>.<minor> Kubernetes version peapod behaves as:
// that of the k8s.io/api module in go.mod (v0.37.x is Kubernetes 1.37).
// HTTP and gRPC probes send it as "kube-probe/<KubeVersion>". It is a
// constant so the supervisor does not read go.mod or build info at run
// time; TestKubeVersionMatchesGoMod keeps it in sync.
const KubeVersion = "1.37"

// UserAgent is what HTTP and gRPC probes send unless the probe sets its own.
const UserAgent = "kube-probe/" + KubeVersion
