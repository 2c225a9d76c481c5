package cri_test

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/peapod/peapod/internal/testutil"
	"github.com/peapod/peapod/runtime/layout"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestVersionAndStatus checks the runtime's identity and readiness.
func TestVersionAndStatus(t *testing.T) {
	e := newEnv(t)
	v, err := e.rt.Version(e.ctx(), &runtimeapi.VersionRequest{})
	if err != nil {
		t.Fatalf("Version: %v", err)
	}
	if v.RuntimeName != "peapod" || v.RuntimeApiVersion != "v1" {
		t.Errorf("Version = %s %s, want peapod v1", v.RuntimeName, v.RuntimeApiVersion)
	}
	st, err := e.rt.Status(e.ctx(), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	ready := map[string]bool{}
	for _, c := range st.Status.Conditions {
		ready[c.Type] = c.Status
	}
	if !ready[runtimeapi.RuntimeReady] || !ready[runtimeapi.NetworkReady] {
		t.Errorf("Status conditions = %v, want RuntimeReady and NetworkReady true", st.Status.Conditions)
	}
	fi, err := os.Stat(e.sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode = %v, want 0660", fi.Mode().Perm())
	}
}

// TestSandboxLifecycle runs a sandbox with every option this slice maps,
// checks each on the kernel objects, lists it through every filter, stops
// and removes it twice each, and leaves nothing behind.
func TestSandboxLifecycle(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	cfg := config("web", 2)
	cfg.Hostname = "web-host"
	cfg.Labels = map[string]string{"app": "web", "tier": "front"}
	cfg.Annotations = map[string]string{"note": "a/b c"}
	cfg.LogDirectory = filepath.Join(e.dir, "logs", "web")
	cfg.DnsConfig = &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: []string{"default.svc.cluster.local"}, Options: []string{"ndots:5"}}
	cfg.PortMappings = []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 80, HostPort: 31080}}
	cfg.Linux = &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_POD, Ipc: runtimeapi.NamespaceMode_POD},
	}}
	id := e.run(cfg)

	st := e.status(id)
	if st.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("state = %v, want READY", st.State)
	}
	md := st.Metadata
	if md.Name != "web" || md.Namespace != "default" || md.Uid != "uid-web" || md.Attempt != 2 {
		t.Errorf("metadata = %v", md)
	}
	if st.Labels["app"] != "web" || st.Annotations["note"] != "a/b c" || len(st.Annotations) != 1 {
		t.Errorf("labels %v, annotations %v: not as given", st.Labels, st.Annotations)
	}
	if got := st.Linux.GetNamespaces().GetOptions().GetPid(); got != runtimeapi.NamespaceMode_POD {
		t.Errorf("pid namespace mode = %v, want POD", got)
	}
	ip, err := netip.ParseAddr(st.GetNetwork().GetIp())
	if err != nil || !e.subnet.Subnet.Contains(ip) {
		t.Fatalf("sandbox IP %q is not in %s", st.GetNetwork().GetIp(), e.subnet.Subnet)
	}
	// The address is on eth0 inside the sandbox's pinned network namespace.
	out, err := exec.Command("ip", "-n", st.Netns, "-4", "-o", "addr", "show", "dev", "eth0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), " "+ip.String()+"/") {
		t.Errorf("ip -n %s addr: %s (%v), want %s", st.Netns, out, err, ip)
	}
	// The UTS namespace carries the hostname.
	out, err = exec.Command("nsenter", "--uts="+layout.Run(st.RunDir).NSPin("uts"), "hostname").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "web-host" {
		t.Errorf("hostname in the sandbox = %q (%v), want web-host", out, err)
	}
	resolv, err := os.ReadFile(layout.Run(st.RunDir).EtcFile("resolv.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"nameserver 10.96.0.10", "search default.svc.cluster.local", "options ndots:5"} {
		if !strings.Contains(string(resolv), want) {
			t.Errorf("resolv.conf lacks %q:\n%s", want, resolv)
		}
	}
	// The host port is mapped to the pod's address.
	out, err = exec.Command("nft", "list", "ruleset").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list ruleset: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "31080") || !strings.Contains(string(out), ip.String()) {
		t.Errorf("no nftables rule maps host port 31080 to %s", ip)
	}

	other := e.run(config("other", 0))
	list := func(f *runtimeapi.PodSandboxFilter) []string {
		t.Helper()
		r, err := e.rt.ListPodSandbox(e.ctx(), &runtimeapi.ListPodSandboxRequest{Filter: f})
		if err != nil {
			t.Fatalf("ListPodSandbox(%v): %v", f, err)
		}
		var ids []string
		for _, it := range r.Items {
			ids = append(ids, it.Id)
		}
		return ids
	}
	ready := &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}
	notReady := &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY}
	for _, c := range []struct {
		name string
		f    *runtimeapi.PodSandboxFilter
		want []string
	}{
		{"all", nil, []string{id, other}},
		{"id", &runtimeapi.PodSandboxFilter{Id: id}, []string{id}},
		{"id prefix", &runtimeapi.PodSandboxFilter{Id: id[:13]}, []string{id}},
		{"ready", &runtimeapi.PodSandboxFilter{State: ready}, []string{id, other}},
		{"not ready", &runtimeapi.PodSandboxFilter{State: notReady}, nil},
		{"label", &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "web"}}, []string{id}},
		{"labels, one differs", &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "web", "tier": "back"}}, nil},
	} {
		if got := list(c.f); !sameSet(got, c.want) {
			t.Errorf("list %s = %v, want %v", c.name, got, c.want)
		}
	}

	for i := range 2 {
		if _, err := e.rt.StopPodSandbox(e.ctx(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Fatalf("StopPodSandbox #%d: %v", i+1, err)
		}
	}
	st2 := e.status(id)
	if st2.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY || st2.GetNetwork().GetIp() != "" {
		t.Errorf("after stop: state %v, IP %q; want NOTREADY and no IP", st2.State, st2.GetNetwork().GetIp())
	}
	if _, err := os.Stat(filepath.Join("/run/netns", st.Netns)); !os.IsNotExist(err) {
		t.Errorf("netns pin %s after stop: %v, want gone", st.Netns, err)
	}
	if got := list(&runtimeapi.PodSandboxFilter{State: notReady}); !sameSet(got, []string{id}) {
		t.Errorf("not ready after stop = %v, want [%s]", got, id)
	}
	for i := range 2 {
		e.remove(id)
		_ = i
	}
	_, err = e.rt.PodSandboxStatus(e.ctx(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	if status.Code(err) != codes.NotFound {
		t.Errorf("status of a removed sandbox: %v, want NotFound", err)
	}
	e.remove(other)
	waitGone(t, st.SupervisorPID)
	testutil.AssertNoLeak(t, before, e.roots())
}

// TestHostNetworkSandbox runs a sandbox in the host's network namespace.
func TestHostNetworkSandbox(t *testing.T) {
	e := newEnv(t)
	cfg := config("hostnet", 0)
	cfg.Linux = &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE},
	}}
	id := e.run(cfg)
	st := e.status(id)
	if st.State != runtimeapi.PodSandboxState_SANDBOX_READY || st.Netns != "" {
		t.Errorf("host-network sandbox: state %v, netns %q; want READY and no netns of its own", st.State, st.Netns)
	}
	if got := st.Linux.GetNamespaces().GetOptions().GetNetwork(); got != runtimeapi.NamespaceMode_NODE {
		t.Errorf("network mode = %v, want NODE", got)
	}
	e.remove(id)
}

// TestSandboxHostNamespacesAndSysctls runs sandboxes on the host's PID and
// IPC namespaces and with sysctls: a host-IPC sandbox pins no IPC
// namespace, the status says NODE, and each sysctl is set in the
// sandbox's own namespace and not on the host.
func TestSandboxHostNamespacesAndSysctls(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	read := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	hostSomaxconn, hostRmid := read("cat", "/proc/sys/net/core/somaxconn"), read("cat", "/proc/sys/kernel/shm_rmid_forced")
	somaxconn := "1234"
	if hostSomaxconn == somaxconn {
		somaxconn = "1235"
	}
	rmid := "1"
	if hostRmid == rmid {
		rmid = "0"
	}

	cfg := config("hostns", 0)
	cfg.Linux = &runtimeapi.LinuxPodSandboxConfig{
		SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{
			Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_NODE, Ipc: runtimeapi.NamespaceMode_NODE}},
		Sysctls: map[string]string{"net.core.somaxconn": somaxconn},
	}
	id := e.run(cfg)
	st := e.status(id)
	if st.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("state = %v, want READY", st.State)
	}
	if o := st.Linux.GetNamespaces().GetOptions(); o.GetPid() != runtimeapi.NamespaceMode_NODE || o.GetIpc() != runtimeapi.NamespaceMode_NODE || o.GetNetwork() != runtimeapi.NamespaceMode_POD {
		t.Errorf("namespace options = %v, want network POD, pid NODE, ipc NODE", o)
	}
	if _, err := os.Lstat(layout.Run(st.RunDir).NSPin("ipc")); !os.IsNotExist(err) {
		t.Errorf("a host-IPC sandbox has an IPC pin: %v", err)
	}
	if got := read("ip", "netns", "exec", st.Netns, "cat", "/proc/sys/net/core/somaxconn"); got != somaxconn {
		t.Errorf("net.core.somaxconn in the sandbox = %s, want %s", got, somaxconn)
	}
	e.remove(id)

	cfg = config("ipcsysctl", 0)
	cfg.Linux = &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"kernel.shm_rmid_forced": rmid}}
	id = e.run(cfg)
	st = e.status(id)
	if got := read("nsenter", "--ipc="+layout.Run(st.RunDir).NSPin("ipc"), "cat", "/proc/sys/kernel/shm_rmid_forced"); got != rmid {
		t.Errorf("kernel.shm_rmid_forced in the sandbox = %s, want %s", got, rmid)
	}
	e.remove(id)

	if got := read("cat", "/proc/sys/net/core/somaxconn"); got != hostSomaxconn {
		t.Errorf("the host's net.core.somaxconn changed: %s, was %s", got, hostSomaxconn)
	}
	if got := read("cat", "/proc/sys/kernel/shm_rmid_forced"); got != hostRmid {
		t.Errorf("the host's kernel.shm_rmid_forced changed: %s, was %s", got, hostRmid)
	}
	testutil.AssertNoLeak(t, before, e.roots())
}

// TestSandboxBadInput sends what a kubelet never should and checks each
// answer's code and that nothing was created.
func TestSandboxBadInput(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	withNS := func(o *runtimeapi.NamespaceOption) *runtimeapi.PodSandboxConfig {
		c := config("ns", 0)
		c.Linux = &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: o}}
		return c
	}
	edit := func(f func(c *runtimeapi.PodSandboxConfig)) *runtimeapi.PodSandboxConfig {
		c := config("bad", 0)
		f(c)
		return c
	}
	for _, c := range []struct {
		name    string
		req     *runtimeapi.RunPodSandboxRequest
		code    codes.Code
		mention string
	}{
		{"no config", &runtimeapi.RunPodSandboxRequest{}, codes.InvalidArgument, "config"},
		{"no metadata", &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{}}, codes.InvalidArgument, "config.metadata"},
		{"empty metadata", &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{}}}, codes.InvalidArgument, "config.metadata.name"},
		{"name with a slash", &runtimeapi.RunPodSandboxRequest{Config: edit(func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Name = "../../etc" })}, codes.InvalidArgument, "config.metadata.name"},
		{"name with a newline", &runtimeapi.RunPodSandboxRequest{Config: edit(func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Name = "a\nb" })}, codes.InvalidArgument, "config.metadata.name"},
		{"no namespace", &runtimeapi.RunPodSandboxRequest{Config: edit(func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Namespace = "" })}, codes.InvalidArgument, "config.metadata.namespace"},
		{"namespace with a slash", &runtimeapi.RunPodSandboxRequest{Config: edit(func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Namespace = "a/b" })}, codes.InvalidArgument, "config.metadata.namespace"},
		{"no uid", &runtimeapi.RunPodSandboxRequest{Config: edit(func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Uid = "" })}, codes.InvalidArgument, "config.metadata.uid"},
		{"bad hostname", &runtimeapi.RunPodSandboxRequest{Config: edit(func(c *runtimeapi.PodSandboxConfig) { c.Hostname = "Not_A_Host" })}, codes.InvalidArgument, "config.hostname"},
		{"bad DNS server", &runtimeapi.RunPodSandboxRequest{Config: edit(func(c *runtimeapi.PodSandboxConfig) {
			c.DnsConfig = &runtimeapi.DNSConfig{Servers: []string{"dns.example"}}
		})}, codes.InvalidArgument, "config.dns_config.servers[0]"},
		{"bad host port", &runtimeapi.RunPodSandboxRequest{Config: edit(func(c *runtimeapi.PodSandboxConfig) {
			c.PortMappings = []*runtimeapi.PortMapping{{HostPort: 70000, ContainerPort: 80}}
		})}, codes.InvalidArgument, "config.port_mappings[0].host_port"},
		{"bad container port", &runtimeapi.RunPodSandboxRequest{Config: edit(func(c *runtimeapi.PodSandboxConfig) {
			c.PortMappings = []*runtimeapi.PortMapping{{HostPort: 8080}}
		})}, codes.InvalidArgument, "config.port_mappings[0].container_port"},
		{"bad host IP", &runtimeapi.RunPodSandboxRequest{Config: edit(func(c *runtimeapi.PodSandboxConfig) {
			c.PortMappings = []*runtimeapi.PortMapping{{HostPort: 8080, ContainerPort: 80, HostIp: "host"}}
		})}, codes.InvalidArgument, "config.port_mappings[0].host_ip"},
		{"network CONTAINER", &runtimeapi.RunPodSandboxRequest{Config: withNS(&runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_CONTAINER})}, codes.InvalidArgument, "namespace_options.network"},
		{"pid TARGET", &runtimeapi.RunPodSandboxRequest{Config: withNS(&runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_TARGET})}, codes.InvalidArgument, "namespace_options.pid"},
		{"host's sysctl", &runtimeapi.RunPodSandboxRequest{Config: edit(func(c *runtimeapi.PodSandboxConfig) {
			c.Linux = &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"vm.swappiness": "1"}}
		})}, codes.InvalidArgument, `config.linux.sysctls["vm.swappiness"]`},
		// Past validation: the sandbox is made, the kernel refuses the
		// value, and everything made is rolled back.
		{"sysctl value the kernel refuses", &runtimeapi.RunPodSandboxRequest{Config: edit(func(c *runtimeapi.PodSandboxConfig) {
			c.Linux = &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"kernel.shm_rmid_forced": "1", "net.core.somaxconn": "many"}}
		})}, codes.InvalidArgument, `config.linux.sysctls["net.core.somaxconn"]`},
		{"sysctl the kernel lacks", &runtimeapi.RunPodSandboxRequest{Config: edit(func(c *runtimeapi.PodSandboxConfig) {
			c.Linux = &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"net.ipv4.no_such_knob": "1"}}
		})}, codes.InvalidArgument, `config.linux.sysctls["net.ipv4.no_such_knob"]`},
		{"ipc sysctl on host ipc", &runtimeapi.RunPodSandboxRequest{Config: edit(func(c *runtimeapi.PodSandboxConfig) {
			c.Linux = &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"kernel.msgmax": "1"},
				SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Ipc: runtimeapi.NamespaceMode_NODE}}}
		})}, codes.InvalidArgument, `config.linux.sysctls["kernel.msgmax"]`},
		{"unknown handler", &runtimeapi.RunPodSandboxRequest{Config: config("h", 0), RuntimeHandler: "kata"}, codes.InvalidArgument, "runtime_handler"},
	} {
		_, err := e.rt.RunPodSandbox(e.ctx(), c.req)
		if status.Code(err) != c.code || !strings.Contains(status.Convert(err).Message(), c.mention) {
			t.Errorf("%s: RunPodSandbox = %v, want %v naming %q", c.name, err, c.code, c.mention)
		}
	}
	for _, id := range []string{"0123456789abcdef", "../../etc/passwd", "a"} {
		if _, err := e.rt.StopPodSandbox(e.ctx(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Errorf("StopPodSandbox(%q) of an unknown sandbox = %v, want success", id, err)
		}
		if _, err := e.rt.RemovePodSandbox(e.ctx(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Errorf("RemovePodSandbox(%q) of an unknown sandbox = %v, want success", id, err)
		}
		if _, err := e.rt.PodSandboxStatus(e.ctx(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id}); status.Code(err) != codes.NotFound {
			t.Errorf("PodSandboxStatus(%q) of an unknown sandbox = %v, want NotFound", id, err)
		}
	}
	if _, err := e.rt.PodSandboxStatus(e.ctx(), &runtimeapi.PodSandboxStatusRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("PodSandboxStatus without an id = %v, want InvalidArgument", err)
	}
	if _, err := e.rt.CreateContainer(e.ctx(), &runtimeapi.CreateContainerRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("CreateContainer without a sandbox id = %v, want InvalidArgument", err)
	}
	if _, err := e.rt.Attach(e.ctx(), &runtimeapi.AttachRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Attach without a container id = %v, want InvalidArgument", err)
	}
	testutil.AssertNoLeak(t, before, e.roots())
}

// TestSandboxNames: any name a CRI client sends (critest's have capitals)
// is accepted and given back as sent; only the peapod pod's name is a DNS
// label.
func TestSandboxNames(t *testing.T) {
	e := newEnv(t)
	for _, md := range []*runtimeapi.PodSandboxMetadata{
		{Name: "PodSandbox-for-test_1.A", Namespace: "CRI-Test_NS", Uid: "U1"},
		{Name: strings.Repeat("n", 300), Namespace: strings.Repeat("s", 100), Uid: "u2", Attempt: 7},
		{Name: "---", Namespace: "...", Uid: "u3"},
	} {
		id := e.run(&runtimeapi.PodSandboxConfig{Metadata: md})
		st := e.status(id)
		if got := st.Metadata; got.Name != md.Name || got.Namespace != md.Namespace || got.Uid != md.Uid || got.Attempt != md.Attempt {
			t.Errorf("metadata %v came back as %v", md, got)
		}
		if st.State != runtimeapi.PodSandboxState_SANDBOX_READY {
			t.Errorf("sandbox %.20s: state %v, want READY", md.Name, st.State)
		}
		e.remove(id)
	}
}

// TestDuplicateSandbox: a second sandbox of the same name, namespace, uid
// and attempt is refused (as containerd refuses to reserve its name
// twice); the next attempt, or another uid, is a sandbox of its own.
func TestDuplicateSandbox(t *testing.T) {
	e := newEnv(t)
	first := e.run(config("dup", 0))
	_, err := e.rt.RunPodSandbox(e.ctx(), &runtimeapi.RunPodSandboxRequest{Config: config("dup", 0)})
	if status.Code(err) != codes.AlreadyExists {
		t.Fatalf("second RunPodSandbox of the same metadata = %v, want AlreadyExists", err)
	}
	next := e.run(config("dup", 1))
	recreated := config("dup", 0)
	recreated.Metadata.Uid = "another-uid"
	third := e.run(recreated)
	if first == next || next == third || first == third {
		t.Errorf("ids %s %s %s: want three distinct", first, next, third)
	}
	r, err := e.rt.ListPodSandbox(e.ctx(), &runtimeapi.ListPodSandboxRequest{})
	if err != nil || len(r.Items) != 3 {
		t.Fatalf("list = %v (%v), want 3 sandboxes", r, err)
	}
	for _, id := range []string{first, next, third} {
		e.remove(id)
	}
}

// TestConcurrentRunRemove removes a sandbox while it is being run: the
// remove, which can find the sandbox as soon as it is recorded, waits for
// the run to finish, and then nothing of it is left.
func TestConcurrentRunRemove(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	for i := range 3 {
		var wg sync.WaitGroup
		var runErr error
		var runID string
		wg.Go(func() {
			r, err := e.rt.RunPodSandbox(e.ctx(), &runtimeapi.RunPodSandboxRequest{Config: config("race", uint32(i))})
			runErr = err
			if err == nil {
				runID = r.PodSandboxId
			}
		})
		// Remove whatever the list shows, as soon as it shows it.
		var removed string
		for removed == "" {
			r, err := e.rt.ListPodSandbox(e.ctx(), &runtimeapi.ListPodSandboxRequest{})
			if err != nil {
				t.Fatalf("ListPodSandbox: %v", err)
			}
			if len(r.Items) > 0 {
				removed = r.Items[0].Id
				e.remove(removed)
			}
		}
		wg.Wait()
		if runErr != nil {
			t.Fatalf("RunPodSandbox raced by a remove: %v", runErr)
		}
		if runID != removed {
			t.Fatalf("run made %s, the list showed %s", runID, removed)
		}
		r, err := e.rt.ListPodSandbox(e.ctx(), &runtimeapi.ListPodSandboxRequest{})
		if err != nil || len(r.Items) != 0 {
			t.Fatalf("after the race: list = %v (%v), want empty", r.GetItems(), err)
		}
	}
	testutil.AssertNoLeak(t, before, e.roots())
}

// sameSet reports whether a and b hold the same strings.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		seen[s]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

// BenchmarkSandboxCycle is one RunPodSandbox + StopPodSandbox +
// RemovePodSandbox through the gRPC client (crictl runp/stopp/rmp without
// crictl's own start-up). containerd 1.6.20 here: runp 107 ms, stopp 129,
// rmp 38 (scripts/bench.sh's anchor, issue 15).
func BenchmarkSandboxCycle(b *testing.B) {
	e := newEnv(b)
	e.remove(e.run(config("warmup", 0))) // the bridge exists from here on
	b.ResetTimer()
	for i := range b.N {
		id := e.run(config("bench", uint32(i)))
		if _, err := e.rt.StopPodSandbox(e.ctx(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			b.Fatalf("StopPodSandbox: %v", err)
		}
		e.remove(id)
	}
}

// TestImageFsInfo: the CRI client checks the image service with it before
// anything else (critest fails every spec without it).
func TestImageFsInfo(t *testing.T) {
	e := newEnv(t)
	id := e.run(config("fs", 0))
	defer e.remove(id)
	r, err := runtimeapi.NewImageServiceClient(e.conn).ImageFsInfo(e.ctx(), &runtimeapi.ImageFsInfoRequest{})
	if err != nil {
		t.Fatalf("ImageFsInfo: %v", err)
	}
	if len(r.ImageFilesystems) != 1 || len(r.ContainerFilesystems) != 1 {
		t.Fatalf("ImageFsInfo = %v, want one image and one container filesystem", r)
	}
	// The sandbox's pod dir is on the container filesystem.
	if c := r.ContainerFilesystems[0]; c.InodesUsed.GetValue() < 2 || c.FsId.GetMountpoint() != (layout.Root{Root: e.root, RunRoot: e.runRoot}).PodsDir() {
		t.Errorf("container filesystem = %v, want the pods dir with the sandbox's entries", c)
	}
}

// TestSandboxQoSFromCgroupParent: the kubelet's cgroup parent names the
// sandbox's QoS class, with either cgroup driver's naming; the sandbox's
// cgroup goes under peapod's cgroup of that class, and the class's cgroup
// goes with its last sandbox.
func TestSandboxQoSFromCgroupParent(t *testing.T) {
	e := newEnv(t)
	// The freezer hierarchy on v1, the unified one on a pure v2 host.
	base := "/sys/fs/cgroup/freezer"
	if _, err := os.Stat(base); err != nil {
		base = "/sys/fs/cgroup"
	}
	for _, tt := range []struct{ parent, dir string }{
		{"/kubepods/burstable/pod0a1b", "burstable"},
		{"kubepods-besteffort-pod0a1b.slice", "besteffort"},
	} {
		cfg := config("qos-"+tt.dir, 0)
		cfg.Linux = &runtimeapi.LinuxPodSandboxConfig{CgroupParent: tt.parent}
		id := e.run(cfg)
		dir := filepath.Join(base, e.m.CgroupRoot(), tt.dir)
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatalf("sandbox with cgroup parent %q: %v", tt.parent, err)
		}
		var pods []string
		for _, d := range entries {
			if d.IsDir() {
				pods = append(pods, d.Name())
			}
		}
		if len(pods) != 1 {
			t.Errorf("sandbox with cgroup parent %q: %s holds pod cgroups %v, want exactly one", tt.parent, dir, pods)
		}
		e.remove(id)
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s outlives its only sandbox (stat: %v)", dir, err)
		}
	}
}
