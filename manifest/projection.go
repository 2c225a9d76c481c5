package manifest

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// defaultVolumeMode is the API's default for configMap, secret, downwardAPI
// and projected volumes' defaultMode: 0644 (corev1.ConfigMapVolumeSourceDefaultMode
// and friends all equal it).
const defaultVolumeMode = corev1.SecretVolumeSourceDefaultMode

// maxVolumeMode is the largest file mode the API accepts for a projected
// file (0777): no set-id or sticky bit.
const maxVolumeMode = 0o777

// downwardVolumeFields are the fieldPaths a downwardAPI volume file can
// hold in peapod.
var downwardVolumeFields = []string{"metadata.name", "metadata.namespace", "metadata.uid", "metadata.labels", "metadata.annotations"}

// volumeTypes counts a volume's sources.
func volumeTypes(v *corev1.Volume) int {
	n := 0
	for _, set := range []bool{v.EmptyDir != nil, v.HostPath != nil, v.ConfigMap != nil, v.Secret != nil, v.DownwardAPI != nil, v.Projected != nil} {
		if set {
			n++
		}
	}
	return n
}

// isProjection reports a volume whose files peapod writes from the pod's
// ConfigMaps, Secrets or metadata.
func isProjection(v *corev1.Volume) bool {
	return v.ConfigMap != nil || v.Secret != nil || v.DownwardAPI != nil || v.Projected != nil
}

// defaultProjectionModes sets defaultMode to the API's 0644 where unset.
func defaultProjectionModes(v *corev1.Volume) {
	set := func(m **int32) {
		if *m == nil {
			d := defaultVolumeMode
			*m = &d
		}
	}
	switch {
	case v.ConfigMap != nil:
		set(&v.ConfigMap.DefaultMode)
	case v.Secret != nil:
		set(&v.Secret.DefaultMode)
	case v.DownwardAPI != nil:
		set(&v.DownwardAPI.DefaultMode)
	case v.Projected != nil:
		set(&v.Projected.DefaultMode)
	}
}

// validateProjection checks a configMap, secret, downwardAPI or projected
// volume as the API server does: object names, keys, item paths relative
// and without "..", modes within 0777, no path twice in one volume.
func validateProjection(v *corev1.Volume, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	paths := sets.New[string]()
	switch {
	case v.ConfigMap != nil:
		cp := p.Child("configMap")
		errs = append(errs, validateRefName(v.ConfigMap.Name, cp.Child("name"))...)
		errs = append(errs, validateMode(v.ConfigMap.DefaultMode, cp.Child("defaultMode"))...)
		errs = append(errs, validateKeyItems(v.ConfigMap.Items, cp.Child("items"), paths)...)
	case v.Secret != nil:
		sp := p.Child("secret")
		errs = append(errs, validateRefName(v.Secret.SecretName, sp.Child("secretName"))...)
		errs = append(errs, validateMode(v.Secret.DefaultMode, sp.Child("defaultMode"))...)
		errs = append(errs, validateKeyItems(v.Secret.Items, sp.Child("items"), paths)...)
	case v.DownwardAPI != nil:
		dp := p.Child("downwardAPI")
		errs = append(errs, validateMode(v.DownwardAPI.DefaultMode, dp.Child("defaultMode"))...)
		errs = append(errs, validateDownwardItems(v.DownwardAPI.Items, dp.Child("items"), paths)...)
	case v.Projected != nil:
		pp := p.Child("projected")
		errs = append(errs, validateMode(v.Projected.DefaultMode, pp.Child("defaultMode"))...)
		for i, s := range v.Projected.Sources {
			sp := pp.Child("sources").Index(i)
			n := 0
			if s.ConfigMap != nil {
				n++
				errs = append(errs, validateRefName(s.ConfigMap.Name, sp.Child("configMap", "name"))...)
				errs = append(errs, validateKeyItems(s.ConfigMap.Items, sp.Child("configMap", "items"), paths)...)
			}
			if s.Secret != nil {
				n++
				errs = append(errs, validateRefName(s.Secret.Name, sp.Child("secret", "name"))...)
				errs = append(errs, validateKeyItems(s.Secret.Items, sp.Child("secret", "items"), paths)...)
			}
			if s.DownwardAPI != nil {
				n++
				errs = append(errs, validateDownwardItems(s.DownwardAPI.Items, sp.Child("downwardAPI", "items"), paths)...)
			}
			if n != 1 {
				errs = append(errs, field.Forbidden(sp, "may not specify more than 1 volume type per source"))
			}
		}
	}
	return errs
}

// validateMode checks a file mode: 0 to 0777.
func validateMode(m *int32, p *field.Path) field.ErrorList {
	if m != nil && (*m < 0 || *m > maxVolumeMode) {
		return field.ErrorList{field.Invalid(p, *m, fmt.Sprintf("must be a number between 0 and 0%o (inclusive)", maxVolumeMode))}
	}
	return nil
}

// validateKeyItems checks a configMap or secret projection's items.
func validateKeyItems(items []corev1.KeyToPath, p *field.Path, paths sets.Set[string]) field.ErrorList {
	var errs field.ErrorList
	for i, it := range items {
		ip := p.Index(i)
		if it.Key == "" {
			errs = append(errs, field.Required(ip.Child("key"), ""))
		} else {
			errs = append(errs, configMapKey(ip.Child("key"), it.Key)...)
		}
		errs = append(errs, validateItemPath(it.Path, ip.Child("path"), paths)...)
		errs = append(errs, validateMode(it.Mode, ip.Child("mode"))...)
	}
	return errs
}

// validateDownwardItems checks a downwardAPI projection's items.
func validateDownwardItems(items []corev1.DownwardAPIVolumeFile, p *field.Path, paths sets.Set[string]) field.ErrorList {
	var errs field.ErrorList
	for i, it := range items {
		ip := p.Index(i)
		errs = append(errs, validateItemPath(it.Path, ip.Child("path"), paths)...)
		errs = append(errs, validateMode(it.Mode, ip.Child("mode"))...)
		fp := ip.Child("fieldRef")
		switch {
		case it.FieldRef == nil:
			errs = append(errs, field.Required(fp, "peapod resolves fieldRef only"))
		case it.FieldRef.FieldPath == "":
			errs = append(errs, field.Required(fp.Child("fieldPath"), ""))
		case !slices.Contains(downwardVolumeFields, it.FieldRef.FieldPath):
			errs = append(errs, field.NotSupported(fp.Child("fieldPath"), it.FieldRef.FieldPath, downwardVolumeFields))
		}
		if it.FieldRef != nil && it.FieldRef.APIVersion != "" && it.FieldRef.APIVersion != "v1" {
			errs = append(errs, field.NotSupported(fp.Child("apiVersion"), it.FieldRef.APIVersion, []string{"v1"}))
		}
	}
	return errs
}

// validateItemPath checks a projected file's path as the API server's
// validateLocalDescendingPath does: relative, no ".." element, and (as its
// volume validation adds) no path given twice in one volume, no "..": the
// file must stay inside the volume directory.
func validateItemPath(pth string, p *field.Path, paths sets.Set[string]) field.ErrorList {
	var errs field.ErrorList
	switch {
	case pth == "":
		return field.ErrorList{field.Required(p, "")}
	case path.IsAbs(pth):
		errs = append(errs, field.Invalid(p, pth, "must be a relative path"))
	case hasDotDot(pth):
		errs = append(errs, field.Invalid(p, pth, "must not contain '..'"))
	case strings.HasPrefix(pth, ".."):
		errs = append(errs, field.Invalid(p, pth, "must not start with '..'"))
	}
	clean := path.Clean(pth)
	if paths.Has(clean) {
		errs = append(errs, field.Duplicate(p, pth))
	}
	paths.Insert(clean)
	return errs
}

// ProjectedFile is one file of a configMap, secret, downwardAPI or projected
// volume, as the pod manager writes it before any container starts.
type ProjectedFile struct {
	// Path is relative to the volume directory, validated (no "..").
	Path string
	// Data is the file's contents.
	Data []byte
	// Mode is its permission bits.
	Mode uint32
}

// Projection is the content of one such volume.
type Projection struct {
	// Name is the volume's name.
	Name string
	// Secret is true when a Secret is projected into it: the pod manager
	// then writes it to a tmpfs, so its files never reach a disk.
	Secret bool
	// Files are sorted by path.
	Files []ProjectedFile
}

// ErrVolumeSetUp marks a volume whose content cannot be made: the kubelet's
// FailedMount ("MountVolume.SetUp failed").
var ErrVolumeSetUp = errors.New("volume set-up failed")

// Projections computes the files of every configMap, secret, downwardAPI
// and projected volume of a validated, defaulted pod, as the kubelet's
// volume plugins do: all of an object's keys (data and binaryData), or the
// listed items; item modes over defaultMode; a missing object or key is an
// error with the kubelet's message unless optional.
func Projections(pod *corev1.Pod, uid string, src *Sources) ([]Projection, error) {
	if src == nil {
		src = &Sources{}
	}
	var out []Projection
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		if !isProjection(v) {
			continue
		}
		pr := Projection{Name: v.Name}
		var err error
		add := func(files []ProjectedFile, e error) {
			pr.Files = append(pr.Files, files...)
			if err == nil {
				err = e
			}
		}
		switch {
		case v.ConfigMap != nil:
			add(configMapFiles(src, v.ConfigMap.Name, v.ConfigMap.Items, *v.ConfigMap.DefaultMode, v.ConfigMap.Optional))
		case v.Secret != nil:
			pr.Secret = true
			add(secretFiles(src, v.Secret.SecretName, v.Secret.Items, *v.Secret.DefaultMode, v.Secret.Optional))
		case v.DownwardAPI != nil:
			add(downwardFiles(pod, uid, v.DownwardAPI.Items, *v.DownwardAPI.DefaultMode))
		case v.Projected != nil:
			mode := *v.Projected.DefaultMode
			for _, s := range v.Projected.Sources {
				switch {
				case s.ConfigMap != nil:
					add(configMapFiles(src, s.ConfigMap.Name, s.ConfigMap.Items, mode, s.ConfigMap.Optional))
				case s.Secret != nil:
					pr.Secret = true
					add(secretFiles(src, s.Secret.Name, s.Secret.Items, mode, s.Secret.Optional))
				case s.DownwardAPI != nil:
					add(downwardFiles(pod, uid, s.DownwardAPI.Items, mode))
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("MountVolume.SetUp failed for volume %q : %s: %w", v.Name, err.Error(), ErrVolumeSetUp)
		}
		slices.SortFunc(pr.Files, func(a, b ProjectedFile) int { return strings.Compare(a.Path, b.Path) })
		out = append(out, pr)
	}
	return out, nil
}

// keyFiles projects an object's keys: all of them, or the items.
func keyFiles(missingKey string, data map[string][]byte, items []corev1.KeyToPath, mode int32, optional bool) ([]ProjectedFile, error) {
	var files []ProjectedFile
	if len(items) == 0 {
		for _, k := range slices.Sorted(maps.Keys(data)) {
			files = append(files, ProjectedFile{Path: k, Data: data[k], Mode: uint32(mode)})
		}
		return files, nil
	}
	for _, it := range items {
		d, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, fmt.Errorf("%s: %s", missingKey, it.Key)
		}
		m := mode
		if it.Mode != nil {
			m = *it.Mode
		}
		files = append(files, ProjectedFile{Path: path.Clean(it.Path), Data: d, Mode: uint32(m)})
	}
	return files, nil
}

// configMapFiles projects a ConfigMap (data and binaryData).
func configMapFiles(src *Sources, name string, items []corev1.KeyToPath, mode int32, optional *bool) ([]ProjectedFile, error) {
	opt := optional != nil && *optional
	cm, ok := src.ConfigMaps[name]
	if !ok {
		if opt {
			return nil, nil
		}
		return nil, fmt.Errorf("configmap %q not found", name)
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	maps.Copy(data, cm.BinaryData)
	return keyFiles("configmap references non-existent config key", data, items, mode, opt)
}

// secretFiles projects a Secret.
func secretFiles(src *Sources, name string, items []corev1.KeyToPath, mode int32, optional *bool) ([]ProjectedFile, error) {
	opt := optional != nil && *optional
	s, ok := src.Secrets[name]
	if !ok {
		if opt {
			return nil, nil
		}
		return nil, fmt.Errorf("secret %q not found", name)
	}
	return keyFiles("references non-existent secret key", s.Data, items, mode, opt)
}

// downwardFiles projects pod metadata; labels and annotations are written
// as the kubelet's fieldpath.FormatMap writes them: sorted `key="value"`
// lines, Go-quoted.
func downwardFiles(pod *corev1.Pod, uid string, items []corev1.DownwardAPIVolumeFile, mode int32) ([]ProjectedFile, error) {
	var files []ProjectedFile
	for _, it := range items {
		var v string
		switch it.FieldRef.FieldPath {
		case "metadata.name":
			v = pod.Name
		case "metadata.namespace":
			v = pod.Namespace
		case "metadata.uid":
			v = uid
		case "metadata.labels":
			v = formatMap(pod.Labels)
		case "metadata.annotations":
			v = formatMap(pod.Annotations)
		}
		m := mode
		if it.Mode != nil {
			m = *it.Mode
		}
		files = append(files, ProjectedFile{Path: path.Clean(it.Path), Data: []byte(v), Mode: uint32(m)})
	}
	return files, nil
}

// formatMap is the kubelet's fieldpath.FormatMap.
func formatMap(m map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "%v=%q\n", k, m[k])
	}
	return strings.TrimSuffix(b.String(), "\n")
}
