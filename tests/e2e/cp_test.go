package e2e

import (
	"crypto/rand"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// treeEntry is one file of the tree TestCp copies both ways.
type treeEntry struct {
	rel      string
	mode     fs.FileMode // permission and setuid bits
	uid, gid int
	dir      bool
	link     string // a symlink's target
}

// cpTree has modes, owners, a setuid file and a symlink.
var cpTree = []treeEntry{
	{rel: "", mode: 0o750, uid: 1234, gid: 5678, dir: true},
	{rel: "sub", mode: 0o700, uid: 2000, gid: 3000, dir: true},
	{rel: "sub/f", mode: 0o640, uid: 1000, gid: 1001},
	{rel: "exe", mode: 0o755, uid: 0, gid: 0},
	{rel: "suid", mode: 0o755 | fs.ModeSetuid, uid: 0, gid: 0},
	{rel: "ln", link: "sub/f", uid: 42, gid: 43},
}

// makeTree writes cpTree at dir.
func makeTree(t *testing.T, dir string) {
	t.Helper()
	for _, e := range cpTree {
		p := filepath.Join(dir, e.rel)
		var err error
		switch {
		case e.dir:
			err = os.Mkdir(p, 0o700)
		case e.link != "":
			err = os.Symlink(e.link, p)
		default:
			err = os.WriteFile(p, []byte("content of "+e.rel), 0o600)
		}
		if err == nil {
			err = os.Lchown(p, e.uid, e.gid)
		}
		if err == nil && e.link == "" {
			err = os.Chmod(p, e.mode)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// statLine is what `stat -c '%a %u %g %F'` prints for e (busybox's %a
// shows setuid as 4755).
func (e treeEntry) statLine() string {
	switch {
	case e.link != "":
		return fmt.Sprintf("777 %d %d symbolic link", e.uid, e.gid)
	case e.dir:
		return fmt.Sprintf("%o %d %d directory", e.mode.Perm(), e.uid, e.gid)
	}
	perm := uint32(e.mode.Perm())
	if e.mode&fs.ModeSetuid != 0 {
		perm |= 0o4000
	}
	return fmt.Sprintf("%o %d %d regular file", perm, e.uid, e.gid)
}

// checkHostTree compares dir with cpTree; setuid bits are expected dropped.
// merged: dir existed, and a merge leaves its own owner and mode alone.
func checkHostTree(t *testing.T, dir string, merged bool) {
	t.Helper()
	for _, e := range cpTree {
		if merged && e.rel == "" {
			continue
		}
		p := filepath.Join(dir, e.rel)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Error(err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != e.uid || int(st.Gid) != e.gid {
			t.Errorf("%s: owner %d:%d, want %d:%d", p, st.Uid, st.Gid, e.uid, e.gid)
		}
		if e.link != "" {
			if l, err := os.Readlink(p); err != nil || l != e.link {
				t.Errorf("%s: symlink to %q (%v), want %q", p, l, err, e.link)
			}
			continue
		}
		want := e.mode &^ fs.ModeSetuid
		if e.dir {
			want |= fs.ModeDir
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
		if !e.dir {
			if b, _ := os.ReadFile(p); string(b) != "content of "+e.rel {
				t.Errorf("%s: content %q", p, b)
			}
		}
	}
}

// TestCp_12: cp both ways (a 10 MiB file by checksum, a tree with modes,
// owners and a symlink), kubectl's destination rules, the default
// container, clear errors for missing paths, and every escape shape
// refused with nothing written outside; no leak after.
func TestCp_12(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	e.runPod(podJSON(newPod("cp", ctr("app", "sleep", "1000"), ctr("side", "sleep", "1000"))))
	e.inspect("cp")
	h := t.TempDir()
	// victim is a host directory the container names in its symlinks.
	victim := filepath.Join(h, "victim")
	os.Mkdir(victim, 0o755)
	os.WriteFile(filepath.Join(victim, "secret"), []byte("host secret"), 0o600)
	assertVictimUntouched := func(t *testing.T) {
		t.Helper()
		des, _ := os.ReadDir(victim)
		if len(des) != 1 {
			var names []string
			for _, de := range des {
				names = append(names, de.Name())
			}
			t.Errorf("the host dir %s was written: %v", victim, names)
		}
	}
	cpFails := func(t *testing.T, want string, args ...string) {
		t.Helper()
		_, stderr, code := e.run("", args...)
		if code == 0 || !strings.Contains(stderr, want) {
			t.Errorf("peapod cp %v: exit %d, stderr %q; want an error with %q", args, code, stderr, want)
		}
	}

	t.Run("10 MiB file both ways", func(t *testing.T) {
		e := e.on(t)
		big := filepath.Join(h, "big")
		data := make([]byte, 10<<20)
		rand.Read(data)
		os.WriteFile(big, data, 0o644)
		want := sha256File(t, big)
		start := time.Now()
		// /tmp exists: the file lands in it.
		e.mustRun("cp", big, "cp:/tmp", "-c", "app")
		in := time.Since(start)
		if got := strings.Fields(e.mustExec("cp", "app", "sha256sum", "/tmp/big"))[0]; got != want {
			t.Fatalf("sha256 in the container %s, want %s", got, want)
		}
		start = time.Now()
		out := filepath.Join(h, "out", "big2") // out/ is created, as kubectl does
		e.mustRun("cp", "cp:/tmp/big", out, "-c", "app")
		t.Logf("10 MiB into the container %v, out of it %v", in, time.Since(start))
		if got := sha256File(t, out); got != want {
			t.Errorf("sha256 copied out %s, want %s", got, want)
		}
		// A file into an existing host directory lands in it.
		e.mustRun("cp", "cp:/tmp/big", h, "-c", "app")
		if got := sha256File(t, filepath.Join(h, "big")); got != want {
			t.Errorf("sha256 of %s/big %s, want %s", h, got, want)
		}
	})

	t.Run("tree with modes and owners", func(t *testing.T) {
		e := e.on(t)
		tree := filepath.Join(h, "tree")
		makeTree(t, tree)
		// To a new name, then into an existing directory (as tree/).
		e.mustRun("cp", tree, "cp:/tmp/t1", "-c", "app")
		e.mustRun("cp", tree+"/", "cp:/tmp/", "-c", "app")
		for _, root := range []string{"/tmp/t1", "/tmp/tree"} {
			for _, te := range cpTree {
				p := filepath.Join(root, te.rel)
				got := strings.TrimSpace(e.mustExec("cp", "app", "stat", "-c", "%a %u %g %F", p))
				if got != te.statLine() {
					t.Errorf("%s in the container: %q, want %q", p, got, te.statLine())
				}
			}
		}
		if got := e.mustExec("cp", "app", "cat", "/tmp/t1/ln"); got != "content of sub/f" {
			t.Errorf("the symlink reads %q", got)
		}
		// Out to a new directory, then merged into an existing one.
		back := filepath.Join(h, "back")
		e.mustRun("cp", "cp:/tmp/t1", back, "-c", "app")
		checkHostTree(t, back, false)
		merged := filepath.Join(h, "merged")
		os.Mkdir(merged, 0o755)
		e.mustRun("cp", "cp:/tmp/t1/", merged, "-c", "app")
		checkHostTree(t, merged, true)
	})

	t.Run("default container", func(t *testing.T) {
		e := e.on(t)
		f := filepath.Join(h, "dflt")
		os.WriteFile(f, []byte("d"), 0o644)
		_, stderr, code := e.run("", "cp", f, "cp:/tmp/dflt")
		if code != 0 || !strings.Contains(stderr, `Defaulted container "app" out of: app, side`) {
			t.Errorf("cp without -c: exit %d, stderr %q; want kubectl's Defaulted container line", code, stderr)
		}
		e.mustExec("cp", "app", "test", "-f", "/tmp/dflt")
		if _, _, code := e.exec("cp", "side", "test", "-e", "/tmp/dflt"); code == 0 {
			t.Errorf("the file reached container side")
		}
	})

	t.Run("missing paths", func(t *testing.T) {
		e := e.on(t)
		cpFails(t, `"/nope": no such file or directory in container "app" of pod default/cp`, "cp", "cp:/nope", filepath.Join(h, "x"), "-c", "app")
		if _, err := os.Lstat(filepath.Join(h, "x")); err == nil {
			t.Errorf("a failed cp created its destination")
		}
		cpFails(t, "doesn't exist in local filesystem", "cp", filepath.Join(h, "missing"), "cp:/tmp/", "-c", "app")
		cpFails(t, `"/nodir": no such file or directory in container "app"`, "cp", filepath.Join(h, "big"), "cp:/nodir/x", "-c", "app")
		cpFails(t, `container "nope" not found`, "cp", filepath.Join(h, "big"), "cp:/tmp/", "-c", "nope")
		cpFails(t, `pod "ghost" in namespace "default": pod not found`, "cp", filepath.Join(h, "big"), "ghost:/tmp/")
		cpFails(t, "one of src or dest must be a remote file specification", "cp", filepath.Join(h, "big"), filepath.Join(h, "big3"))
		e.mustExec("cp", "app", "mkdir", "/tmp/isdir")
		os.WriteFile(filepath.Join(h, "isfile"), nil, 0o644)
		cpFails(t, "cannot overwrite non-directory", "cp", "cp:/tmp/isdir", filepath.Join(h, "isfile"), "-c", "app")
	})

	t.Run("escapes", func(t *testing.T) {
		e := e.on(t)
		rel := strings.Repeat("../", 12) + strings.TrimPrefix(victim, "/")
		e.mustExec("cp", "app", "sh", "-c", fmt.Sprintf(`set -e
mkdir -p /tmp/esc /tmp/s1 /tmp/s2/link /tmp/fifo
ln -s %[1]s /tmp/esc/abs
ln -s %[2]s /tmp/esc/rel
ln -s /etc /tmp/etclink
ln -s %[1]s /tmp/s1/link
echo pwned > /tmp/s2/link/pwned
mkfifo /tmp/fifo/p
echo ok > /tmp/fifo/ok`, victim, rel))
		// Reading through the container's symlinks to a host path: they
		// resolve inside its root, where that path does not exist.
		for _, p := range []string{"/tmp/esc/abs/secret", "/tmp/esc/rel/secret"} {
			cpFails(t, "no such file or directory in container", "cp", "cp:"+p, filepath.Join(h, "stolen"), "-c", "app")
		}
		if _, err := os.Lstat(filepath.Join(h, "stolen")); err == nil {
			t.Errorf("a host file was copied out through the container's symlink")
		}
		// The container's symlinks are copied as symlinks, not followed.
		esc := filepath.Join(h, "esc")
		e.mustRun("cp", "cp:/tmp/esc", esc, "-c", "app")
		if l, err := os.Readlink(filepath.Join(esc, "abs")); err != nil || l != victim {
			t.Errorf("esc/abs: %q %v, want a symlink to %s", l, err, victim)
		}
		// Writing into the container through its symlink to /etc writes
		// its own /etc, never the host's.
		marker := "peapod-cp-test-" + randomHex(t, 6)
		os.WriteFile(filepath.Join(h, marker), []byte("m"), 0o644)
		e.mustRun("cp", filepath.Join(h, marker), "cp:/tmp/etclink/", "-c", "app")
		if _, err := os.Lstat(filepath.Join("/etc", marker)); err == nil {
			os.Remove(filepath.Join("/etc", marker))
			t.Errorf("cp into the container wrote the host's /etc/%s", marker)
		}
		e.mustExec("cp", "app", "test", "-f", "/etc/"+marker)
		// Through its symlink to a host directory: not found inside.
		cpFails(t, "no such file or directory in container", "cp", filepath.Join(h, marker), "cp:/tmp/esc/abs/x", "-c", "app")
		// A symlink made in DEST by one copy, then a copy that writes
		// through it (CVE-2019-11246's shape): refused.
		dest := filepath.Join(h, "dest")
		e.mustRun("cp", "cp:/tmp/s1", dest, "-c", "app")
		cpFails(t, "cannot overwrite non-directory", "cp", "cp:/tmp/s2", dest, "-c", "app")
		// A FIFO is skipped with a warning, the rest copied.
		_, stderr, code := e.run("", "cp", "cp:/tmp/fifo", filepath.Join(h, "fifo"), "-c", "app")
		if code != 0 || !strings.Contains(stderr, `skipping "/tmp/fifo/p": a FIFO`) {
			t.Errorf("cp of a FIFO: exit %d, stderr %q; want a warning", code, stderr)
		}
		if _, err := os.Lstat(filepath.Join(h, "fifo", "p")); err == nil {
			t.Errorf("a FIFO was copied out")
		}
		assertVictimUntouched(t)
	})
	e.mustRun("rm", "-f", "cp")
	e.assertNoLeak(before)
}
