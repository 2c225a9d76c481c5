package pod

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/peapod/peapod/image"
	"github.com/peapod/peapod/manifest"
	"github.com/peapod/peapod/runtime/state"
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
	out.RepoDigest = repoDigestFor(ref, img.RepoDigests)
	return out, nil
}

// repoDigestFor picks the repo digest of ref's repository among an
// image's (it may have been pulled from several), else the first.
func repoDigestFor(ref string, repoDigests []string) string {
	if len(repoDigests) == 0 {
		return ""
	}
	if full, err := image.FullName(ref); err == nil {
		repo, _, _ := strings.Cut(full, "@")
		if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
			repo = repo[:i]
		}
		for _, d := range repoDigests {
			if strings.HasPrefix(d, repo+"@") {
				return d
			}
		}
	}
	return repoDigests[0]
}

func (r *imageResolver) ids() []string {
	var out []string
	for id := range r.used {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// PodsUsingImage names the pods whose containers use image id. A pod
// whose record cannot be read may use any image: it is named too.
func (m *Manager) PodsUsingImage(id string) []string {
	es, _ := m.entries()
	var out []string
	for _, e := range es {
		if e.Rec == nil {
			if !errors.Is(e.Err, state.ErrNotFound) {
				out = append(out, e.Namespace+"/"+e.Name+" (record unreadable)")
			}
			continue
		}
		rec := e.Rec
		for _, used := range rec.ImageIDs {
			if used == id {
				out = append(out, rec.Namespace+"/"+rec.Name)
			}
		}
	}
	return out
}

// ImagePuller makes sure a run's images are in the store, per each
// container's imagePullPolicy, before anything of any pod is created. One
// puller serves a whole run, so an image several containers name is pulled
// once.
type ImagePuller struct {
	store *image.Store
	opts  image.PullOptions
	// Warn receives notes the user should see (an imported image kept
	// under Always); nil discards them.
	Warn func(string)
	done map[string]error // reference -> outcome of its pull in this run
}

// NewImagePuller returns a puller that pulls with opts.
func (m *Manager) NewImagePuller(opts image.PullOptions) (*ImagePuller, error) {
	s, err := m.Images()
	if err != nil {
		return nil, err
	}
	return &ImagePuller{store: s, opts: opts, done: map[string]error{}}, nil
}

// Ensure pulls what p's containers need, as the kubelet does: Never only
// checks the store (ErrImageNeverPull), IfNotPresent pulls a missing image,
// Always asks the registry for the tag's digest (a HEAD) and pulls only
// when it changed, and then only the layers the store lacks. An image that
// was imported rather than pulled (no registry knows it) is used as it is
// under Always, so images imported offline keep running. pullSecrets are
// the Secrets the pod's imagePullSecrets name: their credentials come
// before the node's. A failure is a field error naming the container's
// image, with the kubelet's reason (ErrImagePull, ErrImageNeverPull).
func (ip *ImagePuller) Ensure(ctx context.Context, p *corev1.Pod, pullSecrets ...*corev1.Secret) error {
	opts := ip.opts
	if len(pullSecrets) > 0 {
		kc, err := secretsKeychain(pullSecrets, opts.Keychain)
		if err != nil {
			return fmt.Errorf("pod %q: %w", p.Namespace+"/"+p.Name, err)
		}
		opts.Keychain = kc
	}
	var errs field.ErrorList
	check := func(path *field.Path, cs []corev1.Container) error {
		for i, c := range cs {
			fp := path.Index(i).Child("image")
			img, err := ip.store.Get(c.Image)
			if err != nil && !errors.Is(err, image.ErrNotFound) {
				return fmt.Errorf("failed to look up image %q of container %q: %w", c.Image, c.Name, err)
			}
			present := err == nil
			switch {
			case c.ImagePullPolicy == corev1.PullNever && !present:
				errs = append(errs, field.Invalid(fp, c.Image,
					fmt.Sprintf("ErrImageNeverPull: container image %q is not present with pull policy of Never", c.Image)+howToGet(c.Image)))
				continue
			case c.ImagePullPolicy == corev1.PullNever, present && c.ImagePullPolicy != corev1.PullAlways:
				continue
			case present && len(img.RepoDigests) == 0:
				if ip.Warn != nil {
					ip.Warn(fmt.Sprintf("%s: %q was imported, not pulled: imagePullPolicy Always uses the local copy", path.Index(i).Child("imagePullPolicy"), c.Image))
				}
				continue
			}
			if err := ip.pull(ctx, c.Image, opts, pullSecrets); err != nil {
				errs = append(errs, field.Invalid(fp, c.Image, fmt.Sprintf("ErrImagePull: %v", err)+howToGet(c.Image)))
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

// pull pulls ref once per run (and set of pull secrets).
func (ip *ImagePuller) pull(ctx context.Context, ref string, opts image.PullOptions, secrets []*corev1.Secret) error {
	key := ref
	for _, s := range secrets {
		key += " " + s.Namespace + "/" + s.Name
	}
	if err, ok := ip.done[key]; ok {
		return err
	}
	_, err := ip.store.Pull(ctx, ref, opts)
	ip.done[key] = err
	return err
}

// secretsKeychain reads the registry credentials of kubernetes.io/
// dockerconfigjson (or legacy dockercfg) Secrets, tried in order before
// next (nil: the node's, image.DefaultKeychain).
func secretsKeychain(secrets []*corev1.Secret, next authn.Keychain) (authn.Keychain, error) {
	var kcs []authn.Keychain
	for _, s := range secrets {
		var ac image.AuthConfig
		var err error
		switch s.Type {
		case corev1.SecretTypeDockerConfigJson:
			ac, err = image.ParseAuthConfig(s.Data[corev1.DockerConfigJsonKey])
		case corev1.SecretTypeDockercfg:
			ac, err = image.ParseDockercfg(s.Data[corev1.DockerConfigKey])
		default:
			err = fmt.Errorf("type %q holds no registry credentials", s.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("imagePullSecret %q: %w", s.Name, err)
		}
		kcs = append(kcs, ac)
	}
	if next == nil {
		next = image.DefaultKeychain()
	}
	return authn.NewMultiKeychain(append(kcs, next)...), nil
}
