//go:build linux

package pod

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fuzzCopyTar builds a valid tar from lines "T[mode]|name|link|body", T one
// of d (directory), l (symlink), h (hard link), p (FIFO) or f (file), so the
// fuzzer mutates names and link targets rather than checksums. OUTSIDE in a
// link target is replaced by the victim directory's path.
func fuzzCopyTar(desc []byte, outside string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, line := range strings.Split(string(desc), "\n") {
		f := strings.SplitN(line, "|", 4)
		for len(f) < 4 {
			f = append(f, "")
		}
		if f[0] == "" || f[1] == "" {
			continue
		}
		hdr := &tar.Header{Name: f[1], Linkname: strings.ReplaceAll(f[2], "OUTSIDE", outside), Mode: 0o644,
			ModTime: time.Unix(1, 0), Format: tar.FormatPAX}
		if m, err := strconv.ParseInt(f[0][1:], 8, 64); err == nil {
			hdr.Mode = m & 0o7777
		}
		switch f[0][0] {
		case 'd':
			hdr.Typeflag = tar.TypeDir
		case 'l':
			hdr.Typeflag = tar.TypeSymlink
		case 'h':
			hdr.Typeflag = tar.TypeLink
		case 'p':
			hdr.Typeflag = tar.TypeFifo
		default:
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeReg, "", int64(len(f[3]))
		}
		if tw.WriteHeader(hdr) != nil {
			return buf.Bytes()
		}
		if hdr.Typeflag == tar.TypeReg {
			tw.Write([]byte(f[3]))
		}
	}
	tw.Close()
	return buf.Bytes()
}

// FuzzUnpack: whatever the stream, the unpacker writes nothing outside its
// destination, never makes a hard link, FIFO or device, and never panics.
func FuzzUnpack(f *testing.F) {
	for _, seed := range []string{
		"d755|a\nf644|a/b||hello",
		"f|../x||escape",
		"f|/abs||escape",
		"l|link|OUTSIDE\nf|link/x||through",
		"d|d\nl|d/up|../../\nf|d/up/x||through",
		"l|a|OUTSIDE\nd|a/b",
		"h|hl|OUTSIDE/victim",
		"p|fifo",
		"f4755|suid||x",
		"d|.\nf|./a/../b||x",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, desc []byte) {
		base := t.TempDir()
		dest, outside := filepath.Join(base, "dest"), filepath.Join(base, "outside")
		os.Mkdir(dest, 0o755)
		os.Mkdir(outside, 0o755)
		os.WriteFile(filepath.Join(outside, "victim"), []byte("v"), 0o644)
		UnpackHost(bytes.NewReader(fuzzCopyTar(desc, outside)), dest, CopyOptions{StripSetID: true})
		if des, _ := os.ReadDir(outside); len(des) != 1 {
			t.Fatalf("the unpacker wrote outside its destination: %d entries", len(des))
		}
		if b, _ := os.ReadFile(filepath.Join(outside, "victim")); string(b) != "v" {
			t.Fatalf("the victim file was changed: %q", b)
		}
		des, _ := os.ReadDir(base)
		if len(des) != 2 {
			t.Fatalf("the unpacker wrote beside its destination: %d entries", len(des))
		}
		filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			fi, err := os.Lstat(p)
			if err != nil {
				return nil
			}
			m := fi.Mode()
			if m&(fs.ModeNamedPipe|fs.ModeDevice|fs.ModeSocket) != 0 {
				t.Fatalf("%s: a %v was made", p, m.Type())
			}
			if m.IsRegular() && m&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
				t.Fatalf("%s: setuid/setgid kept: %v", p, m)
			}
			return nil
		})
	})
}
