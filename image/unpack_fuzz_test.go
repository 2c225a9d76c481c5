//go:build linux

package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fuzzTar builds a valid tar from a line-based description, so the fuzzer
// mutates names, link targets and types rather than checksums. Each line is
// "T[mode]|name|link|body" with T one of d (directory), f (file), l
// (symlink), h (hardlink), c (char device, link "major:minor"), p (FIFO)
// or x (file with the PAX xattr link=body).
func fuzzTar(desc []byte) []byte {
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
		hdr := &tar.Header{Name: f[1], Linkname: f[2], Mode: 0o644, ModTime: time.Unix(1, 0), Format: tar.FormatPAX}
		if m, err := strconv.ParseInt(f[0][1:], 8, 64); err == nil {
			hdr.Mode = m & 0o7777
		}
		body := []byte(f[3])
		switch f[0][0] {
		case 'd':
			hdr.Typeflag = tar.TypeDir
		case 'l':
			hdr.Typeflag = tar.TypeSymlink
		case 'h':
			hdr.Typeflag = tar.TypeLink
		case 'c':
			hdr.Typeflag = tar.TypeChar
			fmt.Sscanf(f[2], "%d:%d", &hdr.Devmajor, &hdr.Devminor)
			hdr.Linkname = ""
		case 'p':
			hdr.Typeflag = tar.TypeFifo
		case 'x':
			hdr.Typeflag = tar.TypeReg
			hdr.PAXRecords = map[string]string{paxXattrPrefix + f[2]: f[3]}
			hdr.Linkname, body = "", nil
		default:
			hdr.Typeflag = tar.TypeReg
			hdr.Linkname = ""
		}
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(body))
		}
		if tw.WriteHeader(hdr) != nil {
			return nil // a header archive/tar cannot write
		}
		if hdr.Size > 0 {
			tw.Write(body)
		}
	}
	if tw.Close() != nil {
		return nil
	}
	return buf.Bytes()
}

// treeState lists every path under dir with its type, mode, size, mtime
// and, for regular files, content: what an escape from a layer would change.
func treeState(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %v %d %d", p, fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += " " + string(b)
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// FuzzUnpackLayer unpacks any layer (paths, links, whiteouts, devices,
// xattrs) into an empty directory beside a file and a directory it must
// not touch: whatever the layer holds, nothing outside the layer directory
// changes, and no file descriptor is left open. A layer naming a path
// above its root is refused with ErrUnsafePath.
func FuzzUnpackLayer(f *testing.F) {
	f.Fuzz(func(t *testing.T, desc []byte) {
		layer := fuzzTar(desc)
		if layer == nil {
			return
		}
		base := t.TempDir()
		for _, d := range []string{"victim", "layer"} {
			if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range []string{"outside.txt", "victim/file"} {
			if err := os.WriteFile(filepath.Join(base, p), []byte("untouched"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		before := treeState(t, filepath.Join(base, "victim")) + "\n" + treeState(t, filepath.Join(base, "outside.txt"))
		fds := openFDs(t)
		_, err := unpackLayer(filepath.Join(base, "layer"), bytes.NewReader(layer), false)
		if n := openFDs(t); n != fds {
			t.Fatalf("layer %q: %d file descriptors open after unpacking, %d before (err %v)", desc, n, fds, err)
		}
		after := treeState(t, filepath.Join(base, "victim")) + "\n" + treeState(t, filepath.Join(base, "outside.txt"))
		if after != before {
			t.Fatalf("layer %q (err %v) changed what lies outside the layer directory:\nbefore:\n%s\nafter:\n%s", desc, err, before, after)
		}
		entries, rerr := os.ReadDir(base)
		if rerr != nil || len(entries) != 3 {
			t.Fatalf("layer %q (err %v) added to the directory above the layer: %v", desc, err, entries)
		}
	})
}
