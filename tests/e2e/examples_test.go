package e2e

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// examplesDir holds the manifests README walks through.
const examplesDir = "../../examples"

// exampleChecks runs each example's behaviour check after `run -d -f` of
// its file returned; every file of examples/ must have one.
var exampleChecks = map[string]func(e *env){
	// The README's first example: the sidecar writes the page into the
	// shared emptyDir, the app serves it, the readiness probe passes.
	"two-containers.yaml": func(e *env) {
		e.waitPod("web", waitTimeout, func(p *corev1.Pod) (bool, string) { return podReady(p), "Ready" })
		if out := e.mustExec("web", "sidecar", "wget", "-q", "-O", "-", "http://127.0.0.1:8080/"); !strings.Contains(out, "hello from web") {
			e.t.Errorf("page served to the sidecar over localhost: %q", out)
		}
	},
	// Localhost and an emptyDir are shared: the poller reads back over
	// 127.0.0.1 what it wrote into the volume.
	"sidecar-localhost.yaml": func(e *env) {
		e.waitLog("sidecar-localhost", "poller", "served over localhost: written by the sidecar at")
	},
	// Each liveness probe (exec, HTTP, TCP) fails after ~6 s and restarts its container.
	"probes.yaml": func(e *env) {
		e.waitPod("liveness", 3*waitTimeout, func(p *corev1.Pod) (bool, string) {
			for _, c := range p.Status.ContainerStatuses {
				if c.RestartCount < 1 {
					return false, "every container restarted by its liveness probe"
				}
			}
			return len(p.Status.ContainerStatuses) == 3, "three containers"
		})
		events := e.mustRun("events", "liveness")
		for _, c := range []string{"exec", "http", "tcp"} {
			if !strings.Contains(events, "Container "+c+" failed liveness probe, will be restarted") {
				e.t.Errorf("no liveness kill of %s in events:\n%s", c, events)
			}
		}
	},
	// The sidecar finds the main container's shell in the shared PID
	// namespace and signals it; the main container's trap logs it.
	"shared-pid.yaml": func(e *env) {
		e.waitLog("shared-pid", "main", "reloading on SIGHUP")
		if ps := e.mustExec("shared-pid", "signaller", "ps"); !strings.Contains(ps, "main-loop") || !strings.Contains(ps, "reaper") {
			e.t.Errorf("ps in the sidecar does not show the main container and the reaper:\n%s", ps)
		}
	},
	// One pod reaches the other at its own IP on the bridge.
	"two-pods.yaml": func(e *env) {
		ip := e.ipOf("server")
		e.ipOf("client")
		if out := e.mustExec("client", "wget", "wget", "-q", "-O", "-", "http://"+ip+":8080/"); strings.TrimSpace(out) != "server" {
			e.t.Errorf("client got %q from server at %s, want its hostname", out, ip)
		}
	},
	// Both init containers completed before the app started, and the app
	// serves what the first wrote.
	"init-containers.yaml": func(e *env) {
		p := e.get("init-demo")
		for _, s := range p.Status.InitContainerStatuses {
			if s.State.Terminated == nil || s.State.Terminated.Reason != "Completed" || s.State.Terminated.ExitCode != 0 {
				e.t.Errorf("init container %s: %+v, want Completed with 0", s.Name, s.State)
			}
		}
		if len(p.Status.InitContainerStatuses) != 2 {
			e.t.Errorf("%d init container statuses, want 2", len(p.Status.InitContainerStatuses))
		}
		if out := e.mustExec("init-demo", "web", "wget", "-q", "-O", "-", "http://127.0.0.1:8080/"); !strings.Contains(out, "prepared by an init container") {
			e.t.Errorf("app serves %q", out)
		}
	},
	// The shell waits on a terminal of its own, from the container's
	// devpts, for someone to attach.
	"shell.yaml": func(e *env) {
		if out := strings.TrimSpace(e.mustExec("shell", "sh", "readlink", "/proc/1/fd/0")); out != "/dev/pts/0" {
			e.t.Errorf("the shell's stdin is %q, want its own /dev/pts/0", out)
		}
	},
	// The ConfigMap in the same file feeds an env var and a volume.
	"configmap.yaml": func(e *env) {
		out := e.mustExec("configured", "app", "sh", "-c", "echo $GREETING; cat /etc/app/app.conf")
		if out != "hello from a ConfigMap\nlisten = 8080\ncolor = blue\n" {
			e.t.Errorf("configured pod sees %q", out)
		}
	},
}

// TestExamples runs every file of examples/ as README shows it, checks
// what it is there to show, and removes it without leaks.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	sort.Strings(names)
	for _, name := range names {
		if exampleChecks[name] == nil {
			t.Errorf("examples/%s has no check in exampleChecks", name)
		}
	}
	for name := range exampleChecks {
		if _, err := os.Stat(filepath.Join(examplesDir, name)); err != nil {
			t.Errorf("exampleChecks names %s: %v", name, err)
		}
	}
	e := newEnv(t)
	before := e.snapshot()
	for _, name := range names {
		check := exampleChecks[name]
		if check == nil {
			continue
		}
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			sub := *e
			sub.t = t
			out := sub.mustRun("run", "-d", "-f", filepath.Join(examplesDir, name))
			var pods []string
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if pod, ok := strings.CutSuffix(strings.TrimPrefix(line, "pod/"), " created"); ok {
					pods = append(pods, pod)
					if sharedHost() {
						sub.inspect(pod) // remembers its objects for the leak filter
					}
				}
			}
			check(&sub)
			for _, pod := range pods {
				sub.mustRun("rm", "-f", pod)
			}
		})
	}
	e.assertNoLeak(before)
}

// podReady reports the pod's Ready condition.
func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
