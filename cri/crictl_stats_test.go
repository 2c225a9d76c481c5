package cri_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/peapod/peapod/cgroups"
	"github.com/peapod/peapod/internal/testutil"
	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// cgroupFile reads one integer control file of the container's cgroup
// (named by inspect's verbose info) in controller's hierarchy; "max" is -1.
func (d *daemon) cgroupFile(id, controller, file string) int64 {
	d.t.Helper()
	var in struct {
		Info struct {
			Cgroup string `json:"cgroup"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(d.run("crictl", "inspect", id)), &in); err != nil || in.Info.Cgroup == "" {
		d.t.Fatalf("crictl inspect %s: no cgroup (%v)", id, err)
	}
	cg, err := cgroups.New("", cgroups.DefaultMountRoot)
	if err != nil {
		d.t.Fatal(err)
	}
	dir, err := cg.Dir(controller, in.Info.Cgroup)
	if err != nil {
		d.t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		d.t.Fatal(err)
	}
	s := strings.Fields(string(data))[0]
	if s == "max" {
		return -1
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		d.t.Fatalf("%s: %v", file, err)
	}
	return n
}

// TestCrictlStatsAndUpdate drives stats, statsp and update through
// crictl: the figures against the cgroup files, the writable layer
// against what the container wrote, eth0 of the pod, a resize checked in
// the cgroup files and in inspect, and refusals naming the field.
func TestCrictlStatsAndUpdate(t *testing.T) {
	d := startDaemon(t)
	d.run("peapod", "image", "import", busyboxTar, "--name", "busybox:latest")
	dir, logDir := t.TempDir(), t.TempDir()
	sb := writeJSON(t, dir, "sandbox.json", fmt.Sprintf(`{
  "metadata": {"name": "stats", "namespace": "default", "attempt": 0, "uid": "uid-stats"},
  "labels": {"app": "stats"}, "log_directory": %q, "linux": {}}`, logDir))
	app := writeJSON(t, dir, "app.json", `{
  "metadata": {"name": "app"}, "image": {"image": "busybox:latest"},
  "command": ["sleep", "3600"], "labels": {"tier": "stats"}, "log_path": "app.log",
  "linux": {"resources": {"cpu_quota": 50000, "cpu_period": 100000, "cpu_shares": 512, "memory_limit_in_bytes": 67108864}}}`)

	// Warm-up: the bridge and the root's cgroup outlive pods.
	warm := strings.TrimSpace(d.run("crictl", "runp", sb))
	d.run("crictl", "rmp", "-f", warm)
	before := testutil.TakeSnapshot(t, d.roots())

	pod := strings.TrimSpace(d.run("crictl", "runp", sb))
	id := strings.TrimSpace(d.run("crictl", "create", pod, app, sb))
	d.run("crictl", "start", id)
	// 4 MiB in the writable layer, written before the figures are read.
	d.run("crictl", "exec", "-s", id, "dd", "if=/dev/zero", "of=/big", "bs=1M", "count=4")

	v1 := false
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil {
		v1 = true
	}
	cpuUsec := func() int64 {
		if v1 {
			return d.cgroupFile(id, "cpuacct", "cpuacct.usage") / 1000
		}
		return 0 // read from cpu.stat below
	}

	// crictl stats: usage between two readings of the cgroup's counter,
	// the limit as available + working set.
	cpu0 := cpuUsec()
	var cs runtimeapi.ListContainerStatsResponse
	if err := protojson.Unmarshal([]byte(d.run("crictl", "stats", "-o", "json", "--id", id)), &cs); err != nil {
		t.Fatalf("crictl stats -o json: %v", err)
	}
	cpu1 := cpuUsec()
	if len(cs.Stats) != 1 {
		t.Fatalf("crictl stats --id %s: %d entries, want 1", id, len(cs.Stats))
	}
	st := cs.Stats[0]
	if st.Attributes.Id != id || st.Attributes.Labels["tier"] != "stats" || st.Attributes.Metadata.Name != "app" {
		t.Errorf("attributes %v", st.Attributes)
	}
	if st.Cpu == nil || st.Cpu.Timestamp == 0 || st.Memory == nil || st.WritableLayer == nil {
		t.Fatalf("stats %v lack cpu, memory or the writable layer", st)
	}
	if v1 {
		if got := int64(st.Cpu.UsageCoreNanoSeconds.GetValue()) / 1000; got < cpu0 || got > cpu1 {
			t.Errorf("cpu usage %d µs, want between the cgroup's %d and %d", got, cpu0, cpu1)
		}
	} else if st.Cpu.UsageCoreNanoSeconds.GetValue() == 0 {
		t.Errorf("cpu usage 0 after an exec of dd")
	}
	ws, avail := st.Memory.WorkingSetBytes.GetValue(), st.Memory.AvailableBytes.GetValue()
	if ws == 0 || ws+avail != 64<<20 || st.Memory.UsageBytes.GetValue() < ws {
		t.Errorf("memory %v: want a working set, usage ≥ it and working set + available = the 64 MiB limit", st.Memory)
	}
	if used := st.WritableLayer.UsedBytes.GetValue(); used < 4<<20 || used > 5<<20 {
		t.Errorf("writable layer %d bytes, want the 4 MiB written (and little more)", used)
	}
	// The filters: by sandbox and labels, and one that matches nothing.
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"--pod", pod}, 1},
		{[]string{"--label", "tier=stats"}, 1},
		{[]string{"--label", "tier=other"}, 0},
		{[]string{"--pod", "ffffffff"}, 0},
	} {
		var r runtimeapi.ListContainerStatsResponse
		if err := protojson.Unmarshal([]byte(d.run("crictl", append([]string{"stats", "-o", "json"}, tc.args...)...)), &r); err != nil {
			t.Fatal(err)
		}
		if len(r.Stats) != tc.want {
			t.Errorf("crictl stats %v: %d entries, want %d", tc.args, len(r.Stats), tc.want)
		}
	}

	// crictl statsp: the pod cgroup, eth0, the container inside.
	var ps runtimeapi.ListPodSandboxStatsResponse
	if err := protojson.Unmarshal([]byte(d.run("crictl", "statsp", "-o", "json", "--id", pod)), &ps); err != nil {
		t.Fatalf("crictl statsp -o json: %v", err)
	}
	if len(ps.Stats) != 1 || ps.Stats[0].Linux == nil {
		t.Fatalf("crictl statsp --id %s: %v, want one entry", pod, ps.Stats)
	}
	l := ps.Stats[0].Linux
	if ps.Stats[0].Attributes.Id != pod || l.Cpu.GetUsageCoreNanoSeconds().GetValue() < st.Cpu.UsageCoreNanoSeconds.GetValue() ||
		l.Memory.GetWorkingSetBytes().GetValue() == 0 || l.Network.GetDefaultInterface().GetName() != "eth0" ||
		len(l.Containers) != 1 || l.Containers[0].Attributes.Id != id {
		t.Errorf("crictl statsp: %v, want the pod's cpu ≥ its container's, memory, eth0 and the container", l)
	}

	// crictl metricdescs and metricsp: the cAdvisor-style metrics, read
	// from the same cgroups, the container's processes and writable layer,
	// and eth0's counters.
	var descs runtimeapi.ListMetricDescriptorsResponse
	if err := protojson.Unmarshal([]byte(d.run("crictl", "metricdescs", "-o", "json")), &descs); err != nil || len(descs.Descriptors) < 40 {
		t.Fatalf("crictl metricdescs: %d descriptors, %v", len(descs.Descriptors), err)
	}
	var pm runtimeapi.ListPodSandboxMetricsResponse
	if err := protojson.Unmarshal([]byte(d.run("crictl", "metricsp", "-o", "json")), &pm); err != nil {
		t.Fatalf("crictl metricsp -o json: %v", err)
	}
	if len(pm.PodMetrics) != 1 || pm.PodMetrics[0].PodSandboxId != pod || len(pm.PodMetrics[0].ContainerMetrics) != 1 ||
		pm.PodMetrics[0].ContainerMetrics[0].ContainerId != id {
		t.Fatalf("crictl metricsp: %v, want the pod and its container", pm.PodMetrics)
	}
	metric := map[string]uint64{}
	for _, m := range append(pm.PodMetrics[0].Metrics, pm.PodMetrics[0].ContainerMetrics[0].Metrics...) {
		if _, ok := metric[m.Name]; !ok {
			metric[m.Name] = m.Value.GetValue()
		}
	}
	pid := d.inspect(id).Info.PID
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]uint64{
		"container_spec_memory_limit_bytes": 64 << 20, "container_spec_cpu_shares": 512, "container_spec_cpu_period": 100000,
		"container_processes": 1, "container_threads": 1, "container_file_descriptors": uint64(len(fds)), "container_sockets": 0,
	} {
		if got, ok := metric[name]; !ok || got != want {
			t.Errorf("metricsp %s = %d (%v), want %d", name, got, ok, want)
		}
	}
	for _, name := range []string{"container_memory_usage_bytes", "container_memory_working_set_bytes", "container_fs_limit_bytes",
		"container_fs_inodes_total", "container_start_time_seconds", "container_last_seen", "container_cpu_cfs_periods_total"} {
		if metric[name] == 0 {
			t.Errorf("metricsp %s = 0 or missing", name)
		}
	}
	for _, name := range []string{"container_network_receive_packets_total", "container_threads_max", "container_memory_failcnt"} {
		if _, ok := metric[name]; !ok {
			t.Errorf("metricsp has no %s", name)
		}
	}
	if used := metric["container_fs_usage_bytes"]; used < 4<<20 || used > 5<<20 {
		t.Errorf("metricsp container_fs_usage_bytes = %d, want the 4 MiB written", used)
	}

	// crictl update: the cgroup files change, inspect reports the values.
	d.run("crictl", "update", "--memory", strconv.Itoa(128<<20), "--cpu-quota", "200000", "--cpu-period", "100000", "--cpu-share", "1024", id)
	if v1 {
		if got := d.cgroupFile(id, "memory", "memory.limit_in_bytes"); got != 128<<20 {
			t.Errorf("memory.limit_in_bytes = %d after update, want %d", got, 128<<20)
		}
		if got := d.cgroupFile(id, "cpu", "cpu.cfs_quota_us"); got != 200000 {
			t.Errorf("cpu.cfs_quota_us = %d after update, want 200000", got)
		}
		if got := d.cgroupFile(id, "cpu", "cpu.shares"); got != 1024 {
			t.Errorf("cpu.shares = %d after update, want 1024", got)
		}
	} else if got := d.cgroupFile(id, "memory", "memory.max"); got != 128<<20 {
		t.Errorf("memory.max = %d after update, want %d", got, 128<<20)
	}
	var in struct {
		Status struct {
			Resources struct {
				Linux struct {
					CPUQuota           string `json:"cpuQuota"`
					MemoryLimitInBytes string `json:"memoryLimitInBytes"`
				} `json:"linux"`
			} `json:"resources"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(d.run("crictl", "inspect", id)), &in); err != nil {
		t.Fatal(err)
	}
	if r := in.Status.Resources.Linux; r.CPUQuota != "200000" || r.MemoryLimitInBytes != strconv.Itoa(128<<20) {
		t.Errorf("inspect after update: resources %+v", r)
	}
	// Shrinking then works too (container before pod).
	d.run("crictl", "update", "--memory", strconv.Itoa(96<<20), "--cpu-quota", "30000", "--cpu-period", "100000", id)
	if v1 {
		if got := d.cgroupFile(id, "cpu", "cpu.cfs_quota_us"); got != 30000 {
			t.Errorf("cpu.cfs_quota_us = %d after the shrink, want 30000", got)
		}
	}

	// Refusals name the field; nothing changes.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--cpuset-cpus", "0", "--memory", strconv.Itoa(96 << 20), "--cpu-quota", "30000"}, "linux.cpuset_cpus"},
		{[]string{"--memory", "4096", "--cpu-quota", "30000"}, "memory_limit_in_bytes"},
		{[]string{"--memory", strconv.Itoa(96 << 20)}, "linux.cpu_quota"},
	} {
		if out, err := d.try(append(append([]string{"update"}, tc.args...), id)...); err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("crictl update %v: %v\n%s, want a refusal naming %s", tc.args, err, out, tc.want)
		}
	}
	if v1 {
		if got := d.cgroupFile(id, "memory", "memory.limit_in_bytes"); got != 96<<20 {
			t.Errorf("memory.limit_in_bytes = %d after refused updates, want %d", got, 96<<20)
		}
	}

	// An exited container, and an unknown one, are NotFound.
	d.run("crictl", "stop", "-t", "0", id)
	for _, target := range []string{id, "0123456789ab"} {
		if out, err := d.try("update", "--memory", strconv.Itoa(96<<20), "--cpu-quota", "30000", target); err == nil || !strings.Contains(out, "NotFound") {
			t.Errorf("update of %s: %v\n%s, want NotFound", target, err, out)
		}
	}
	// Stats of a stopped sandbox's container: the writable layer only.
	d.run("crictl", "stopp", pod)
	var after runtimeapi.ListContainerStatsResponse
	if err := protojson.Unmarshal([]byte(d.run("crictl", "stats", "-a", "-o", "json", "--id", id)), &after); err != nil {
		t.Fatal(err)
	}
	if len(after.Stats) != 1 || after.Stats[0].Cpu != nil || after.Stats[0].WritableLayer.GetUsedBytes().GetValue() < 4<<20 {
		t.Errorf("stats of a stopped sandbox's container: %v", after.Stats)
	}
	d.run("crictl", "rmp", "-f", pod)
	testutil.AssertNoLeak(t, before, d.roots())
}
