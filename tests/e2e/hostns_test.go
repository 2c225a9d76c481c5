package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// nsInode is the inode of /proc/PID/ns/TYPE: the namespace's identity.
func nsInode(t *testing.T, pid int, typ string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/%s", pid, typ), &st); err != nil {
		t.Fatalf("failed to stat the %s namespace of pid %d: %v", typ, pid, err)
	}
	return st.Ino
}

// TestHostNamespaces_PID: a hostPID pod's container is in the host's PID
// namespace (the same inode as this test's) and its /proc shows the host's
// processes: the host's PID 1 and this test's own pid. A pod without
// hostPID is in a namespace of its own, where PID 1 is its container.
func TestHostNamespaces_PID(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	host := newPod("hpid", ctr("app", "sleep", "1000"))
	host.Spec.HostPID = true
	e.runPod(podJSON(host))
	e.runPod(podJSON(newPod("own", ctr("app", "sleep", "1000"))))
	hostPID, hostInit := nsInode(t, os.Getpid(), "pid"), readHost(t, "/proc/1/cmdline")
	self := strconv.Itoa(os.Getpid())

	c := e.inspect("hpid").container(t, "app")
	if got := nsInode(t, c.PID, "pid"); got != hostPID {
		t.Errorf("the hostPID container's pid namespace is %d, the host's %d", got, hostPID)
	}
	if got := e.mustExec("hpid", "app", "cat", "/proc/1/cmdline"); got != hostInit {
		t.Errorf("PID 1 in the hostPID container is %q, the host's is %q", got, hostInit)
	}
	if _, _, code := e.exec("hpid", "app", "test", "-d", "/proc/"+self); code != 0 {
		t.Errorf("the hostPID container does not see the test's pid %s", self)
	}
	// Its own pid as the host numbers it: the exec's shell is a host pid.
	if got := strings.TrimSpace(e.mustExec("hpid", "app", "cat", "/proc/"+strconv.Itoa(c.PID)+"/cmdline")); got != "sleep\x001000\x00" {
		t.Errorf("pid %d in the hostPID container runs %q, want its sleep", c.PID, got)
	}

	o := e.inspect("own").container(t, "app")
	if got := nsInode(t, o.PID, "pid"); got == hostPID {
		t.Errorf("the container without hostPID is in the host's pid namespace %d", got)
	}
	if got := e.mustExec("own", "app", "cat", "/proc/1/cmdline"); got != "sleep\x001000\x00" {
		t.Errorf("PID 1 of the container without hostPID is %q, want its sleep", got)
	}
	if out, _, code := e.exec("own", "app", "cat", "/proc/"+self+"/cmdline"); code == 0 && strings.Contains(out, "e2e") {
		t.Errorf("the container without hostPID sees the test's process %s", self)
	}

	// Removed, the hostPID pod leaves no process: the container was killed
	// through its cgroup, not as a PID namespace's init.
	e.mustRun("rm", "-f", "hpid")
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", c.PID)); !os.IsNotExist(err) {
		if cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", c.PID)); string(cmd) == "sleep\x001000\x00" {
			t.Errorf("the hostPID container's process %d outlived its pod", c.PID)
		}
	}
	e.mustRun("rm", "-f", "own")
	e.assertNoLeak(before)
}

// TestHostNamespaces_IPC: a hostIPC pod's container is in the host's IPC
// namespace (the same inode), sees a SysV shared memory segment made on the
// host and the host's /dev/shm; a pod without hostIPC sees neither, and its
// IPC namespace is its own.
func TestHostNamespaces_IPC(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	id, err := unix.SysvShmGet(unix.IPC_PRIVATE, 4096, unix.IPC_CREAT|0o600)
	if err != nil {
		t.Fatalf("failed to create a SysV shm segment: %v", err)
	}
	t.Cleanup(func() {
		if _, err := unix.SysvShmCtl(id, unix.IPC_RMID, nil); err != nil {
			t.Errorf("failed to remove shm segment %d: %v", id, err)
		}
	})
	shmFile := filepath.Join("/dev/shm", "peapod-e2e-"+randomHex(t, 4))
	if err := os.WriteFile(shmFile, []byte("from the host"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(shmFile) })

	host := newPod("hipc", ctr("app", "sleep", "1000"))
	host.Spec.HostIPC = true
	e.runPod(podJSON(host))
	e.runPod(podJSON(newPod("own", ctr("app", "sleep", "1000"))))
	hostIPC := nsInode(t, os.Getpid(), "ipc")

	// shmids lists the segment ids in a container's /proc/sysvipc/shm,
	// which shows the IPC namespace of the process reading it.
	shmids := func(pod string) map[string]bool {
		ids := map[string]bool{}
		for _, line := range strings.Split(e.mustExec(pod, "app", "cat", "/proc/sysvipc/shm"), "\n")[1:] {
			if f := strings.Fields(line); len(f) > 1 {
				ids[f[1]] = true
			}
		}
		return ids
	}
	seg := strconv.Itoa(id)

	c := e.inspect("hipc").container(t, "app")
	if got := nsInode(t, c.PID, "ipc"); got != hostIPC {
		t.Errorf("the hostIPC container's ipc namespace is %d, the host's %d", got, hostIPC)
	}
	if !shmids("hipc")[seg] {
		t.Errorf("the hostIPC container does not see the host's shm segment %s", seg)
	}
	if got := e.mustExec("hipc", "app", "cat", shmFile); got != "from the host" {
		t.Errorf("the hostIPC container's %s = %q, want the host's file", shmFile, got)
	}

	o := e.inspect("own").container(t, "app")
	if got := nsInode(t, o.PID, "ipc"); got == hostIPC {
		t.Errorf("the container without hostIPC is in the host's ipc namespace %d", got)
	}
	if shmids("own")[seg] {
		t.Errorf("the container without hostIPC sees the host's shm segment %s", seg)
	}
	if _, _, code := e.exec("own", "app", "test", "-e", shmFile); code == 0 {
		t.Errorf("the container without hostIPC sees the host's %s", shmFile)
	}

	// Removing the hostIPC pod leaves the host's /dev/shm as it was (it
	// was bound, never a mount of the pod's).
	e.mustRun("rm", "-f", "hipc")
	if b, err := os.ReadFile(shmFile); err != nil || string(b) != "from the host" {
		t.Errorf("the host's %s after the pod went: %q, %v", shmFile, b, err)
	}
	e.mustRun("rm", "-f", "own")
	e.assertNoLeak(before)
}

// TestHostNamespaces_Refused: the API server's checks of hostPID and
// hostIPC, each naming the field, before anything is created.
func TestHostNamespaces_Refused(t *testing.T) {
	e := newEnv(t)
	shared := newPod("bad", ctr("app", "sleep", "1000"))
	shared.Spec.HostPID, shared.Spec.ShareProcessNamespace = true, ptr(true)
	ipcSysctl := withSysctls(newPod("bad", ctr("app", "sleep", "1000")), "kernel.shm_rmid_forced", "1")
	ipcSysctl.Spec.HostIPC = true
	for _, tt := range []struct {
		name string
		pod  *corev1.Pod
		want string
	}{
		{"hostPID with shareProcessNamespace", shared, "spec.shareProcessNamespace: Invalid value: true: ShareProcessNamespace and HostPID cannot both be enabled"},
		{"an IPC sysctl with hostIPC", ipcSysctl, `spec.securityContext.sysctls[0].name: Invalid value: "kernel.shm_rmid_forced": may not be specified when 'hostIPC' is true`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := e.snapshot()
			_, stderr, code := e.run(podJSON(tt.pod), "run", "-d", "-f", "-")
			if code == 0 || !strings.Contains(stderr, tt.want) {
				t.Fatalf("run: exit %d, stderr %q; want an error containing %q", code, stderr, tt.want)
			}
			e.assertNoLeak(before)
		})
	}
}
