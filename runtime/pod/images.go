package pod

import (
	"sort"

	"github.com/peapod/peapod/image"
	"github.com/peapod/peapod/manifest"
)

// imageResolver adapts the image store to manifest.ImageResolver and
// remembers which images a pod uses, so image rm can refuse them.
type imageResolver struct {
	// store is the image store.
	store *image.Store
	// used collects the resolved image ids.
	used map[string]bool
}

func (m *Manager) resolver() (*imageResolver, error) {
	s, err := m.Images()
	if err != nil {
		return nil, err
	}
	return &imageResolver{store: s, used: map[string]bool{}}, nil
}

// Resolve implements manifest.ImageResolver.
func (r *imageResolver) Resolve(ref string) (*manifest.ResolvedImage, error) {
	img, err := r.store.Get(ref)
	if err != nil {
		return nil, err
	}
	r.used[img.ID] = true
	out := &manifest.ResolvedImage{ID: img.ID, Config: manifest.ImageConfig{
		Entrypoint: img.Config.Entrypoint, Cmd: img.Config.Cmd, Env: img.Config.Env,
		WorkingDir: img.Config.WorkingDir, User: img.Config.User, StopSignal: img.Config.StopSignal,
	}}
	for _, l := range img.Layers {
		out.Layers = append(out.Layers, l.Dir)
	}
	return out, nil
}

func (r *imageResolver) ids() []string {
	var out []string
	for id := range r.used {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// PodsUsingImage names the pods whose containers use image id.
func (m *Manager) PodsUsingImage(id string) []string {
	recs, _ := m.records()
	var out []string
	for _, rec := range recs {
		for _, used := range rec.ImageIDs {
			if used == id {
				out = append(out, rec.Namespace+"/"+rec.Name)
			}
		}
	}
	return out
}
