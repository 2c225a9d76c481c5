package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/peapod/peapod/runtime/pod"
	"github.com/spf13/cobra"
)

func newCpCommand(g *globals) *cobra.Command {
	var container string
	cmd := &cobra.Command{
		Use:   "cp [NAMESPACE/]POD:PATH DEST | SRC [NAMESPACE/]POD:PATH [-c CONTAINER]",
		Short: "Copy files and directories between a container and this machine",
		Long: "kubectl cp's rules: a directory copied out of a pod fills DEST (created if missing, merged if it\n" +
			"exists); a file lands in DEST, or in DEST/NAME when DEST is a directory. Copied into a pod, SRC\n" +
			"becomes PATH, or PATH/NAME when PATH is a directory. Owners, modes and symlinks are kept\n" +
			"(setuid and setgid bits are dropped from files copied out of a container); sockets, devices and\n" +
			"FIFOs are skipped. Paths in the container resolve inside its root, symlinks included, and nothing\n" +
			"is ever written through a symlink below the destination. No tar is needed in the image.",
		Example: "  sudo peapod cp web:/var/log/app ./logs\n" +
			"  sudo peapod cp ./config.json web:/etc/app/ -c app\n  sudo peapod cp kube-system/dns:/etc/resolv.conf /tmp/",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return executeCp(g, args[0], args[1], container, cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVarP(&container, "container", "c", "",
		"container name (default: the kubectl.kubernetes.io/default-container annotation's, else the first)")
	return cmd
}

// fileSpec is one side of cp: a local path, or a path in a pod.
type fileSpec struct {
	// namespace and pod are set for a path in a pod (namespace "": -n's).
	namespace, pod string
	// path is the path.
	path string
}

// remote reports whether s names a path in a pod.
func (s fileSpec) remote() bool { return s.pod != "" }

// parseFileSpec parses kubectl's [NAMESPACE/]POD:PATH, or a local path: one
// without a colon, or starting with "/" or "." (so ./a:b is a local file).
func parseFileSpec(arg string) (fileSpec, error) {
	i := strings.Index(arg, ":")
	if i == -1 || strings.HasPrefix(arg, "/") || strings.HasPrefix(arg, ".") {
		if arg == "" {
			return fileSpec{}, errors.New("a path can not be empty")
		}
		return fileSpec{path: arg}, nil
	}
	if i == 0 {
		return fileSpec{}, fmt.Errorf("invalid file spec %q: use [NAMESPACE/]POD:PATH, or a local path", arg)
	}
	podPart, p := arg[:i], arg[i+1:]
	if p == "" {
		return fileSpec{}, fmt.Errorf("invalid file spec %q: the path in the pod can not be empty", arg)
	}
	pieces := strings.Split(podPart, "/")
	switch {
	case len(pieces) == 1:
		return fileSpec{pod: pieces[0], path: p}, nil
	case len(pieces) == 2 && pieces[0] != "" && pieces[1] != "":
		return fileSpec{namespace: pieces[0], pod: pieces[1], path: p}, nil
	}
	return fileSpec{}, fmt.Errorf("invalid file spec %q: use [NAMESPACE/]POD:PATH, or a local path", arg)
}

func executeCp(g *globals, srcArg, destArg, container string, errOut io.Writer) error {
	src, err := parseFileSpec(srcArg)
	if err != nil {
		return err
	}
	dest, err := parseFileSpec(destArg)
	if err != nil {
		return err
	}
	switch {
	case src.remote() && dest.remote():
		return errors.New("one of src or dest must be a local file specification")
	case !src.remote() && !dest.remote():
		return errors.New("one of src or dest must be a remote file specification")
	}
	remote := src
	if dest.remote() {
		remote = dest
	}
	ns := g.namespace
	if remote.namespace != "" {
		ns = remote.namespace
	}
	m, err := g.manager()
	if err != nil {
		return err
	}
	cfs, note, err := m.OpenContainerFS(ns, remote.pod, container)
	if err != nil {
		return err
	}
	defer cfs.Close()
	if note != "" {
		fmt.Fprintln(errOut, note)
	}
	if src.remote() {
		return copyFromPod(cfs, cfs.Abs(src.path), dest.path, errOut)
	}
	return copyToPod(cfs, src.path, cfs.Abs(dest.path), errOut)
}

// copyToPod copies the host's src to the container's dest (absolute, clean):
// to dest/NAME when dest is a directory, else to dest, whose parent must exist.
func copyToPod(cfs *pod.ContainerFS, src, dest string, errOut io.Writer) error {
	abs, err := filepath.Abs(src)
	if err != nil {
		return err
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("%q doesn't exist in local filesystem: %w", src, err)
	}
	name := filepath.Base(abs)
	if name == "/" {
		return errors.New("cannot copy / into a container: name a directory below it")
	}
	target := dest
	if mode, err := cfs.Stat(dest); err == nil && mode.IsDir() {
		target = path.Join(dest, name)
	}
	if target == "/" {
		return errors.New("cannot replace the container's root directory: name a directory below it")
	}
	o := pod.CopyOptions{Warn: errOut, Chown: true}
	return pipeTar(
		func(w io.Writer) error { return pod.PackHost(w, abs, path.Base(target), o) },
		func(r io.Reader) error { return cfs.Unpack(r, path.Dir(target), o) })
}

// copyFromPod copies the container's src (absolute, clean) to the host's
// dest. A directory fills dest, created if missing (kubectl's rule); a file
// becomes dest, or dest/NAME when dest is a directory (kubectl fails there).
func copyFromPod(cfs *pod.ContainerFS, src, dest string, errOut io.Writer) error {
	mode, err := cfs.Stat(src)
	if err != nil {
		return err
	}
	dest = filepath.Clean(dest)
	fi, statErr := os.Stat(dest)
	destDir := statErr == nil && fi.IsDir()
	// What comes out of a container must not become a setuid binary here.
	o := pod.CopyOptions{Warn: errOut, Chown: true, StripSetID: true}
	var into, name string
	switch {
	case mode.IsDir() && destDir:
		into, name = dest, "" // its entries, merged into dest
	case mode.IsDir() && statErr == nil:
		return fmt.Errorf("cannot overwrite non-directory %q with directory %q", dest, src)
	case destDir:
		into, name = dest, path.Base(src)
	default:
		into, name = filepath.Dir(dest), filepath.Base(dest)
		if err := os.MkdirAll(into, 0o755); err != nil {
			return fmt.Errorf("failed to create %q: %w", into, err)
		}
	}
	return pipeTar(
		func(w io.Writer) error { return cfs.Pack(w, src, name, o) },
		func(r io.Reader) error { return pod.UnpackHost(r, into, o) })
}

// pipeTar runs pack into unpack through a pipe. The packer's error comes
// first: the unpacker only sees it as a broken stream.
func pipeTar(pack func(io.Writer) error, unpack func(io.Reader) error) error {
	pr, pw := io.Pipe()
	packErr := make(chan error, 1)
	go func() {
		err := pack(pw)
		pw.CloseWithError(err)
		packErr <- err
	}()
	uerr := unpack(pr)
	// An unpacker that stopped early (or left the end-of-archive padding
	// unread) must not leave the packer blocked.
	pr.CloseWithError(errCopyAborted)
	if perr := <-packErr; perr != nil && !errors.Is(perr, errCopyAborted) {
		return perr
	}
	return uerr
}

// errCopyAborted is what a packer writes into once its unpacker is done.
var errCopyAborted = errors.New("copy aborted")
