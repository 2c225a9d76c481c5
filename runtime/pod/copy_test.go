package pod

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// tarEntry is one entry of a crafted tar stream.
type tarEntry struct {
	name, link string
	typ        byte
	body       string
	mode       int64
}

// craft builds a tar stream of entries, as a hostile container could.
func craft(t *testing.T, entries ...tarEntry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: mode, Size: int64(len(e.body)), ModTime: time.Unix(1e9, 0)}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte(e.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

// assertEmpty fails unless dir holds nothing: no escape wrote there.
func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		t.Errorf("%s was written outside the destination", filepath.Join(dir, de.Name()))
	}
}

// TestUnpackEscapes feeds the unpacker each shape of the kubectl cp CVEs
// and checks it refuses with ErrUnsafeCopy and writes nothing outside.
func TestUnpackEscapes(t *testing.T) {
	tests := []struct {
		name    string
		entries []tarEntry
		// plant prepares dest before the stream (outside is the victim dir).
		plant func(t *testing.T, dest, outside string)
	}{
		{name: "dot-dot name (CVE-2018-1002100)", entries: []tarEntry{
			{name: "../outside/pwned", typ: tar.TypeReg, body: "x"}}},
		{name: "dot-dot inside name", entries: []tarEntry{
			{name: "a/../../outside/pwned", typ: tar.TypeReg, body: "x"}}},
		{name: "absolute name", entries: []tarEntry{
			{name: "/pwned", typ: tar.TypeReg, body: "x"}}},
		{name: "symlink then file through it (CVE-2019-11246)", entries: []tarEntry{
			{name: "link", typ: tar.TypeSymlink, link: "OUTSIDE"},
			{name: "link/pwned", typ: tar.TypeReg, body: "x"}}},
		{name: "relative symlink then file through it (CVE-2019-1002101)", entries: []tarEntry{
			{name: "d", typ: tar.TypeDir, mode: 0o755},
			{name: "d/link", typ: tar.TypeSymlink, link: "../../outside"},
			{name: "d/link/pwned", typ: tar.TypeReg, body: "x"}}},
		{name: "symlink then directory through it", entries: []tarEntry{
			{name: "link", typ: tar.TypeSymlink, link: "OUTSIDE"},
			{name: "link/sub/", typ: tar.TypeDir, mode: 0o755}}},
		{name: "symlink already in dest", entries: []tarEntry{
			{name: "planted/pwned", typ: tar.TypeReg, body: "x"}},
			plant: func(t *testing.T, dest, outside string) {
				if err := os.Symlink(outside, filepath.Join(dest, "planted")); err != nil {
					t.Fatal(err)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			dest, outside := filepath.Join(base, "dest"), filepath.Join(base, "outside")
			for _, d := range []string{dest, outside} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if tc.plant != nil {
				tc.plant(t, dest, outside)
			}
			for i := range tc.entries {
				tc.entries[i].link = strings.ReplaceAll(tc.entries[i].link, "OUTSIDE", outside)
			}
			err := UnpackHost(craft(t, tc.entries...), dest, CopyOptions{})
			if !errors.Is(err, ErrUnsafeCopy) {
				t.Errorf("unpack: %v, want ErrUnsafeCopy", err)
			}
			assertEmpty(t, outside)
			if _, err := os.Stat(filepath.Join(base, "pwned")); err == nil {
				t.Errorf("%s was written", filepath.Join(base, "pwned"))
			}
		})
	}
}

// TestUnpackReplacesSymlinkNotTarget: a file entry over an existing
// symlink replaces the link; the file it pointed at is untouched.
func TestUnpackReplacesSymlinkNotTarget(t *testing.T) {
	base := t.TempDir()
	dest, victim := filepath.Join(base, "dest"), filepath.Join(base, "victim")
	os.Mkdir(dest, 0o755)
	if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(dest, "f")); err != nil {
		t.Fatal(err)
	}
	if err := UnpackHost(craft(t, tarEntry{name: "f", typ: tar.TypeReg, body: "new"}), dest, CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Errorf("the symlink's target was written: %q", b)
	}
	if fi, err := os.Lstat(filepath.Join(dest, "f")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("dest/f is not a regular file: %v %v", fi, err)
	}
}

// TestUnpackSkipsSpecial: hard links and device nodes are never made.
func TestUnpackSkipsSpecial(t *testing.T) {
	dest := t.TempDir()
	var warn bytes.Buffer
	err := UnpackHost(craft(t,
		tarEntry{name: "shadow", typ: tar.TypeLink, link: "/etc/shadow"},
		tarEntry{name: "sda", typ: tar.TypeBlock},
		tarEntry{name: "ok", typ: tar.TypeReg, body: "ok"}), dest, CopyOptions{Warn: &warn})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"shadow", "sda"} {
		if _, err := os.Lstat(filepath.Join(dest, n)); err == nil {
			t.Errorf("%s was created", n)
		}
		if !strings.Contains(warn.String(), "skipping \""+n+"\"") {
			t.Errorf("no warning for %s: %q", n, warn.String())
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "ok")); string(b) != "ok" {
		t.Errorf("ok = %q", b)
	}
}

// TestPackUnpackRoundTrip copies a tree with modes, a symlink pointing out
// of it (kept as a link, not followed) and a setuid file (stripped).
func TestPackUnpackRoundTrip(t *testing.T) {
	base := t.TempDir()
	src := filepath.Join(base, "src")
	secret := filepath.Join(base, "secret")
	os.WriteFile(secret, []byte("secret"), 0o600)
	mk := func(p string, mode os.FileMode, body string) {
		t.Helper()
		p = filepath.Join(src, p)
		if body == "" {
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
		} else if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	mk("", 0o750, "")
	mk("sub", 0o711, "")
	mk("sub/f", 0o640, "hello")
	mk("suid", 0o4755|os.ModeSetuid, "#!")
	if err := os.Symlink(secret, filepath.Join(src, "sub", "out")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(src, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	var buf, warn bytes.Buffer
	if err := PackHost(&buf, src, "copy", CopyOptions{Warn: &warn}); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(base, "dest")
	os.Mkdir(dest, 0o755)
	if err := UnpackHost(&buf, dest, CopyOptions{StripSetID: true, Warn: &warn, Chown: os.Geteuid() == 0}); err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string]fs.FileMode{"": fs.ModeDir | 0o750, "sub": fs.ModeDir | 0o711, "sub/f": 0o640, "suid": 0o755} {
		fi, err := os.Lstat(filepath.Join(dest, "copy", rel))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%q: mode %v, want %v", rel, fi.Mode(), want)
		}
	}
	if l, err := os.Readlink(filepath.Join(dest, "copy/sub/out")); err != nil || l != secret {
		t.Errorf("symlink: %q %v, want %q", l, err, secret)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "copy/sub/f")); string(b) != "hello" {
		t.Errorf("sub/f = %q", b)
	}
	if _, err := os.Lstat(filepath.Join(dest, "copy/fifo")); err == nil {
		t.Errorf("the FIFO was copied")
	}
	if !strings.Contains(warn.String(), `skipping "`+filepath.Join(src, "fifo")+`": a FIFO`) {
		t.Errorf("no warning for the FIFO: %q", warn.String())
	}
}

// fakeContainer makes a directory that plays a container's root.
func fakeContainer(t *testing.T, root string) *ContainerFS {
	t.Helper()
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := &ContainerFS{root: os.NewFile(uintptr(fd), root), desc: "container \"app\" of pod default/web", cwd: "/work"}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestContainerPathsStayInRoot: a symlink the container planted, absolute
// or climbing with "..", resolves inside its root for reading and writing.
func TestContainerPathsStayInRoot(t *testing.T) {
	base := t.TempDir()
	root, host := filepath.Join(base, "root"), filepath.Join(base, "host")
	for _, d := range []string{root, host, filepath.Join(root, "etc"), filepath.Join(root, "data")} {
		os.MkdirAll(d, 0o755)
	}
	os.WriteFile(filepath.Join(host, "secret"), []byte("host"), 0o600)
	os.Symlink(host, filepath.Join(root, "data", "abs"))
	os.Symlink("../../../../../../.."+host, filepath.Join(root, "data", "rel"))
	os.Symlink("/etc", filepath.Join(root, "data", "etc"))
	c := fakeContainer(t, root)
	for _, p := range []string{"/data/abs/secret", "/data/rel/secret"} {
		var buf bytes.Buffer
		err := c.Pack(&buf, p, "x", CopyOptions{})
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), `container "app" of pod default/web`) {
			t.Errorf("pack %s: %v, want a not-exist error naming the container", p, err)
		}
	}
	// Into the container through its symlink to /etc: its own /etc.
	if err := c.Unpack(craft(t, tarEntry{name: "marker", typ: tar.TypeReg, body: "in"}), "/data/etc", CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "etc", "marker")); err != nil || string(b) != "in" {
		t.Errorf("the container's /etc/marker: %q %v", b, err)
	}
	err := c.Unpack(craft(t, tarEntry{name: "marker", typ: tar.TypeReg, body: "in"}), "/data/abs", CopyOptions{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("unpack into a symlink to a host dir: %v, want not exist", err)
	}
	if des, _ := os.ReadDir(host); len(des) != 1 {
		t.Errorf("the host dir holds %d entries, want only its secret", len(des))
	}
	if got := c.Abs("logs/../x/"); got != "/work/x" {
		t.Errorf("Abs = %q", got)
	}
}

// swapper flips dir between a directory and a symlink to target until
// stop is closed, as a hostile container racing a copy would.
func swapper(t *testing.T, dir, target string, stop chan struct{}) (done chan struct{}) {
	t.Helper()
	done = make(chan struct{})
	aside := dir + ".aside"
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			os.Rename(dir, aside)
			os.Symlink(target, dir)
			os.Remove(dir)
			os.Rename(aside, dir)
		}
	}()
	return done
}

// TestPackRacingSymlinkSwap: while the container swaps a directory being
// copied out for a symlink to a host directory, no host file is read.
func TestPackRacingSymlinkSwap(t *testing.T) {
	base := t.TempDir()
	root, host := filepath.Join(base, "root"), filepath.Join(base, "host")
	os.MkdirAll(filepath.Join(root, "data", "d"), 0o755)
	os.MkdirAll(host, 0o755)
	os.WriteFile(filepath.Join(root, "data", "d", "secret"), []byte("inside"), 0o644)
	os.WriteFile(filepath.Join(host, "secret"), []byte("HOST SECRET"), 0o644)
	c := fakeContainer(t, root)
	packOnce := func(src string) (link, dir bool) {
		var buf bytes.Buffer
		if err := c.Pack(&buf, src, "x", CopyOptions{}); err != nil {
			return true, false
		}
		tr := tar.NewReader(&buf)
		for {
			h, err := tr.Next()
			if err != nil {
				return link, dir
			}
			switch {
			case h.Typeflag == tar.TypeSymlink:
				link = true
			case h.Typeflag == tar.TypeReg && strings.HasSuffix(h.Name, "secret"):
				dir = true
			}
			b := new(bytes.Buffer)
			b.ReadFrom(tr)
			if strings.Contains(b.String(), "HOST SECRET") {
				t.Fatalf("pack of %s read the host's secret as %q", src, h.Name)
			}
		}
	}
	// Both sides of the race, each held still first: whatever the
	// scheduler does below, the symlink side is always tested.
	d := filepath.Join(root, "data", "d")
	if err := os.Rename(d, d+".aside"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(host, d); err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{"/data", "/data/d", "/data/d/secret"} {
		packOnce(src)
	}
	os.Remove(d)
	if err := os.Rename(d+".aside", d); err != nil {
		t.Fatal(err)
	}
	if _, dir := packOnce("/data/d"); !dir {
		t.Fatal("pack of /data/d did not copy its file with the directory in place")
	}

	// Then the swap in a loop while copies run, so a check-then-use gap
	// in Pack would be hit; how often each side is met depends on the
	// scheduler (a loaded machine may give one side only), so the counts
	// are logged, not required.
	stop := make(chan struct{})
	done := swapper(t, d, host, stop)
	defer func() { close(stop); <-done }()
	var sawDir, sawLink int
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline) && (sawDir < 20 || sawLink < 20); {
		for _, src := range []string{"/data", "/data/d", "/data/d/secret"} {
			link, dir := packOnce(src)
			if link {
				sawLink++
			}
			if dir {
				sawDir++
			}
		}
	}
	t.Logf("racing copies: %d met the directory, %d the symlink", sawDir, sawLink)
}

// TestUnpackRacingSymlinkSwap: while the container swaps a directory being
// written for a symlink to a host directory, nothing lands on the host.
func TestUnpackRacingSymlinkSwap(t *testing.T) {
	base := t.TempDir()
	root, host := filepath.Join(base, "root"), filepath.Join(base, "host")
	os.MkdirAll(filepath.Join(root, "dest", "d"), 0o755)
	os.MkdirAll(host, 0o755)
	entries := []tarEntry{{name: "d", typ: tar.TypeDir, mode: 0o755}}
	for i := 0; i < 50; i++ {
		entries = append(entries, tarEntry{name: "d/f" + string(rune('a'+i%26)) + string(rune('a'+i/26)), typ: tar.TypeReg, body: "x"})
	}
	stream := craft(t, entries...).Bytes()
	c := fakeContainer(t, root)
	// The symlink side held still first, so it is tested whatever the
	// scheduler does in the loop below.
	d := filepath.Join(root, "dest", "d")
	if err := os.Rename(d, d+".aside"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(host, d); err != nil {
		t.Fatal(err)
	}
	if err := c.Unpack(bytes.NewReader(stream), "/dest", CopyOptions{}); err == nil {
		t.Error("unpack through a directory swapped for a symlink to the host succeeded")
	}
	assertEmpty(t, host)
	os.Remove(d)
	if err := os.Rename(d+".aside", d); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := swapper(t, d, host, stop)
	var ok, refused int
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline) && (ok < 5 || refused < 5); {
		if err := c.Unpack(bytes.NewReader(stream), "/dest", CopyOptions{}); err != nil {
			refused++
		} else {
			ok++
		}
	}
	close(stop)
	<-done
	t.Logf("racing copies: %d succeeded, %d were refused", ok, refused)
	assertEmpty(t, host)
}
