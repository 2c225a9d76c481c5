package pod

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"

	"github.com/peapod/peapod/manifest"
	"github.com/peapod/peapod/namespaces"
	"github.com/peapod/peapod/runtime/layout"
	"github.com/peapod/peapod/runtime/state"
)

// prepareSources stores the pod's ConfigMaps and Secrets and writes the
// files of its configMap, secret, downwardAPI and projected volumes under
// the run dir (volumes/<name>), which the containers bind read-only. What
// it creates goes with the run dir on rollback and rm (removeRunDir
// unmounts the tmpfs mounts first).
func (m *Manager) prepareSources(p *corev1.Pod, rec *state.Record, src *manifest.Sources) error {
	if src != nil && len(src.ConfigMaps)+len(src.Secrets) > 0 {
		if err := state.WriteJSON(layout.Pod(m.podDir(rec.UID)).Sources(), src); err != nil {
			return err
		}
	}
	prs, err := manifest.Projections(p, rec.UID, src)
	if err != nil {
		return fmt.Errorf("pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	for _, pr := range prs {
		dir := layout.Run(m.runDir(rec.UID)).Volume(pr.Name)
		if err := writeProjection(dir, pr); err != nil {
			return fmt.Errorf("failed to write volume %q of pod %s/%s: %w", pr.Name, p.Namespace, p.Name, err)
		}
	}
	return nil
}

// writeProjection writes one volume's files into dir. A volume holding a
// Secret gets a tmpfs of its own, sized to its content, so secret values
// never reach a disk (the kubelet does the same). The directory is new and
// only this process writes it before any container runs (which then sees it
// read-only), and every file is created through an os.Root with O_EXCL:
// a path can neither follow a symlink out of the volume nor replace a file.
func writeProjection(dir string, pr manifest.Projection) error {
	if pr.Secret {
		size := int64(64 << 10)
		for _, f := range pr.Files {
			// A page per file and per directory at most, plus the data.
			size += int64(len(f.Data)) + 2*int64(os.Getpagesize())
		}
		if err := namespaces.MountTmpfs(dir, size, 0o755); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("failed to create %q: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, f := range pr.Files {
		if d := filepath.Dir(f.Path); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		if err := writeFileIn(root, f); err != nil {
			return err
		}
	}
	return nil
}

// writeFileIn creates one file in root with its mode (chmod after create,
// as the umask trims OpenFile's mode).
func writeFileIn(root *os.Root, f manifest.ProjectedFile) error {
	mode := os.FileMode(f.Mode).Perm()
	fh, err := root.OpenFile(f.Path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, werr := fh.Write(f.Data)
	cerr := fh.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("failed to write %q: %w", f.Path, err)
	}
	return root.Chmod(f.Path, mode)
}
