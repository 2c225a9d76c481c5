package layout

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestPaths pins every path to its spelling: files written by one version
// are read by the next (an upgraded CLI adopts pods of the old one), so a
// change here is a format change, to be made on purpose.
func TestPaths(t *testing.T) {
	r := Root{Root: "/var/lib/peapod", RunRoot: "/run/peapod"}
	const uid = "01234567-89ab-cdef-0123-456789abcdef"
	pod, run := Pod(r.PodDir(uid)), Run(r.RunDir(uid))
	fifos := run.FIFOs("c1", 3)
	long := strings.Repeat("n", 253)
	for _, tt := range []struct{ got, want string }{
		{r.ID(), "2037d7"},
		{Root{Root: "/var/lib/peapod/", RunRoot: "/run/peapod"}.ID(), "2037d7"},
		{r.LockPath(), "/var/lib/peapod/lock"},
		{r.ImagesDir(), "/var/lib/peapod/images"},
		{r.NetworkConfig(), "/var/lib/peapod/network.json"},
		{r.NetDataDir("peapod0"), "/var/lib/peapod/net/peapod0"},
		{NetDataDir("/x", "br"), "/x/net/br"},
		{r.CNICacheDir(), "/var/lib/peapod/net/cni-cache"},
		{r.SeccompDir(), "/var/lib/peapod/seccomp"},
		{r.PodsDir(), "/var/lib/peapod/pods"},
		{r.PodDir(uid), "/var/lib/peapod/pods/" + uid},
		{r.RecordPath(uid), "/var/lib/peapod/pods/" + uid + "/pod.json"},
		{r.NamesDir(), "/var/lib/peapod/names"},
		{r.NameIndex("default", "web"), "/var/lib/peapod/names/default_web"},
		{r.NameIndex("ns", long), "/var/lib/peapod/names/ns_" + long[:147] + "@6e666d2e049be482d37e53488f49a45dbaf95836dcd999ce6c37ffb3c1f21822"},
		{r.RunPodsDir(), "/run/peapod/pods"},
		{r.RunDir(uid), "/run/peapod/pods/" + uid},
		{r.BootIDMarker(), "/run/peapod/boot_id"},
		{r.HelperMount(), "/run/peapod/bin/2/peapod-init"},
		{r.LegacyHelperMount(), "/run/peapod/bin/peapod-init"},
		{r.NetnsName(uid), "peapod-2037d7-01234567"},
		{NetnsPath("peapod-2037d7-01234567"), "/run/netns/peapod-2037d7-01234567"},
		{pod.Record(), "/var/lib/peapod/pods/" + uid + "/pod.json"},
		{pod.Sources(), "/var/lib/peapod/pods/" + uid + "/sources.json"},
		{pod.Volume("data"), "/var/lib/peapod/pods/" + uid + "/volumes/data"},
		{pod.Upper("c1"), "/var/lib/peapod/pods/" + uid + "/containers/c1/upper"},
		{pod.Work("c1"), "/var/lib/peapod/pods/" + uid + "/containers/c1/work"},
		{pod.Log("c1"), "/var/lib/peapod/pods/" + uid + "/logs/c1/0.log"},
		{InstanceLog(pod.Log("c1"), 2), "/var/lib/peapod/pods/" + uid + "/logs/c1/2.log"},
		{run.Spec(), "/run/peapod/pods/" + uid + "/spec.json"},
		{run.Status(), "/run/peapod/pods/" + uid + "/status.json"},
		{run.Events(), "/run/peapod/pods/" + uid + "/events.json"},
		{run.Socket(), "/run/peapod/pods/" + uid + "/supervisor.sock"},
		{run.SupervisorLog(), "/run/peapod/pods/" + uid + "/supervisor.log"},
		{run.AdoptLock(), "/run/peapod/pods/" + uid + "/adopt.lock"},
		{run.Shm(), "/run/peapod/pods/" + uid + "/shm"},
		{run.Etc(), "/run/peapod/pods/" + uid + "/etc"},
		{run.EtcFile("hosts"), "/run/peapod/pods/" + uid + "/etc/hosts"},
		{run.Volume("mem"), "/run/peapod/pods/" + uid + "/volumes/mem"},
		{run.Rootfs("c1"), "/run/peapod/pods/" + uid + "/rootfs/c1"},
		{run.NSDir(), "/run/peapod/pods/" + uid + "/ns"},
		{run.NSPin("ipc"), "/run/peapod/pods/" + uid + "/ns/ipc"},
		{fifos[0], "/run/peapod/pods/" + uid + "/io/c1-3.out"},
		{fifos[1], "/run/peapod/pods/" + uid + "/io/c1-3.err"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// TestNameIndexFile: every valid namespace/name pair gets a name index
// file the filesystem accepts (a 63-character namespace and a 253-character
// pod name together exceed NAME_MAX), distinct for distinct pairs; short
// keys keep their readable form, which existing roots use.
func TestNameIndexFile(t *testing.T) {
	label63 := strings.Repeat("n", 63)
	name253 := strings.Repeat(strings.Repeat("a", 61)+"b.", 4) + "c"
	r := Root{Root: t.TempDir()}
	if err := os.Mkdir(r.NamesDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, k := range [][2]string{
		{"default", "web"},
		{"default", "web.v1.example"},
		{"default", name253},
		{label63, name253},
		{label63, name253[:252] + "d"},
		{"default", strings.Repeat("x", 247)}, // "default_" + 247 = 255 bytes: still whole
		{"default", strings.Repeat("x", 248)},
	} {
		f := NameIndexFile(k[0], k[1])
		if len(f) > fileNameMax {
			t.Errorf("name index of %s/%s is %d bytes long", k[0], k[1], len(f))
		}
		if whole := k[0] + "_" + k[1]; len(whole) <= fileNameMax && f != whole {
			t.Errorf("name index of %s/%s = %q, want %q", k[0], k[1], f, whole)
		}
		if other, dup := seen[f]; dup {
			t.Errorf("%s/%s and %s share the name index %q", k[0], k[1], other, f)
		}
		seen[f] = k[0] + "/" + k[1]
		if err := os.WriteFile(r.NameIndex(k[0], k[1]), []byte("uid"), 0o600); err != nil {
			t.Errorf("name index of %s/%s: %v", k[0], k[1], err)
		}
	}
}

// TestStdlibOnly: the supervisor links this package, so it must not pull
// anything from outside the standard library into it.
func TestStdlibOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	if deps := strings.Fields(string(out)); len(deps) != 1 || deps[0] != "github.com/peapod/peapod/runtime/layout" {
		t.Errorf("runtime/layout depends on %q, want the standard library only", deps)
	}
}
