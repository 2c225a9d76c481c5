package pod

import (
	"errors"
	"fmt"
	"sort"

	"github.com/peapod/peapod/image"
	"github.com/peapod/peapod/manifest"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
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

// CheckImages reports every container image of p missing from the store,
// as API-style field errors (`spec.containers[0].image: Not found: "x"`),
// so run can refuse a manifest before it creates anything: a missing image
// found while building the spec would come after the sandbox and the
// network (and, in a fresh root, the bridge) exist.
func (m *Manager) CheckImages(p *corev1.Pod) error {
	s, err := m.Images()
	if err != nil {
		return err
	}
	var errs field.ErrorList
	check := func(path *field.Path, cs []corev1.Container) error {
		for i, c := range cs {
			_, err := s.Get(c.Image)
			switch {
			case errors.Is(err, image.ErrNotFound) && c.ImagePullPolicy == corev1.PullNever:
				errs = append(errs, field.Invalid(path.Index(i).Child("image"), c.Image,
					"ErrImageNeverPull: the image is not in the local store and imagePullPolicy is Never"))
			case errors.Is(err, image.ErrNotFound):
				errs = append(errs, field.NotFound(path.Index(i).Child("image"), c.Image))
			case err != nil:
				return fmt.Errorf("failed to look up image %q of container %q: %w", c.Image, c.Name, err)
			}
		}
		return nil
	}
	spec := field.NewPath("spec")
	if err := check(spec.Child("initContainers"), p.Spec.InitContainers); err != nil {
		return err
	}
	if err := check(spec.Child("containers"), p.Spec.Containers); err != nil {
		return err
	}
	if len(errs) > 0 {
		return fmt.Errorf("pod %q: %w", p.Namespace+"/"+p.Name, errs.ToAggregate())
	}
	return nil
}
